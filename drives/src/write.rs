//! The fan-out writer: one image, read once, to many drives at once.
//!
//! ```text
//!             ┌─ queue(depth) ─> target thread (sdb) ─ O_DIRECT writes, verify
//! reader ─────┼─ queue(depth) ─> target thread (sdc)
//! (decodes)   ├─ ...
//!             └─ queue(depth) ─> hasher (SHA-256 of the content / bmap ranges)
//! ```
//!
//! The reader decodes into buffers from a fixed [`Pool`] and sends the same
//! `Arc<Chunk>` to every consumer, in order. A slow drive fills its queue
//! and then holds the reader back: the lag between drives is bounded by the
//! queue depth, and memory by the pool, whatever the number of targets. A
//! target that fails drops its queue; the reader stops feeding it and the
//! others carry on. A drive that takes nothing for `stall_timeout` (a hung
//! stick) is failed as not responding and stops holding the others back.
//!
//! Per target: safety check, the same drive as planned (name, diskseq,
//! serial, size: [`CopyPlan::for_drives`]), whole-disk `O_EXCL` open held for the job,
//! fake-capacity probe of the first and last MiB, aligned writes with the
//! first MiB held back and written last, fsync, `BLKFLSBUF`, diskseq check,
//! read-back SHA-256 compared with the content's (or each bmap range with
//! its checksum), `BLKRRPART`.

use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use copyunit_model::{Drive, DriveIdentity, ImageFormat, Phase};
use sha2::{Digest, Sha256};

use crate::blockdev::{Access, Disk};
use crate::bmap::BlockMap;
use crate::buffer::{AlignedBuf, Chunk, Pool};
use crate::discover::{DiscoverOptions, check_target};
use crate::error::{Error, Result};
use crate::progress::{CancelToken, Meter, Progress};
use crate::queue::{Next, Push, Rx, Tx, bounded};
use crate::source::ImageReader;
use crate::verify::{hash_range, read_buf_for};

/// Bytes per chunk handed to the drives: large O_DIRECT writes.
pub const CHUNK: usize = 4 << 20;
/// The first MiB (MBR, GPT header and table for 512 and 4096-byte sectors)
/// is written last, so a half-written drive does not boot.
const HOLD_BACK: usize = 1 << 20;
/// Size of the fake-capacity probes at the start and end of a drive.
const PROBE: usize = 1 << 20;

/// What to copy where.
#[derive(Debug, Clone)]
pub struct CopyPlan {
    pub image: PathBuf,
    /// A `.bmap` sidecar: write and verify only its mapped ranges.
    pub bmap: Option<PathBuf>,
    /// Drives by kernel name (`sdb`), `/dev` path, slot label or serial.
    pub targets: Vec<String>,
    /// What `targets[i]` was when the copy was planned (see
    /// [`CopyPlan::for_drives`]): a target that is another drive when it is
    /// opened (a stick swapped under the same name) is refused. Empty: not
    /// checked (a plan written by hand, the examples).
    pub identities: Vec<DriveIdentity>,
    /// Read every drive back and compare (on by default).
    pub verify: bool,
    /// Safety rules: each target is checked again right before it is opened.
    pub discover: DiscoverOptions,
    /// Chunks queued per drive; the lag a slow drive may build up.
    pub queue_depth: usize,
    /// `(content length, SHA-256 hex)`: a drive already holding exactly
    /// this is not written but reported done with `skipped` (duplicator).
    pub skip_if_holds: Option<(u64, String)>,
    /// Hex SHA-256 of the decoded content when already known (the store
    /// hashes raw images on upload): the read-back is compared with it and
    /// the source is not hashed again during the write.
    pub content_sha256: Option<String>,
    /// A drive that takes no data for this long is failed as not
    /// responding, so it holds the others back no longer.
    pub stall_timeout: Duration,
}

impl CopyPlan {
    pub fn new(image: impl Into<PathBuf>, targets: Vec<String>) -> CopyPlan {
        CopyPlan {
            image: image.into(),
            bmap: None,
            targets,
            identities: Vec::new(),
            verify: true,
            discover: DiscoverOptions::default(),
            queue_depth: 4,
            skip_if_holds: None,
            content_sha256: None,
            stall_timeout: Duration::from_secs(120),
        }
    }

