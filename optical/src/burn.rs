//! Burning an image to a disc, and blanking or formatting rewritable discs.
//!
//! The sequences follow libburn's cookbook per media type:
//! - CD-R/RW: Session At Once (MODE SELECT 05h SAO, SEND CUE SHEET, WRITE
//!   from the pregap at LBA -150, SYNCHRONIZE CACHE), falling back to Track
//!   At Once (MODE SELECT TAO, WRITE at the NWA, SYNC, CLOSE SESSION) when
//!   the drive lacks or refuses SAO.
//! - DVD-R, DVD-RW sequential: Disc At Once (MODE SELECT SAO, RESERVE
//!   TRACK, WRITE, SYNC), falling back to incremental (MODE SELECT packet,
//!   WRITE, SYNC, CLOSE TRACK, CLOSE SESSION).
//! - DVD+R, BD-R: WRITE at the NWA, SYNC, CLOSE TRACK, then close the
//!   session or finalize the disc.
//! - DVD+RW, DVD-RAM, BD-RE, DVD-RW restricted overwrite: FORMAT UNIT when
//!   unformatted, WRITE from LBA 0, SYNC (DVD+RW: CLOSE SESSION to stop
//!   background formatting).
//!
//! Everything is checked before the first WRITE ([`preflight`]): a disc
//! that is missing, too small, not blank, finalized or not writable is
//! refused with a message saying so. The image is hashed while written and
//! read back to compare SHA-256 when asked.

use std::io::Read;
use std::ops::ControlFlow;
use std::time::Duration;

use copyunit_model::Phase;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::mmc::{
    BLOCK, BlankKind, CapacityKind, Configuration, DiscStatus, FormatDescriptor, Media, Mmc,
    TrackRef, WriteParams, WriteType, close,
};
use crate::sense::Condition;
use crate::transport::Transport;

/// Waiting and retrying. Real drives need the defaults; tests use zero
/// delays (the simulator has no clock).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timing {
    /// Pause after "long write in progress" or "becoming ready".
    pub busy_delay: Duration,
    /// Give up after this many busy answers in a row.
    pub busy_limit: u32,
    /// Pause between progress polls of blank/format.
    pub poll_interval: Duration,
    /// Give up polling after this many polls.
    pub poll_limit: u32,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            busy_delay: Duration::from_millis(50),
            busy_limit: 6000,
            poll_interval: Duration::from_secs(1),
            poll_limit: 7200,
        }
    }
}

impl Timing {
    /// No waiting, generous limits: for the simulator.
    pub fn immediate() -> Timing {
        Timing {
            busy_delay: Duration::ZERO,
            busy_limit: 100_000,
            poll_interval: Duration::ZERO,
            poll_limit: 100_000,
        }
    }
}

/// How to burn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnOptions {
    /// Read the disc back and compare SHA-256 with the image.
    pub verify: bool,
    /// Eject the tray when done (also after a failed verify).
    pub eject: bool,
    /// Close the disc so nothing can be appended (best compatibility).
    pub finalize: bool,
    /// FORMAT UNIT an unformatted overwrite disc; else refuse it.
    pub format_if_needed: bool,
    /// Try Session At Once on CD first.
    pub prefer_sao: bool,
    pub timing: Timing,
}

impl Default for BurnOptions {
    fn default() -> BurnOptions {
        BurnOptions {
            verify: true,
            eject: false,
            finalize: true,
            format_if_needed: true,
            prefer_sao: true,
            timing: Timing::default(),
        }
    }
}

/// Progress of a burn, blank or format, for the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    pub bytes_done: u64,
    pub bytes_total: u64,
    /// Drive buffer fill, percent, when known.
    pub buffer_fill: Option<u8>,
}

/// How the data went onto the disc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// CD Session At Once.
    Sao,
    /// CD Track At Once.
    Tao,
    /// DVD-R Disc At Once with RESERVE TRACK.
    Dao,
    /// DVD-R incremental.
    Incremental,
    /// DVD+R / BD-R sequential.
    Sequential,
    /// Random-access overwrite media.
    Overwrite,
}

/// What preflight decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub media: Media,
    /// First LBA of the image on the disc.
    pub start_lba: u32,
    /// Blocks to write: the image padded to the media's minimum/alignment.
    pub blocks: u32,
    /// Blocks available.
    pub free_blocks: u32,
    /// FORMAT UNIT to send first, if any.
    pub format: Option<FormatDescriptor>,
}

