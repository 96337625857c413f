//! One upload in flight: a hidden partial file, written behind the network
//! and hashed as the bytes arrive.
//!
//! The SFTP request loop is strictly sequential, so a write must not wait for
//! the disk: [`Upload::write_at`] queues the data to a writer thread (bounded,
//! so a slow disk slows the client instead of growing memory) and returns.
//! A write error is remembered and reported on the next write, fsync or close
//! - the client always learns of it before it believes the file complete.
//!
//! The SHA-256 is computed in the writer thread over the bytes in file order.
//! Writes normally arrive in order; a resumed upload first hashes the prefix
//! already on disk, and anything out of order (rewrites, holes) is caught up
//! by reading the file back when it is closed.
//!
//! An upload may start from the bytes of a complete image
//! ([`Upload::start_from`]): a client that opens an image for writing without
//! truncating it (`reput`, `curl -C -`, `lftp put -c`, `>>` through sshfs)
//! writes over and after those bytes, and the result is published as a new
//! version on close. The copy is made by the writer thread
//! (`copy_file_range`: a reflink where the filesystem has them), in order
//! before the client's first write.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// Queue depth between the network and the disk, in writes (OpenSSH sends up
/// to 255 KiB per write, so this bounds buffered data to about 16 MiB).
const QUEUE: usize = 64;
const READ_CHUNK: usize = 1 << 20;

/// Progress visible to the model while bytes stream in.
#[derive(Debug)]
pub struct UploadProgress {
    pub name: String,
    pub bytes: AtomicU64,
    pub expected: Option<u64>,
    pub started: SystemTime,
    started_instant: Instant,
}

impl UploadProgress {
    pub fn to_model(&self) -> copyunit_model::Upload {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.started_instant.elapsed().as_secs_f64();
        copyunit_model::Upload {
            name: self.name.clone(),
            bytes,
            expected: self.expected,
            started: unix(self.started),
            rate_bps: if secs > 0.5 {
                (bytes as f64 / secs) as u64
            } else {
                0
            },
        }
    }
}

/// What the writer thread hands back when the file is closed.
#[derive(Debug)]
pub struct Written {
    pub len: u64,
    pub sha256: String,
}

enum Op {
    /// Start from this file's bytes (the partial is empty).
    Base(File),
    Write {
        offset: u64,
        data: Vec<u8>,
    },
    SetLen(u64, oneshot::Sender<io::Result<()>>),
    Fsync(oneshot::Sender<io::Result<()>>),
    /// Drain, set the modification time the client asked for, fsync, hash.
    Finish(Option<SystemTime>, oneshot::Sender<io::Result<Written>>),
}

/// Handle to the writer thread of one partial file. Dropping it without
/// [`Upload::finish`] leaves the partial on disk, resumable.
pub struct Upload {
    tx: Option<mpsc::Sender<Op>>,
    failed: Arc<Mutex<Option<String>>>,
    pub progress: Arc<UploadProgress>,
    pub partial: PathBuf,
    /// Bytes the partial really holds at most (what was on disk or copied
    /// in, plus every byte written): the length beyond it is holes.
    data: AtomicU64,
    /// The modification time a client set (`setstat`, `scp -p`, rclone),
    /// as seconds since the epoch; applied when the upload is published.
    mtime: Mutex<Option<u64>>,
}