    /// A plan for drives as they were validated: each is written only if it
    /// is still the same drive (name, diskseq, serial, size) when opened.
    pub fn for_drives(image: impl Into<PathBuf>, drives: &[Drive]) -> CopyPlan {
        CopyPlan {
            identities: drives.iter().map(DriveIdentity::of).collect(),
            ..CopyPlan::new(image, drives.iter().map(|d| d.name.clone()).collect())
        }
    }
}

/// A progress report for one target (`index` into `CopyPlan::targets`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetUpdate {
    pub index: usize,
    pub drive: String,
    pub progress: Progress,
}

/// How one target ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetResult {
    /// The name as given in the plan.
    pub drive: String,
    /// `Done`, `Failed` or `Cancelled`.
    pub phase: Phase,
    pub error: Option<String>,
    pub bytes_written: u64,
    /// Read back and found equal to the image.
    pub verified: bool,
    /// Already held the image; nothing written.
    pub skipped: bool,
    /// Hex SHA-256 of what was read back (whole-image copies).
    pub sha256: Option<String>,
}

/// The outcome of [`copy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    pub format: Option<ImageFormat>,
    /// Decoded bytes read from the image.
    pub content_len: u64,
    /// Hex SHA-256 of the decoded content (when verifying, without bmap).
    pub content_sha256: Option<String>,
    /// The image could not be read to the end: every target failed.
    pub source_error: Option<String>,
    pub targets: Vec<TargetResult>,
}

impl CopyReport {
    /// Every target written and verified: the acknowledgement.
    pub fn all_done(&self) -> bool {
        self.source_error.is_none() && self.targets.iter().all(|t| t.phase == Phase::Done)
    }
}

/// A target the engine does not open itself, such as a disc burner: it is
/// handed the content as a byte stream (the same chunks the drives get, in
/// order) and reports where it is; the engine adds rate and ETA.
pub struct StreamTarget {
    /// Kernel name, for progress and the report.
    pub name: String,
    /// Writes the content and, when asked, verifies it. `Err` is a message
    /// a person can act on ("no disc in sr1").
    #[allow(clippy::type_complexity)]
    pub write: Box<dyn FnOnce(StreamInput<'_>) -> std::result::Result<StreamDone, String> + Send>,
}

impl std::fmt::Debug for StreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamTarget")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// What a [`StreamTarget`] gets to work with.
pub struct StreamInput<'a> {
    /// The decoded content, front to back. An error here means the source
    /// failed or the job was cancelled; the engine reports which.
    pub content: &'a mut dyn Read,
    /// Bytes the content holds, when known before reading.
    pub size: Option<u64>,
    /// `(phase, bytes done in it, its total, drive buffer fill %)`.
    pub progress: &'a mut dyn FnMut(Phase, u64, Option<u64>, Option<u8>),
    pub cancel: &'a CancelToken,
    /// Read the target back after writing (the plan's `verify`).
    pub verify: bool,
}

/// How a [`StreamTarget`] finished.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamDone {
    pub bytes_written: u64,
    pub verified: bool,
    /// Hex SHA-256 of the content the target received; checked against the
    /// source's.
    pub sha256: Option<String>,
}

/// What the hasher learned about the source, published once.
#[derive(Clone, Default)]
struct SourceOutcome {
    sha256: Option<[u8; 32]>,
    error: Option<String>,
}

#[derive(Default)]
struct Published {
    value: Mutex<Option<SourceOutcome>>,
    cv: Condvar,
}

impl Published {
    fn set(&self, v: SourceOutcome) {
        if let Ok(mut g) = self.value.lock() {
            *g = Some(v);
        }
        self.cv.notify_all();
    }
    fn wait(&self) -> SourceOutcome {
        let Ok(mut g) = self.value.lock() else {
            return SourceOutcome::default();
        };
        loop {
            if let Some(v) = g.as_ref() {
                return v.clone();
            }
            g = match self.cv.wait(g) {
                Ok(g) => g,
                Err(_) => return SourceOutcome::default(),
            };
        }
    }
}