/// The result of a successful burn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BurnReport {
    pub media: Media,
    pub mode: WriteMode,
    pub start_lba: u32,
    pub blocks: u32,
    pub bytes: u64,
    /// Hex SHA-256 of the image bytes read from the source.
    pub sha256: String,
    pub verified: bool,
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Wait until the drive is ready: unit attentions are consumed, "becoming
/// ready" is waited out, no disc is [`Error::NoDisc`].
pub fn wait_ready(mmc: &mut Mmc<'_>, timing: &Timing) -> Result<()> {
    let mut tries = 0;
    loop {
        match mmc.test_unit_ready() {
            Ok(()) => return Ok(()),
            Err(e) => match e.condition() {
                Some(Condition::NoMedium { .. }) => {
                    return Err(Error::NoDisc {
                        device: mmc.device().to_string(),
                    });
                }
                Some(c) if c.is_retryable() => {
                    tries += 1;
                    if tries > timing.busy_limit {
                        return Err(e);
                    }
                    // A unit attention clears by being reported: no wait.
                    if !matches!(c, Condition::MediumChanged | Condition::Reset) {
                        std::thread::sleep(timing.busy_delay);
                    }
                }
                _ => return Err(e),
            },
        }
    }
}

/// Padded size of an image on a medium: whole blocks; CD tracks at least
/// 300 blocks; DVD/BD in whole 32 KiB packets. The rule is
/// [`copyunit_model::room::disc_blocks`], the one the dashboard and unitd
/// check room with.
pub fn padded_blocks(media: Media, size: u64) -> u32 {
    debug_assert_eq!(BLOCK as u64, copyunit_model::room::DISC_BLOCK);
    u32::try_from(copyunit_model::room::disc_blocks(media.is_cd(), size)).unwrap_or(u32::MAX)
}

/// The format to send to an unformatted overwrite disc.
fn format_for(media: Media, offered: &[FormatDescriptor]) -> Option<FormatDescriptor> {
    let want = match media {
        // Type 26h accepts a fantasy size (cookbook).
        Media::DvdPlusRw => {
            return Some(FormatDescriptor {
                blocks: u32::MAX,
                format_type: 0x26,
                param: 0,
            });
        }
        Media::DvdRam | Media::BdRe | Media::DvdRwRestricted | Media::DvdRwSequential => 0x00,
        _ => return None,
    };
    offered.iter().find(|f| f.format_type == want).copied()
}

/// Check everything before writing: a disc is present, writable by this
/// drive, blank (write-once media) or formattable, and big enough.
pub fn preflight(
    mmc: &mut Mmc<'_>,
    cfg: &Configuration,
    size: u64,
    opts: &BurnOptions,
) -> Result<Plan> {
    let device = mmc.device().to_string();
    let media = cfg.media();
    if media == Media::None {
        return Err(Error::NoDisc { device });
    }
    let not_writable = |why: &str| Error::NotWritable {
        device: device.clone(),
        media: media.name(),
        why: why.to_string(),
    };
    if media.is_read_only() {
        return Err(not_writable(
            ": a pressed or read-only disc, or one this drive cannot write",
        ));
    }
    if !cfg.supports_profile(media) {
        return Err(not_writable(": this drive cannot write it"));
    }
    let blocks = padded_blocks(media, size);
    let too_small = |free: u32| Error::TooSmall {
        device: device.clone(),
        media: media.name(),
        need: size,
        free: u64::from(free) * BLOCK as u64,
    };
    if media.is_overwrite() {
        let caps = mmc.read_format_capacities()?;
        let mut formatted = caps.current_kind == CapacityKind::Formatted;
        if media == Media::DvdPlusRw {
            formatted = mmc.read_disc_information()?.bg_format != 0;
        }
        let format = if formatted {
            None
        } else if !opts.format_if_needed {
            return Err(not_writable(": not formatted (format it first)"));
        } else {
            Some(
                format_for(media, &caps.formats)
                    .ok_or_else(|| not_writable(": the drive offers no format for it"))?,
            )
        };
        let free = match format {
            Some(f) if f.blocks != u32::MAX => f.blocks,
            _ => caps.current_blocks,
        };
        if blocks > free {
            return Err(too_small(free));
        }
        return Ok(Plan {
            media,
            start_lba: 0,
            blocks,
            free_blocks: free,
            format,
        });
    }
    let info = mmc.read_disc_information()?;
    match info.status {
        DiscStatus::Blank => {}
        DiscStatus::Complete => {
            return Err(Error::Finalized {
                device,
                media: media.name(),
            });
        }
        DiscStatus::Appendable | DiscStatus::Other => {
            // An ISO image is built for LBA 0: appended elsewhere it would
            // not mount. Erasable discs can be blanked.
            return Err(Error::NotBlank {
                device,
                media: media.name(),
                status: if info.erasable {
                    "appendable; it can be blanked".into()
                } else {
                    "appendable".into()
                },
            });
        }
    }
    let track = mmc.read_track_information(TrackRef::Invisible)?;
    let start = track.next_writable.unwrap_or(track.start);
    if blocks > track.free_blocks {
        return Err(too_small(track.free_blocks));
    }
    Ok(Plan {
        media,
        start_lba: start,
        blocks,
        free_blocks: track.free_blocks,
        format: None,
    })
}