impl Upload {
    /// Starts the writer for `partial`, which is opened (created if absent)
    /// and truncated first when `truncate` is set.
    pub(crate) fn start(
        partial: &Path,
        name: &str,
        truncate: bool,
        expected: Option<u64>,
        on_exit: Box<dyn FnOnce() + Send>,
    ) -> io::Result<Upload> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(truncate)
            .custom_flags(libc_o_nofollow())
            .open(partial)?;
        let on_disk = file.metadata()?.len();
        let progress = Arc::new(UploadProgress {
            name: name.to_string(),
            bytes: AtomicU64::new(on_disk),
            expected,
            started: SystemTime::now(),
            started_instant: Instant::now(),
        });
        let failed = Arc::new(Mutex::new(None));
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            file,
            hasher: Sha256::new(),
            hashed: 0,
            len: on_disk,
            rehash: false,
            failed: failed.clone(),
            progress: progress.clone(),
        };
        std::thread::Builder::new()
            .name(format!("upload {name}"))
            .spawn(move || {
                writer.run(rx);
                on_exit();
            })?;
        Ok(Upload {
            tx: Some(tx),
            failed,
            progress,
            partial: partial.to_path_buf(),
            data: AtomicU64::new(on_disk),
            mtime: Mutex::new(None),
        })
    }

    /// Makes this (fresh, empty) upload start from the bytes of `base`, a
    /// complete image opened by the caller: its length is what the client
    /// sees at once; the copy happens in the writer before any write.
    pub async fn start_from(&self, base: File) -> io::Result<()> {
        let len = base.metadata()?.len();
        if !self.is_empty() {
            return Err(io::Error::other(
                "an upload can start from an image only while it is empty",
            ));
        }
        self.send(Op::Base(base)).await?;
        self.progress.bytes.fetch_max(len, Ordering::Relaxed);
        self.data.fetch_max(len, Ordering::Relaxed);
        Ok(())
    }

    /// How many bytes of holes the partial would hold if it were `end` bytes
    /// long: what a write there or a `set_len(end)` would cost in hashing
    /// without costing disk space. The caller caps it by the free space.
    pub fn holes_at(&self, end: u64) -> u64 {
        end.saturating_sub(self.data.load(Ordering::Relaxed))
    }

    /// Remembers the modification time a client set, for the published file.
    pub fn set_mtime(&self, secs: u64) {
        *self.mtime.lock().unwrap_or_else(|p| p.into_inner()) = Some(secs);
    }

    /// The modification time a client set, if any.
    pub fn mtime(&self) -> Option<u64> {
        *self.mtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current length of the partial file as the writer will leave it.
    pub fn len(&self) -> u64 {
        self.progress.bytes.load(Ordering::Relaxed)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `data` for `offset`. Fails with the first write error seen.
    pub async fn write_at(&self, offset: u64, data: Vec<u8>) -> io::Result<()> {
        self.check()?;
        let end = end_of(offset, data.len())?;
        self.progress.bytes.fetch_max(end, Ordering::Relaxed);
        let n = data.len() as u64;
        let _ = self
            .data
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| {
                Some(d.saturating_add(n))
            });
        self.send(Op::Write { offset, data }).await
    }

    /// Truncates or extends the partial (scp and `setstat size` do this).
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::SetLen(len, tx)).await?;
        rx.await.map_err(|_| gone())??;
        self.progress.bytes.store(len, Ordering::Relaxed);
        let _ = self
            .data
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| Some(d.min(len)));
        Ok(())
    }

    /// Waits until every queued write is on stable storage.
    pub async fn fsync(&self) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::Fsync(tx)).await?;
        rx.await.map_err(|_| gone())?
    }

    /// Drains the queue, fsyncs, and returns length and SHA-256.
    pub async fn finish(mut self) -> io::Result<Written> {
        let (tx, rx) = oneshot::channel();
        let mtime = self
            .mtime()
            .map(|s| SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(s));
        self.send(Op::Finish(mtime, tx)).await?;
        self.tx = None;
        rx.await.map_err(|_| gone())?
    }

    fn check(&self) -> io::Result<()> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(msg) => Err(io::Error::other(msg.clone())),
            None => Ok(()),
        }
    }

    async fn send(&self, op: Op) -> io::Result<()> {
        let tx = self.tx.as_ref().ok_or_else(gone)?;
        tx.send(op)
            .await
            .map_err(|_| self.check().err().unwrap_or_else(gone))
    }
}

fn gone() -> io::Error {
    io::Error::other("upload writer stopped")
}

/// `offset + len`, or an error a client can read if that passes 2^63 (the
/// largest file offset Linux has).
fn end_of(offset: u64, len: usize) -> io::Result<u64> {
    offset
        .checked_add(len as u64)
        .filter(|&end| end <= i64::MAX as u64)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset} is beyond the largest possible file"),
            )
        })
}