struct Job<'a> {
    plan: &'a CopyPlan,
    image: String,
    bmap: Option<&'a BlockMap>,
    /// Bytes the drive must hold, when known before reading.
    need: Option<u64>,
    /// Bytes each drive will be sent.
    write_total: Option<u64>,
    cancel: &'a CancelToken,
    source: &'a Published,
    /// Per target: dropped by the reader for taking no data.
    stalled: Vec<AtomicBool>,
    /// `CopyPlan::content_sha256`, decoded.
    known_sha256: Option<[u8; 32]>,
    /// Drives and streams: the consumers before the hasher.
    targets: usize,
}

/// Copies `plan.image` to every target at once. Blocks until every target
/// is done, failed or cancelled; call it from a thread of its own. Progress
/// arrives on `progress` from the targets' threads.
pub fn copy(
    plan: &CopyPlan,
    cancel: &CancelToken,
    progress: &(dyn Fn(TargetUpdate) + Sync),
) -> CopyReport {
    copy_from(
        plan,
        ImageReader::open(&plan.image),
        Vec::new(),
        cancel,
        progress,
    )
}

/// [`copy`] from any source (a file, or a device such as the disc in the
/// source drive) to the plan's drives and to `streams` (disc burners). The
/// report lists the plan's targets first, then the streams, and progress
/// indexes them the same way.
pub fn copy_from(
    plan: &CopyPlan,
    source: Result<ImageReader>,
    streams: Vec<StreamTarget>,
    cancel: &CancelToken,
    progress: &(dyn Fn(TargetUpdate) + Sync),
) -> CopyReport {
    let mut report = CopyReport {
        format: None,
        content_len: 0,
        content_sha256: None,
        source_error: None,
        targets: plan
            .targets
            .iter()
            .chain(streams.iter().map(|s| &s.name))
            .map(|d| TargetResult {
                drive: d.clone(),
                phase: Phase::Failed,
                error: None,
                bytes_written: 0,
                verified: false,
                skipped: false,
                sha256: None,
            })
            .collect(),
    };
    let fail_all = |report: &mut CopyReport, e: String| {
        for t in &mut report.targets {
            t.error = Some(e.clone());
        }
        report.source_error = Some(e);
    };
    let mut reader = match source {
        Ok(r) => r,
        Err(e) => {
            fail_all(&mut report, e.to_string());
            return report;
        }
    };
    report.format = Some(reader.info().format);
    let bmap = match plan.bmap.as_deref().map(BlockMap::load).transpose() {
        Ok(b) => b,
        Err(e) => {
            fail_all(&mut report, e.to_string());
            return report;
        }
    };
    if let (Some(b), Some(c)) = (&bmap, reader.info().content_size)
        && b.image_size != c
    {
        let e = format!(
            "bmap describes {} bytes but image {} holds {c}",
            b.image_size,
            reader.name()
        );
        fail_all(&mut report, e);
        return report;
    }
    let need = bmap
        .as_ref()
        .map(|b| b.image_size)
        .or(reader.info().content_size);
    let known_sha256 = match plan.content_sha256.as_deref().map(parse_sha256).transpose() {
        Ok(k) => k,
        Err(e) => {
            fail_all(&mut report, e);
            return report;
        }
    };
    let source = Published::default();
    let job = Job {
        plan,
        image: reader.name().to_owned(),
        bmap: bmap.as_ref(),
        need,
        write_total: bmap.as_ref().map(BlockMap::mapped_bytes).or(need),
        cancel,
        source: &source,
        stalled: (0..plan.targets.len() + streams.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        targets: plan.targets.len() + streams.len(),
        known_sha256,
    };
    let depth = plan.queue_depth.max(1);

    std::thread::scope(|s| {
        let job = &job;
        let mut sinks: Vec<Option<Tx<Arc<Chunk>>>> = Vec::new();
        let mut handles = Vec::new();
        for (index, name) in plan.targets.iter().enumerate() {
            let (tx, rx) = bounded(depth);
            sinks.push(Some(tx));
            handles.push(s.spawn(move || target_thread(job, index, name, rx, progress)));
        }
        for (i, stream) in streams.into_iter().enumerate() {
            let (tx, rx) = bounded(depth);
            sinks.push(Some(tx));
            let index = plan.targets.len() + i;
            handles.push(s.spawn(move || stream_thread(job, index, stream, rx, progress)));
        }
        // The bmap's checksums are checked on the source even without a
        // read-back, as bmaptool does.
        let known = job.known_sha256.is_some();
        let hasher = ((plan.verify && !known) || job.bmap.is_some()).then(|| {
            let (tx, rx) = bounded(depth);
            sinks.push(Some(tx));
            s.spawn(move || hasher_thread(job, rx))
        });
        if hasher.is_none() {
            source.set(SourceOutcome::default());
        }

        let mut pool = Pool::new(CHUNK, depth + 3);
        let read = read_source(job, &mut reader, &mut pool, &mut sinks);
        let read_ok = read.is_ok();
        match read {
            Ok(()) => sinks.into_iter().flatten().for_each(Tx::finish),
            Err(e) => {
                let msg = e.to_string();
                // Not the image's fault: no source error.
                if !matches!(e, Error::Cancelled | Error::NoTargetLeft) {
                    report.source_error = Some(msg.clone());
                }
                sinks
                    .into_iter()
                    .flatten()
                    .for_each(|tx| tx.abort(msg.clone()));
            }
        }
        drop(pool);
        report.content_len = reader.position();
        if let Some(h) = hasher {
            let outcome = h.join().unwrap_or_default();
            report.content_sha256 = outcome.sha256.map(hex::encode);
            // The hasher repeats the reader's error; its own (bmap mismatch) counts
            // only when the reader got through.
            if read_ok {
                report.source_error = outcome.error;
            }
        }
        for (i, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(r) => report.targets[i] = r,
                Err(_) => {
                    report.targets[i].error =
                        Some("internal error: the writer thread panicked".into())
                }
            }
        }
    });
    report
}