/// Reports progress and honours cancellation.
struct Reporter<'p> {
    callback: &'p mut dyn FnMut(&Progress) -> ControlFlow<()>,
    total: u64,
    fill: Option<u8>,
}

impl Reporter<'_> {
    fn report(&mut self, phase: Phase, done: u64) -> Result<()> {
        let p = Progress {
            phase,
            bytes_done: done,
            bytes_total: self.total,
            buffer_fill: self.fill,
        };
        match (self.callback)(&p) {
            ControlFlow::Continue(()) => Ok(()),
            ControlFlow::Break(()) => Err(Error::Cancelled),
        }
    }
}

/// Write `data` at `lba`, waiting out "long write in progress".
fn write_retrying(mmc: &mut Mmc<'_>, lba: i32, data: &[u8], timing: &Timing) -> Result<()> {
    let mut busy = 0;
    loop {
        match mmc.write10(lba, data) {
            Err(e) if e.condition() == Some(Condition::LongWriteInProgress) => {
                busy += 1;
                if busy > timing.busy_limit {
                    return Err(Error::Busy {
                        device: mmc.device().to_string(),
                        what: "long write in progress",
                        tries: busy,
                    });
                }
                std::thread::sleep(timing.busy_delay);
            }
            other => return other,
        }
    }
}