struct Writer {
    file: File,
    hasher: Sha256,
    /// Bytes [0, hashed) are in `hasher`.
    hashed: u64,
    /// Length of the file as written so far.
    len: u64,
    /// Something was written behind `hashed`: hash everything again at the end.
    rehash: bool,
    failed: Arc<Mutex<Option<String>>>,
    progress: Arc<UploadProgress>,
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Op>) {
        while let Some(op) = rx.blocking_recv() {
            match op {
                Op::Base(base) => {
                    if self.failed().is_none()
                        && let Err(e) = self.copy_base(&base)
                    {
                        self.fail(&e);
                    }
                }
                Op::Write { offset, data } => {
                    if self.failed().is_none()
                        && let Err(e) = self.write(offset, &data)
                    {
                        self.fail(&e);
                    }
                }
                Op::SetLen(len, reply) => {
                    let r = self.set_len(len);
                    let _ = reply.send(r);
                }
                Op::Fsync(reply) => {
                    let r = match self.failed() {
                        Some(msg) => Err(io::Error::other(msg)),
                        None => self.file.sync_data(),
                    };
                    let _ = reply.send(r);
                }
                Op::Finish(mtime, reply) => {
                    let r = match self.failed() {
                        Some(msg) => Err(io::Error::other(msg)),
                        None => self.finish(mtime),
                    };
                    let _ = reply.send(r);
                    return;
                }
            }
        }
        // Dropped without finish: the partial stays, flushed, for a resume.
        let _ = self.file.sync_data();
    }

    /// Copies a complete image into the (empty) partial: the bytes the
    /// client writes over. Not hashed here: the first write (or the close)
    /// hashes the prefix it keeps, in file order.
    fn copy_base(&mut self, base: &File) -> io::Result<()> {
        let mut from = base;
        let mut to = &self.file;
        // std uses copy_file_range here: a reflink on btrfs/XFS, an in-kernel
        // copy elsewhere.
        let copied = io::copy(&mut from, &mut to)?;
        self.len = self.len.max(copied);
        self.progress.bytes.fetch_max(self.len, Ordering::Relaxed);
        Ok(())
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = end_of(offset, data.len())?;
        if offset > self.hashed && offset <= self.len && !self.rehash {
            // A resumed upload: the prefix is already on disk.
            self.catch_up(offset)?;
        }
        self.file.write_all_at(data, offset)?;
        if offset == self.hashed && !self.rehash {
            self.hasher.update(data);
            self.hashed = end;
        } else if offset < self.hashed {
            self.rehash = true;
        }
        self.len = self.len.max(end);
        self.progress.bytes.fetch_max(self.len, Ordering::Relaxed);
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        if len < self.hashed {
            self.rehash = true;
        }
        self.len = len;
        Ok(())
    }

    /// Hashes the file's bytes [hashed, upto) from disk.
    fn catch_up(&mut self, upto: u64) -> io::Result<()> {
        let mut buf = vec![0u8; READ_CHUNK];
        while self.hashed < upto {
            let want = ((upto - self.hashed) as usize).min(buf.len());
            let n = self.file.read_at(&mut buf[..want], self.hashed)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "partial upload shrank while it was being hashed",
                ));
            }
            self.hasher.update(&buf[..n]);
            self.hashed += n as u64;
        }
        Ok(())
    }

    fn finish(mut self, mtime: Option<SystemTime>) -> io::Result<Written> {
        if let Some(t) = mtime {
            self.file
                .set_times(std::fs::FileTimes::new().set_modified(t).set_accessed(t))?;
        }
        self.file.sync_all()?;
        let len = self.file.metadata()?.len();
        let sha256 = if self.rehash || self.hashed > len {
            let mut file = &self.file;
            // From the start, whatever the position (the copy of a base
            // image moves it; everything else is positional).
            io::Seek::seek(&mut file, io::SeekFrom::Start(0))?;
            hash_reader(&mut file)?
        } else {
            self.catch_up(len)?;
            hex::encode(self.hasher.finalize())
        };
        Ok(Written { len, sha256 })
    }

    fn failed(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn fail(&self, e: &io::Error) {
        let msg = match e.raw_os_error() {
            Some(code) if code == nix::libc::ENOSPC => {
                format!("the image store is full: {} not stored", self.progress.name)
            }
            _ => format!("writing {} failed: {e}", self.progress.name),
        };
        tracing::warn!("{msg}");
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(msg);
    }
}

/// SHA-256 of everything `r` yields, as lowercase hex.
pub fn hash_reader(r: &mut impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn libc_o_nofollow() -> i32 {
    nix::libc::O_NOFOLLOW
}

use std::os::unix::fs::OpenOptionsExt;

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[tokio::test]
    async fn an_upload_from_an_image_keeps_its_bytes_hashes_them_and_takes_the_client_mtime() {
        let dir = tempfile_dir("from-base");
        let image = dir.join("image");
        let old: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&image, &old).unwrap();
        let partial = dir.join("partial");
        let up = Upload::start(&partial, "x.img", true, None, Box::new(|| {})).unwrap();
        up.start_from(File::open(&image).unwrap()).await.unwrap();
        assert_eq!(up.len(), 3_000_000, "what a client's fstat sees");
        assert_eq!(up.holes_at(3_000_000), 0);
        assert_eq!(up.holes_at(3_000_010), 10);
        up.write_at(3_000_000, b"tail".to_vec()).await.unwrap();
        up.set_mtime(1_000_000_000);
        let w = up.finish().await.unwrap();
        let mut want = old.clone();
        want.extend_from_slice(b"tail");
        assert_eq!((w.len, w.sha256), (want.len() as u64, sha(&want)));
        assert_eq!(std::fs::read(&partial).unwrap(), want);
        assert_eq!(std::fs::metadata(&partial).unwrap().mtime(), 1_000_000_000);
        assert_eq!(
            std::fs::read(&image).unwrap(),
            old,
            "the image is untouched"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn offsets_past_the_largest_file_are_refused() {
        let dir = tempfile_dir("offsets");
        let up = Upload::start(&dir.join("p"), "p", true, None, Box::new(|| {})).unwrap();
        assert!(up.write_at(u64::MAX - 1, vec![0; 10]).await.is_err());
        assert!(up.write_at(1 << 63, vec![0]).await.is_err());
        up.write_at(0, b"ok".to_vec()).await.unwrap();
        assert_eq!(up.finish().await.unwrap().len, 2);
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unitd-upload-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