fn parse_sha256(hex_str: &str) -> std::result::Result<[u8; 32], String> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_str.trim(), &mut out)
        .map_err(|_| format!("{hex_str:?} is not a hex SHA-256"))?;
    Ok(out)
}

/// Hands `c` to every live consumer in turn. A consumer that takes nothing
/// for `stall_timeout` is dropped (and marked stalled); a cancel is noticed
/// within a tenth of a second even while a queue is full.
fn broadcast(job: &Job, sinks: &mut [Option<Tx<Arc<Chunk>>>], c: &Arc<Chunk>) -> Result<()> {
    for (i, s) in sinks.iter_mut().enumerate() {
        let Some(tx) = s else { continue };
        let since = Instant::now();
        let mut item = c.clone();
        loop {
            match tx.push(item, Duration::from_millis(100)) {
                Push::Done => break,
                Push::Closed => {
                    *s = None;
                    break;
                }
                Push::Full(back) => {
                    if job.cancel.is_cancelled() {
                        return Err(Error::Cancelled);
                    }
                    if since.elapsed() >= job.plan.stall_timeout {
                        if let Some(flag) = job.stalled.get(i) {
                            flag.store(true, Ordering::Relaxed);
                        }
                        if let Some(tx) = s.take() {
                            tx.abort("stalled".into());
                        }
                        break;
                    }
                    item = back;
                }
            }
        }
    }
    Ok(())
}

/// Decodes the image into chunks and hands each to every live consumer.
fn read_source(
    job: &Job,
    reader: &mut ImageReader,
    pool: &mut Pool,
    sinks: &mut [Option<Tx<Arc<Chunk>>>],
) -> Result<()> {
    let targets = job.targets;
    let send = |sinks: &mut [Option<Tx<Arc<Chunk>>>], c: Arc<Chunk>| -> Result<()> {
        if job.cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        broadcast(job, sinks, &c)?;
        // Decoding on only for the hasher would be wasted work.
        if sinks[..targets].iter().all(Option::is_none) {
            return Err(Error::NoTargetLeft);
        }
        Ok(())
    };
    match job.bmap {
        None => {
            let mut offset = 0u64;
            loop {
                let mut buf = pool.get();
                let n = reader.read_full(buf.as_mut_slice())?;
                if n == 0 {
                    return Ok(());
                }
                send(sinks, pool.chunk(buf, offset, n))?;
                offset += n as u64;
                if n < CHUNK {
                    return Ok(());
                }
            }
        }
        Some(map) => {
            let mut scratch = Vec::new();
            for r in &map.ranges {
                if scratch.is_empty() && reader.info().format.is_compressed() {
                    scratch = vec![0u8; 1 << 20];
                }
                reader.seek_raw(r.offset, &mut scratch)?;
                let mut left = r.len;
                while left > 0 {
                    let want = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
                    let mut buf = pool.get();
                    let n = reader.read_full(&mut buf.as_mut_slice()[..want])?;
                    if n < want {
                        return Err(Error::Corrupt {
                            image: job.image.clone(),
                            offset: reader.position(),
                            detail: format!("ends inside the bmap range at byte {}", r.offset),
                        });
                    }
                    let at = r.offset + (r.len - left);
                    send(sinks, pool.chunk(buf, at, n))?;
                    left -= n as u64;
                }
            }
            Ok(())
        }
    }
}