/// Fill `buf` from `src` until full or end of input; returns bytes read.
fn read_full(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

const CHUNK_BLOCKS: u32 = 16;

/// Stream the image (then zero padding up to `blocks`) to the disc from
/// `lba`, hashing the image bytes.
#[allow(clippy::too_many_arguments)]
fn write_image(
    mmc: &mut Mmc<'_>,
    source: &mut impl Read,
    size: u64,
    lba: i32,
    blocks: u32,
    timing: &Timing,
    rep: &mut Reporter<'_>,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BLOCKS as usize * BLOCK];
    let mut done: u64 = 0;
    let mut written: u32 = 0;
    let mut writes: u32 = 0;
    while written < blocks {
        let n = (blocks - written).min(CHUNK_BLOCKS);
        let bytes = n as usize * BLOCK;
        let want = usize::try_from((size - done).min(bytes as u64)).unwrap_or(bytes);
        let got = read_full(source, &mut buf[..want]).map_err(|source| Error::Source {
            done,
            total: size,
            source,
        })?;
        if got < want {
            return Err(Error::SourceShort {
                done: done + got as u64,
                total: size,
            });
        }
        hasher.update(&buf[..got]);
        buf[got..bytes].fill(0);
        write_retrying(mmc, lba + written as i32, &buf[..bytes], timing)?;
        done += got as u64;
        written += n;
        writes += 1;
        if writes % 16 == 1 || written == blocks {
            rep.fill = mmc.read_buffer_capacity().ok().map(|b| b.fill_percent());
        }
        rep.report(Phase::Write, done)?;
    }
    Ok(hex(hasher.finalize()))
}

/// Write `count` zero blocks from `lba` (the CD SAO pregap).
fn write_zeros(mmc: &mut Mmc<'_>, lba: i32, count: u32, timing: &Timing) -> Result<()> {
    let buf = vec![0u8; CHUNK_BLOCKS as usize * BLOCK];
    let mut at = 0;
    while at < count {
        let n = (count - at).min(CHUNK_BLOCKS);
        write_retrying(mmc, lba + at as i32, &buf[..n as usize * BLOCK], timing)?;
        at += n;
    }
    Ok(())
}

/// Poll TEST UNIT READY until a long operation (Immed) ends.
fn wait_long_op(mmc: &mut Mmc<'_>, timing: &Timing, rep: &mut Reporter<'_>) -> Result<()> {
    let mut polls = 0;
    loop {
        match mmc.test_unit_ready() {
            Ok(()) => return Ok(()),
            Err(e) => match e.condition() {
                Some(Condition::OperationInProgress { progress }) => {
                    rep.report(
                        Phase::Prepare,
                        u64::from(progress.unwrap_or(0)) * rep.total / 65536,
                    )?;
                }
                Some(c) if c.is_retryable() => {}
                _ => return Err(e),
            },
        }
        polls += 1;
        if polls > timing.poll_limit {
            return Err(Error::Busy {
                device: mmc.device().to_string(),
                what: "formatting or blanking",
                tries: polls,
            });
        }
        std::thread::sleep(timing.poll_interval);
    }
}

/// Is this the drive saying "I cannot do that", so another way may work?
fn refused(e: &Error) -> bool {
    matches!(
        e.condition(),
        Some(
            Condition::InvalidField
                | Condition::InvalidParameter
                | Condition::IllegalRequest
                | Condition::UnsupportedCommand
                | Condition::SequenceError
                | Condition::IllegalModeForTrack
        )
    )
}

/// Burn `size` bytes from `source` to the disc in the drive.
///
/// `progress` is called often; returning `ControlFlow::Break(())` cancels
/// (the disc is then left as it is, probably unusable if write-once).
pub fn burn(
    t: &mut dyn Transport,
    mut source: impl Read,
    size: u64,
    opts: &BurnOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<BurnReport> {
    let mut mmc = Mmc::new(t);
    let mut rep = Reporter {
        callback: progress,
        total: size,
        fill: None,
    };
    let result = burn_inner(&mut mmc, &mut source, size, opts, &mut rep);
    // Never leave the tray locked, whatever happened.
    let _ = mmc.prevent_removal(false);
    match result {
        Ok(report) => {
            // The disc is written and verified: a tray that does not open
            // is worth a warning, not a failed job.
            if opts.eject
                && let Err(e) = mmc.eject()
            {
                tracing::warn!(device = mmc.device(), error = %e, "eject after burn failed");
            }
            let _ = rep.report(Phase::Done, size);
            Ok(report)
        }
        Err(e) => {
            tracing::warn!(device = mmc.device(), error = %e, "burn failed");
            if opts.eject && matches!(e, Error::VerifyMismatch { .. }) {
                let _ = mmc.eject();
            }
            let _ = rep.report(Phase::Failed, 0);
            Err(e)
        }
    }
}

fn burn_inner(
    mmc: &mut Mmc<'_>,
    source: &mut impl Read,
    size: u64,
    opts: &BurnOptions,
    rep: &mut Reporter<'_>,
) -> Result<BurnReport> {
    let timing = &opts.timing;
    rep.report(Phase::Prepare, 0)?;
    wait_ready(mmc, timing)?;
    let cfg = mmc.get_configuration()?;
    let plan = preflight(mmc, &cfg, size, opts)?;
    tracing::info!(device = mmc.device(), media = %plan.media.name(), blocks = plan.blocks, "burn planned");
    mmc.prevent_removal(true)?;
    if let Some(f) = plan.format {
        mmc.format_unit(f, true)?;
        wait_long_op(mmc, timing, rep)?;
    }
    let media = plan.media;
    let start = plan.start_lba as i32;
    let mode;
    let sha256;
    if media.is_cd() {
        let sao_ok = opts.prefer_sao && cfg.can_sao();
        let mut tried_sao = false;
        if sao_ok {
            let params = WriteParams {
                write_type: WriteType::Sao,
                buffer_underrun_free: true,
                multi_session: !opts.finalize,
                track_mode: 4,
                data_block_type: 8,
                dvd_incremental: false,
            };
            match mmc
                .set_write_params(&params)
                .and_then(|()| mmc.send_cue_sheet(&crate::mmc::data_cue_sheet(plan.blocks)))
            {
                Ok(()) => tried_sao = true,
                Err(e) if refused(&e) => {
                    tracing::info!(device = mmc.device(), error = %e, "SAO refused, falling back to TAO");
                }
                Err(e) => return Err(e),
            }
        }
        if tried_sao {
            mode = WriteMode::Sao;
            write_zeros(mmc, -150, 150, timing)?;
            sha256 = write_image(mmc, source, size, 0, plan.blocks, timing, rep)?;
            rep.report(Phase::Sync, size)?;
            mmc.synchronize_cache()?;
        } else {
            mode = WriteMode::Tao;
            mmc.set_write_params(&WriteParams {
                write_type: WriteType::Tao,
                buffer_underrun_free: true,
                multi_session: !opts.finalize,
                track_mode: 4,
                data_block_type: 8,
                dvd_incremental: false,
            })?;
            let nwa = mmc
                .read_track_information(TrackRef::Invisible)?
                .next_writable
                .unwrap_or(plan.start_lba);
            sha256 = write_image(mmc, source, size, nwa as i32, plan.blocks, timing, rep)?;
            rep.report(Phase::Sync, size)?;
            mmc.synchronize_cache()?;
            rep.report(Phase::Close, size)?;
            mmc.close_track_session(close::SESSION, 0, false)?;
        }
    } else if matches!(media, Media::DvdR | Media::DvdRwSequential | Media::DvdRDl) {
        let dao = WriteParams {
            write_type: WriteType::Sao,
            buffer_underrun_free: true,
            multi_session: false,
            track_mode: 5,
            data_block_type: 8,
            dvd_incremental: false,
        };
        match mmc
            .set_write_params(&dao)
            .and_then(|()| mmc.reserve_track(plan.blocks))
        {
            Ok(()) => {
                mode = WriteMode::Dao;
                let nwa = mmc
                    .read_track_information(TrackRef::Invisible)?
                    .next_writable
                    .unwrap_or(0);
                sha256 = write_image(mmc, source, size, nwa as i32, plan.blocks, timing, rep)?;
                rep.report(Phase::Sync, size)?;
                mmc.synchronize_cache()?;
            }
            Err(e) if refused(&e) => {
                tracing::info!(device = mmc.device(), error = %e, "DAO refused, writing incrementally");
                mode = WriteMode::Incremental;
                mmc.set_write_params(&WriteParams {
                    write_type: WriteType::Incremental,
                    multi_session: !opts.finalize,
                    dvd_incremental: true,
                    ..dao
                })?;
                let track = mmc.read_track_information(TrackRef::Invisible)?;
                let nwa = track.next_writable.unwrap_or(0);
                sha256 = write_image(mmc, source, size, nwa as i32, plan.blocks, timing, rep)?;
                rep.report(Phase::Sync, size)?;
                mmc.synchronize_cache()?;
                rep.report(Phase::Close, size)?;
                mmc.close_track_session(close::TRACK, track.track, false)?;
                mmc.close_track_session(close::SESSION, 0, false)?;
            }
            Err(e) => return Err(e),
        }
    } else if media.is_overwrite() {
        mode = WriteMode::Overwrite;
        sha256 = write_image(mmc, source, size, 0, plan.blocks, timing, rep)?;
        rep.report(Phase::Sync, size)?;
        mmc.synchronize_cache()?;
        if media == Media::DvdPlusRw {
            rep.report(Phase::Close, size)?;
            mmc.close_track_session(close::SESSION, 0, false)?;
        }
    } else {
        // DVD+R, DVD+R DL, BD-R.
        mode = WriteMode::Sequential;
        let track = mmc.read_track_information(TrackRef::Invisible)?;
        let nwa = track.next_writable.unwrap_or(plan.start_lba);
        sha256 = write_image(mmc, source, size, nwa as i32, plan.blocks, timing, rep)?;
        rep.report(Phase::Sync, size)?;
        mmc.synchronize_cache()?;
        rep.report(Phase::Close, size)?;
        mmc.close_track_session(close::TRACK, track.track, false)?;
        let function = match (opts.finalize, media) {
            (false, _) => close::SESSION,
            (true, Media::DvdPlusR) => close::FINALIZE_DVD_PLUS_R,
            (true, _) => close::FINALIZE_BD_R,
        };
        mmc.close_track_session(function, 0, false)?;
    }
    let mut verified = false;
    if opts.verify {
        wait_ready(mmc, timing)?;
        let actual = read_back(mmc, start.max(0) as u32, size, timing, rep)?;
        if actual != sha256 {
            return Err(Error::VerifyMismatch {
                device: mmc.device().to_string(),
                expected: sha256,
                actual,
            });
        }
        verified = true;
    }
    Ok(BurnReport {
        media,
        mode,
        start_lba: start.max(0) as u32,
        blocks: plan.blocks,
        bytes: size,
        sha256,
        verified,
    })
}

/// Read `size` bytes from `lba` and return their SHA-256 (verify).
fn read_back(
    mmc: &mut Mmc<'_>,
    lba: u32,
    size: u64,
    timing: &Timing,
    rep: &mut Reporter<'_>,
) -> Result<String> {
    let mut hasher = Sha256::new();
    let chunk = 32usize;
    let mut buf = vec![0u8; chunk * BLOCK];
    let mut done: u64 = 0;
    let mut at = lba;
    while done < size {
        let left = size - done;
        let blocks = usize::try_from(left.div_ceil(BLOCK as u64))
            .unwrap_or(chunk)
            .min(chunk);
        let bytes = &mut buf[..blocks * BLOCK];
        let mut tries = 0;
        loop {
            match mmc.read10(at, bytes) {
                Ok(()) => break,
                Err(e)
                    if tries < 3
                        && matches!(e.condition(), Some(c) if c.is_retryable() || matches!(c, Condition::ReadError { .. })) =>
                {
                    tries += 1;
                    std::thread::sleep(timing.busy_delay);
                }
                Err(e) => return Err(e),
            }
        }
        let take = usize::try_from(left.min(bytes.len() as u64)).unwrap_or(bytes.len());
        hasher.update(&bytes[..take]);
        done += take as u64;
        at += blocks as u32;
        rep.report(Phase::Verify, done)?;
    }
    Ok(hex(hasher.finalize()))
}

/// Blank a CD-RW or DVD-RW (BLANK with Immed, then poll). A restricted
/// overwrite DVD-RW becomes a blank sequential one.
pub fn blank(
    t: &mut dyn Transport,
    kind: BlankKind,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<()> {
    let mut mmc = Mmc::new(t);
    let mut rep = Reporter {
        callback: progress,
        total: 65536,
        fill: None,
    };
    wait_ready(&mut mmc, timing)?;
    let media = mmc.get_configuration()?.media();
    if !matches!(
        media,
        Media::CdRw | Media::DvdRwSequential | Media::DvdRwRestricted
    ) {
        return Err(not_erasable(&mmc, media));
    }
    mmc.blank(kind, true)?;
    wait_long_op(&mut mmc, timing, &mut rep)?;
    rep.report(Phase::Done, 65536)
}

/// Format an overwrite disc (DVD+RW, DVD-RAM, BD-RE) or turn a DVD-RW into
/// restricted overwrite (FORMAT UNIT with Immed, then poll).
pub fn format(
    t: &mut dyn Transport,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<()> {
    let mut mmc = Mmc::new(t);
    let mut rep = Reporter {
        callback: progress,
        total: 65536,
        fill: None,
    };
    wait_ready(&mut mmc, timing)?;
    let media = mmc.get_configuration()?.media();
    let caps = if media.is_overwrite() || media == Media::DvdRwSequential {
        mmc.read_format_capacities()?
    } else {
        return Err(not_erasable(&mmc, media));
    };
    let Some(f) = format_for(media, &caps.formats) else {
        return Err(not_erasable(&mmc, media));
    };
    mmc.format_unit(f, true)?;
    wait_long_op(&mut mmc, timing, &mut rep)?;
    rep.report(Phase::Done, 65536)
}

/// Make a rewritable disc empty, the right way for its type: BLANK for
/// CD-RW/DVD-RW, FORMAT UNIT for DVD+RW/DVD-RAM/BD-RE. `full` blanks
/// everything instead of the minimal (fast) blank.
pub fn erase(
    t: &mut dyn Transport,
    full: bool,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Media> {
    let media = {
        let mut mmc = Mmc::new(&mut *t);
        wait_ready(&mut mmc, timing)?;
        mmc.get_configuration()?.media()
    };
    match media {
        Media::CdRw | Media::DvdRwSequential | Media::DvdRwRestricted => {
            let kind = if full {
                BlankKind::Full
            } else {
                BlankKind::Fast
            };
            blank(t, kind, timing, progress)?;
        }
        Media::DvdPlusRw | Media::DvdRam | Media::BdRe => format(t, timing, progress)?,
        _ => {
            let mmc = Mmc::new(t);
            return Err(not_erasable(&mmc, media));
        }
    }
    Ok(media)
}

fn not_erasable(mmc: &Mmc<'_>, media: Media) -> Error {
    if media == Media::None {
        return Error::NoDisc {
            device: mmc.device().to_string(),
        };
    }
    Error::NotErasable {
        device: mmc.device().to_string(),
        media: media.name(),
    }
}
