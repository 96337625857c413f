//! Reading a source disc: [`rip`] into any writer with SHA-256, or a
//! [`DiscReader`] (`impl Read`) to feed burners directly (disc-to-disc).
//!
//! Read errors are retried block by block. A sector that stays unreadable
//! fails the read by default; with `zero_fill` it is replaced by zeros and
//! its LBA listed in the report, never silently.

use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::time::Duration;

use copyunit_model::Phase;
use sha2::{Digest, Sha256};

use crate::burn::{Progress, Timing, wait_ready};
use crate::error::{Error, Result};
use crate::mmc::{BLOCK, Mmc};
use crate::sense::Condition;
use crate::transport::Transport;

/// How to treat read errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RipOptions {
    /// Extra attempts per unreadable block.
    pub retries: u32,
    /// Pause before a retry.
    pub retry_delay: Duration,
    /// Replace blocks that stay unreadable with zeros (and list them)
    /// instead of failing.
    pub zero_fill: bool,
    /// A disc holding an ISO 9660 filesystem is read to the end of its
    /// volume, not of the recorded area: burners pad a track (to 16 blocks
    /// on DVD, 300 KiB on CD, plus unreadable run-out blocks after TAO), and
    /// the rip of a burned ISO should hash like the ISO (as `isosize` and
    /// `readom` do).
    pub iso_size: bool,
    pub timing: Timing,
}

impl Default for RipOptions {
    fn default() -> RipOptions {
        RipOptions {
            retries: 4,
            retry_delay: Duration::from_millis(200),
            zero_fill: false,
            iso_size: true,
            timing: Timing::default(),
        }
    }
}

/// Result of a rip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RipReport {
    pub bytes: u64,
    /// Hex SHA-256 of the bytes written out.
    pub sha256: String,
    /// LBAs replaced by zeros (only with `zero_fill`).
    pub unreadable: Vec<u32>,
}

const CHUNK_BLOCKS: u32 = 32;

/// Reads a disc from LBA 0 to its end (READ CAPACITY) as a byte stream.
pub struct DiscReader<'a> {
    t: Box<dyn Transport + 'a>,
    opts: RipOptions,
    next: u32,
    end: u32,
    buf: Vec<u8>,
    pos: usize,
    unreadable: Vec<u32>,
}

impl<'a> DiscReader<'a> {
    /// Wait for the disc and size it. Takes the transport by value (an
    /// `SgTransport` gives a `'static` reader to move into a thread) or by
    /// `&mut`.
    pub fn open(t: impl Transport + 'a, opts: RipOptions) -> Result<DiscReader<'a>> {
        let mut t: Box<dyn Transport + 'a> = Box::new(t);
        let mut mmc = Mmc::new(&mut *t);
        wait_ready(&mut mmc, &opts.timing)?;
        let cap = mmc.read_capacity()?;
        let mut end = if cap.bytes() <= BLOCK as u64 && cap.last_lba == 0 {
            0
        } else {
            // A drive may claim the last LBA of all: no disc has 2^32
            // blocks, and `end` must stay a u32.
            cap.last_lba.saturating_add(1)
        };
        if opts.iso_size
            && let Some(blocks) = iso_volume_blocks(&mut mmc, end)
        {
            end = blocks;
        }
        Ok(DiscReader {
            t,
            opts,
            next: 0,
            end,
            buf: vec![],
            pos: 0,
            unreadable: vec![],
        })
    }

    /// Bytes the whole disc holds.
    pub fn size(&self) -> u64 {
        u64::from(self.end) * BLOCK as u64
    }

    /// LBAs zero-filled so far.
    pub fn unreadable(&self) -> &[u32] {
        &self.unreadable
    }

    /// Kernel name of the source drive.
    pub fn device(&self) -> &str {
        self.t.device()
    }

    /// Give the transport back (e.g. to eject the source disc).
    pub fn into_transport(self) -> Box<dyn Transport + 'a> {
        self.t
    }