/// Hashes the content (or checks each bmap range) as it streams past.
fn hasher_thread(job: &Job, rx: Rx<Arc<Chunk>>) -> SourceOutcome {
    let mut out = SourceOutcome::default();
    let mut whole = Sha256::new();
    let mut range = Sha256::new();
    let mut ri = 0usize;
    loop {
        match rx.pop() {
            Next::Item(c) => match job.bmap {
                None => whole.update(c.data()),
                Some(map) => {
                    range.update(c.data());
                    if let Some(r) = map.ranges.get(ri)
                        && c.end() == r.offset + r.len
                    {
                        let got: [u8; 32] = std::mem::take(&mut range).finalize().into();
                        if got != r.sha256 {
                            out.error = Some(format!(
                                "image {} does not match its bmap in the range at byte {}",
                                job.image, r.offset
                            ));
                            break;
                        }
                        ri += 1;
                    }
                }
            },
            Next::End => {
                if job.bmap.is_none() {
                    out.sha256 = Some(whole.finalize().into());
                }
                break;
            }
            Next::Aborted(e) => {
                out.error = Some(e);
                break;
            }
        }
    }
    job.source.set(out.clone());
    out
}

fn target_thread(
    job: &Job,
    index: usize,
    name: &str,
    rx: Rx<Arc<Chunk>>,
    progress: &(dyn Fn(TargetUpdate) + Sync),
) -> TargetResult {
    run_target(index, name, progress, |meter, res| {
        write_target(job, index, name, rx, meter, res)
    })
}

fn stream_thread(
    job: &Job,
    index: usize,
    target: StreamTarget,
    rx: Rx<Arc<Chunk>>,
    progress: &(dyn Fn(TargetUpdate) + Sync),
) -> TargetResult {
    let name = target.name.clone();
    run_target(index, &name, progress, |meter, res| {
        write_stream(job, index, target, rx, meter, res)
    })
}

/// One target's thread: its progress, its result, and how it ended.
fn run_target(
    index: usize,
    name: &str,
    progress: &(dyn Fn(TargetUpdate) + Sync),
    body: impl FnOnce(&mut Meter, &mut TargetResult) -> Result<()>,
) -> TargetResult {
    let sink = |p: Progress| {
        progress(TargetUpdate {
            index,
            drive: name.to_owned(),
            progress: p,
        })
    };
    let mut meter = Meter::new(&sink);
    let mut res = TargetResult {
        drive: name.to_owned(),
        phase: Phase::Done,
        error: None,
        bytes_written: 0,
        verified: false,
        skipped: false,
        sha256: None,
    };
    if let Err(e) = body(&mut meter, &mut res) {
        res.phase = if matches!(e, Error::Cancelled) {
            Phase::Cancelled
        } else {
            Phase::Failed
        };
        tracing::warn!(drive = name, error = %e, "target ended without success");
        res.error = Some(e.to_string());
    }
    sink(Progress {
        phase: res.phase,
        bytes_done: meter.done(),
        bytes_total: None,
        rate_bps: 0,
        eta_secs: None,
        buffer_fill: None,
    });
    res
}

/// Why the chunks stopped coming to target `index`: a cancel, the target
/// taking nothing for too long, or the source failing.
fn aborted(job: &Job, index: usize, drive: &str, reason: String) -> Error {
    if job.cancel.is_cancelled() {
        Error::Cancelled
    } else if job
        .stalled
        .get(index)
        .is_some_and(|f| f.load(Ordering::Relaxed))
    {
        Error::Stalled {
            drive: drive.to_owned(),
            secs: job.plan.stall_timeout.as_secs(),
        }
    } else {
        Error::Source(reason)
    }
}

