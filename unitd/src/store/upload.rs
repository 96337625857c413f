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
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64, oneshot::Sender<io::Result<()>>),
    Fsync(oneshot::Sender<io::Result<()>>),
    Finish(oneshot::Sender<io::Result<Written>>),
}

/// Handle to the writer thread of one partial file. Dropping it without
/// [`Upload::finish`] leaves the partial on disk, resumable.
pub struct Upload {
    tx: Option<mpsc::Sender<Op>>,
    failed: Arc<Mutex<Option<String>>>,
    pub progress: Arc<UploadProgress>,
    pub partial: PathBuf,
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
        })
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
        self.progress
            .bytes
            .fetch_max(offset + data.len() as u64, Ordering::Relaxed);
        self.send(Op::Write { offset, data }).await
    }

    /// Truncates or extends the partial (scp and `setstat size` do this).
    pub async fn set_len(&self, len: u64) -> io::Result<()> {
        let (tx, rx) = oneshot::channel();
        self.send(Op::SetLen(len, tx)).await?;
        rx.await.map_err(|_| gone())??;
        self.progress.bytes.store(len, Ordering::Relaxed);
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
        self.send(Op::Finish(tx)).await?;
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
                Op::Finish(reply) => {
                    let r = match self.failed() {
                        Some(msg) => Err(io::Error::other(msg)),
                        None => self.finish(),
                    };
                    let _ = reply.send(r);
                    return;
                }
            }
        }
        // Dropped without finish: the partial stays, flushed, for a resume.
        let _ = self.file.sync_data();
    }

    fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if offset > self.hashed && offset <= self.len && !self.rehash {
            // A resumed upload: the prefix is already on disk.
            self.catch_up(offset)?;
        }
        self.file.write_all_at(data, offset)?;
        let end = offset + data.len() as u64;
        if offset == self.hashed && !self.rehash {
            self.hasher.update(data);
            self.hashed = end;
        } else if offset < self.hashed {
            self.rehash = true;
        }
        self.len = self.len.max(end);
        self.progress.bytes.store(self.len, Ordering::Relaxed);
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

    fn finish(mut self) -> io::Result<Written> {
        self.file.sync_all()?;
        let len = self.file.metadata()?.len();
        let sha256 = if self.rehash || self.hashed > len {
            let mut file = &self.file;
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