    /// Read one chunk into `self.buf`, falling back to block-by-block with
    /// retries when the chunk fails.
    fn fill(&mut self) -> Result<()> {
        let n = (self.end - self.next).min(CHUNK_BLOCKS);
        self.buf.resize(n as usize * BLOCK, 0);
        self.pos = 0;
        let mut mmc = Mmc::new(&mut *self.t);
        if mmc.read10(self.next, &mut self.buf).is_ok() {
            self.next += n;
            return Ok(());
        }
        let device = mmc.device().to_string();
        for i in 0..n {
            let lba = self.next + i;
            let block = &mut self.buf[i as usize * BLOCK..(i as usize + 1) * BLOCK];
            let mut attempt = 0;
            loop {
                match mmc.read10(lba, block) {
                    Ok(()) => break,
                    Err(e) => {
                        let medium = matches!(
                            e.condition(),
                            Some(
                                Condition::ReadError { .. }
                                    | Condition::Other
                                    | Condition::Hardware
                            )
                        ) || e.condition().is_some_and(|c| c.is_retryable());
                        if !medium {
                            return Err(e);
                        }
                        if attempt >= self.opts.retries {
                            tracing::warn!(device = %device, lba, error = %e, "unreadable sector");
                            if !self.opts.zero_fill {
                                return Err(Error::Unreadable {
                                    device,
                                    lbas: vec![lba],
                                });
                            }
                            block.fill(0);
                            self.unreadable.push(lba);
                            break;
                        }
                        attempt += 1;
                        std::thread::sleep(self.opts.retry_delay);
                    }
                }
            }
        }
        self.next += n;
        Ok(())
    }
}

impl Read for DiscReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos == self.buf.len() {
            if self.next >= self.end {
                return Ok(0);
            }
            self.fill().map_err(std::io::Error::other)?;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Blocks of the ISO 9660 volume on the disc (its primary volume
/// descriptor at LBA 16), when there is one that fits the recorded area.
pub(crate) fn iso_volume_blocks(mmc: &mut Mmc<'_>, recorded: u32) -> Option<u32> {
    if recorded <= 16 {
        return None;
    }
    let mut pvd = vec![0u8; BLOCK];
    mmc.read10(16, &mut pvd).ok()?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    // Volume space size, both-endian: the little-endian half.
    let blocks = u32::from_le_bytes([pvd[80], pvd[81], pvd[82], pvd[83]]);
    (blocks > 16 && blocks <= recorded).then_some(blocks)
}

/// Read the whole disc into `out`, hashing it.
pub fn rip(
    t: &mut dyn Transport,
    mut out: impl Write,
    opts: &RipOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<RipReport> {
    let mut reader = DiscReader::open(&mut *t, opts.clone())?;
    let total = reader.size();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK_BLOCKS as usize * BLOCK];
    let mut done: u64 = 0;
    let report = |phase, done| Progress {
        phase,
        bytes_done: done,
        bytes_total: total,
        buffer_fill: None,
    };
    if progress(&report(Phase::Prepare, 0)).is_break() {
        return Err(Error::Cancelled);
    }
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let _ = progress(&report(Phase::Failed, done));
                // Our own errors travel inside io::Error: unwrap them.
                return Err(match e.downcast::<Error>() {
                    Ok(inner) => inner,
                    Err(e) => Error::Sink { done, source: e },
                });
            }
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(|source| Error::Sink { done, source })?;
        done += n as u64;
        if progress(&report(Phase::Write, done)).is_break() {
            return Err(Error::Cancelled);
        }
    }
    out.flush().map_err(|source| Error::Sink { done, source })?;
    let _ = progress(&report(Phase::Done, done));
    Ok(RipReport {
        bytes: done,
        sha256: hex(hasher.finalize()),
        unreadable: reader.unreadable().to_vec(),
    })
}

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