/// The chunks of one consumer's queue as a byte stream.
struct ContentStream {
    rx: Rx<Arc<Chunk>>,
    current: Option<Arc<Chunk>>,
    pos: usize,
    next_offset: u64,
    ended: bool,
    /// Why the stream stopped early, as the reader said.
    aborted: Option<String>,
}

impl Read for ContentStream {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(c) = &self.current
                && self.pos < c.len
            {
                let n = out.len().min(c.len - self.pos);
                out[..n].copy_from_slice(&c.data()[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            self.current = None;
            if self.ended {
                return Ok(0);
            }
            match self.rx.pop() {
                Next::Item(c) => {
                    if c.offset != self.next_offset {
                        return Err(std::io::Error::other(format!(
                            "the content jumps from byte {} to {}",
                            self.next_offset, c.offset
                        )));
                    }
                    self.next_offset = c.end();
                    self.current = Some(c);
                    self.pos = 0;
                }
                Next::End => self.ended = true,
                Next::Aborted(e) => {
                    self.aborted = Some(e.clone());
                    return Err(std::io::Error::other(e));
                }
            }
        }
    }
}

/// Hands the content to a stream target and checks what it says it got
/// against the source's hash.
fn write_stream(
    job: &Job,
    index: usize,
    target: StreamTarget,
    rx: Rx<Arc<Chunk>>,
    meter: &mut Meter,
    res: &mut TargetResult,
) -> Result<()> {
    let drive = target.name.clone();
    meter.phase(Phase::Prepare, None);
    if job.bmap.is_some() {
        return Err(Error::Refused {
            name: drive,
            reason: "a disc needs the whole image, and this copy writes only the ranges of a .bmap"
                .into(),
        });
    }
    let mut content = ContentStream {
        rx,
        current: None,
        pos: 0,
        next_offset: 0,
        ended: false,
        aborted: None,
    };
    let mut report = |phase: Phase, done: u64, total: Option<u64>, fill: Option<u8>| {
        meter.set(phase, done, total, fill)
    };
    let outcome = (target.write)(StreamInput {
        content: &mut content,
        size: job.need,
        progress: &mut report,
        cancel: job.cancel,
        verify: job.plan.verify,
    });
    let cut_off = content.aborted.take();
    // Let the reader go on without this target at once.
    drop(content);
    let done = match outcome {
        Ok(done) => done,
        Err(detail) => {
            return Err(match cut_off {
                Some(reason) => aborted(job, index, &drive, reason),
                None if job.cancel.is_cancelled() => Error::Cancelled,
                None => Error::Stream { drive, detail },
            });
        }
    };
    res.bytes_written = done.bytes_written;
    res.verified = done.verified;
    res.sha256 = done.sha256;
    let src = job.source.wait();
    if let Some(e) = src.error {
        return Err(Error::Source(e));
    }
    if let (Some(want), Some(got)) = (src.sha256.or(job.known_sha256), &res.sha256)
        && !hex::encode(want).eq_ignore_ascii_case(got)
    {
        res.verified = false;
        return Err(Error::VerifyMismatch {
            drive,
            detail: format!(
                "it received content with SHA-256 {got}, the image's is {}",
                hex::encode(want)
            ),
        });
    }
    Ok(())
}

/// Opens target `index` for writing, after checking it may be written and
/// is still the drive the copy was planned for.
fn open_target(job: &Job, index: usize, name: &str) -> Result<(String, Disk)> {
    let planned = job.plan.identities.get(index);
    let changed = |detail: String| Error::Changed {
        drive: planned.map_or_else(|| name.to_owned(), |p| p.name.clone()),
        job: "copy",
        detail,
    };
    let drive = check_target(name, &job.plan.discover)?;
    if let Some(p) = planned
        && let Some(detail) = p.differences(&DriveIdentity::of(&drive))
    {
        return Err(changed(detail));
    }
    let disk = Disk::open(std::path::Path::new(&drive.path), Access::WriteExclusive).map_err(
        |e| match e.raw_os_error() {
            Some(libc::EBUSY) => Error::Refused {
                name: drive.name.clone(),
                reason: "in use (a partition is mounted or another program holds it)".into(),
            },
            Some(libc::EROFS) | Some(libc::EACCES) | Some(libc::EPERM) => Error::Refused {
                name: drive.name.clone(),
                reason: "read-only".into(),
            },
            _ => Error::Drive {
                drive: drive.name.clone(),
                op: "open",
                source: e,
            },
        },
    )?;
    // What the open handle holds: a swap between the check and the open
    // shows here (the handle's own diskseq and size).
    if let Some(p) = planned {
        let opened = DriveIdentity {
            diskseq: disk.diskseq().ok().or(p.diskseq),
            size: disk.size(),
            ..p.clone()
        };
        if let Some(detail) = p.differences(&opened) {
            return Err(changed(detail));
        }
    }
    Ok((drive.name, disk))
}

fn write_chunk(disk: &mut Disk, drive: &str, data: &[u8], offset: u64) -> Result<()> {
    let sector = disk.logical_sector_size() as usize;
    let r = if data.len().is_multiple_of(sector) {
        disk.write_all_at(data, offset)
    } else {
        disk.write_unaligned_tail(data, offset)
    };
    r.map_err(Error::drive(drive, "write"))
}

fn write_target(
    job: &Job,
    index: usize,
    name: &str,
    rx: Rx<Arc<Chunk>>,
    meter: &mut Meter,
    res: &mut TargetResult,
) -> Result<()> {
    let cancel = job.cancel;
    // Block drives of this copy verify at the same time: share the budget.
    let read_buf = read_buf_for(job.plan.targets.len());
    meter.phase(Phase::Prepare, None);
    let (drive, mut disk) = open_target(job, index, name)?;
    let seq_before = disk.diskseq().ok();
    if let Some(need) = job.need
        && need > disk.size()
    {
        return Err(Error::TooSmall {
            image: job.image.clone(),
            drive,
            image_size: need,
            drive_size: disk.size(),
        });
    }
    if let Some((len, sha)) = &job.plan.skip_if_holds
        && *len <= disk.size()
    {
        let mut h = Sha256::new();
        disk.flush_buffers().ok();
        hash_range(
            &mut disk,
            &drive,
            0..*len,
            &mut h,
            cancel,
            read_buf,
            &mut |_| {},
        )?;
        if hex::encode(h.finalize()).eq_ignore_ascii_case(sha) {
            res.skipped = true;
            res.verified = true;
            return Ok(());
        }
    }
    capacity_check(&mut disk, &drive)?;

    meter.phase(Phase::Write, job.write_total);
    let mut first: Option<Arc<Chunk>> = None;
    let mut len = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        match rx.pop() {
            Next::Item(c) => {
                if c.end() > disk.size() {
                    return Err(Error::TooSmall {
                        image: job.image.clone(),
                        drive,
                        image_size: c.end(),
                        drive_size: disk.size(),
                    });
                }
                if c.offset == 0 {
                    let hold = c.len.min(HOLD_BACK);
                    if c.len > hold {
                        write_chunk(&mut disk, &drive, &c.data()[hold..], hold as u64)?;
                    }
                    first = Some(c.clone());
                } else {
                    write_chunk(&mut disk, &drive, c.data(), c.offset)?;
                }
                len = len.max(c.end());
                res.bytes_written += c.len as u64;
                meter.add(c.len as u64);
            }
            Next::End => break,
            Next::Aborted(e) => return Err(aborted(job, index, &drive, e)),
        }
    }
    drop(rx);
    if let Some(c) = first.take() {
        write_chunk(&mut disk, &drive, &c.data()[..c.len.min(HOLD_BACK)], 0)?;
    }

    meter.phase(Phase::Sync, None);
    disk.sync().map_err(Error::drive(&drive, "flush"))?;
    // The image must have read cleanly (and matched its bmap) before this
    // drive counts as written, verified or not.
    let src = job.source.wait();
    if let Some(e) = src.error {
        return Err(Error::Source(e));
    }

    if job.plan.verify {
        meter.phase(Phase::Verify, job.write_total.or(Some(len)));
        disk.flush_buffers()
            .map_err(Error::drive(&drive, "drop cached pages"))?;
        // The open handle's disk, and whatever disk now carries the name:
        // a medium swapped in a card reader, or a stick pulled and another
        // plugged in under the same name, changes one of them.
        let by_name = std::fs::read_to_string(format!("/sys/block/{drive}/diskseq"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        for after in [disk.diskseq().ok(), by_name].into_iter().flatten() {
            if let Some(before) = seq_before
                && before != after
            {
                return Err(Error::Replaced {
                    drive,
                    before,
                    after,
                });
            }
        }
        let mut on_bytes = |n| meter.add(n);
        match job.bmap {
            None => {
                let mut h = Sha256::new();
                hash_range(
                    &mut disk,
                    &drive,
                    0..len,
                    &mut h,
                    cancel,
                    read_buf,
                    &mut on_bytes,
                )?;
                let got: [u8; 32] = h.finalize().into();
                res.sha256 = Some(hex::encode(got));
                if let Some(want) = src.sha256.or(job.known_sha256)
                    && want != got
                {
                    return Err(Error::VerifyMismatch {
                        drive,
                        detail: format!(
                            "SHA-256 of the {len} bytes read back is {}, the image's is {}",
                            hex::encode(got),
                            hex::encode(want)
                        ),
                    });
                }
            }
            Some(map) => {
                for r in &map.ranges {
                    let mut h = Sha256::new();
                    hash_range(
                        &mut disk,
                        &drive,
                        r.offset..r.offset + r.len,
                        &mut h,
                        cancel,
                        read_buf,
                        &mut on_bytes,
                    )?;
                    let got: [u8; 32] = h.finalize().into();
                    if got != r.sha256 {
                        return Err(Error::VerifyMismatch {
                            drive,
                            detail: format!(
                                "the {} bytes at byte {} differ from the bmap's checksum",
                                r.len, r.offset
                            ),
                        });
                    }
                }
            }
        }
        res.verified = true;
    }
    if let Err(e) = disk.reread_partitions() {
        tracing::debug!(drive, error = %e, "BLKRRPART failed (no partition scanning on this device)");
    }
    Ok(())
}

/// Fills `buf` with a pattern unique to each 8-byte position and `salt`.
fn pattern(buf: &mut [u8], disk_offset: u64, salt: u64) {
    for (i, w) in buf.chunks_exact_mut(8).enumerate() {
        let v = (disk_offset + i as u64 * 8) ^ salt;
        w.copy_from_slice(&v.to_le_bytes());
    }
}

/// Writes distinct patterns to the first and last MiB and reads them back:
/// a card that wraps its addresses (fake capacity) shows the last write in
/// the first MiB. Both are zeroed afterwards.
fn capacity_check(disk: &mut Disk, drive: &str) -> Result<()> {
    let size = disk.size();
    if size < 4 * PROBE as u64 {
        return Ok(());
    }
    let last = size - PROBE as u64;
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x5eed);
    let mut a = AlignedBuf::zeroed(PROBE);
    let mut b = AlignedBuf::zeroed(PROBE);
    pattern(a.as_mut_slice(), 0, salt);
    pattern(b.as_mut_slice(), last, salt);
    let io = Error::drive;
    disk.write_all_at(a.as_slice(), 0)
        .map_err(io(drive, "write the first MiB"))?;
    disk.write_all_at(b.as_slice(), last)
        .map_err(io(drive, "write the last MiB"))?;
    disk.sync().map_err(io(drive, "flush"))?;
    disk.flush_buffers()
        .map_err(io(drive, "drop cached pages"))?;
    let mut got = AlignedBuf::zeroed(PROBE);
    disk.read_exact_at(got.as_mut_slice(), 0)
        .map_err(io(drive, "read the first MiB"))?;
    if got.as_slice() != a.as_slice() {
        let detail = if got.as_slice() == b.as_slice() {
            "writing its last MiB overwrote its first".to_owned()
        } else {
            "its first MiB does not read back what was written".to_owned()
        };
        return Err(Error::FakeCapacity {
            drive: drive.into(),
            detail,
        });
    }
    disk.read_exact_at(got.as_mut_slice(), last)
        .map_err(io(drive, "read the last MiB"))?;
    if got.as_slice() != b.as_slice() {
        return Err(Error::FakeCapacity {
            drive: drive.into(),
            detail: format!("its last MiB (at byte {last}) does not read back what was written"),
        });
    }
    let zero = AlignedBuf::zeroed(PROBE);
    disk.write_all_at(zero.as_slice(), 0)
        .map_err(io(drive, "write the first MiB"))?;
    disk.write_all_at(zero.as_slice(), last)
        .map_err(io(drive, "write the last MiB"))?;
    Ok(())
}
