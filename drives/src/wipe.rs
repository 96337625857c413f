//! Making a drive blank again.
//!
//! Quick: zero the first and last MiB of the disk (MBR, GPT and its backup)
//! and of every partition (filesystem superblocks at the start, md/ZFS
//! labels at the end). Full: discard everything the drive allows, then zero
//! every byte (`BLKZEROOUT`, falling back to plain writes of zeros).

use std::path::Path;

use copyunit_model::{DriveIdentity, Phase};

use crate::blockdev::{Access, Disk};
use crate::buffer::AlignedBuf;
use crate::discover::{self, DiscoverOptions, check_target};
use crate::error::{Error, Result};
use crate::progress::{CancelToken, Meter, Progress};

const EDGE: u64 = 1 << 20;
/// Bytes per BLKZEROOUT call: small enough to report progress and cancel.
const STEP: u64 = 64 << 20;

fn zero_range(
    disk: &mut Disk,
    drive: &str,
    start: u64,
    len: u64,
    zeros: &AlignedBuf,
) -> Result<()> {
    let sector = u64::from(disk.logical_sector_size());
    let start = start / sector * sector;
    let end = (start + len).min(disk.size());
    let mut pos = start;
    while pos < end {
        let n = (end - pos).min(zeros.len() as u64);
        disk.write_all_at(&zeros.as_slice()[..n as usize], pos)
            .map_err(Error::drive(drive, "write zeros"))?;
        pos += n;
    }
    Ok(())
}

/// Erases partition tables and signatures (`full`: every byte) of the drive
/// `name`, after the same safety checks as a copy target.
pub fn wipe(
    name: &str,
    full: bool,
    opts: &DiscoverOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    wipe_as(name, None, full, opts, cancel, progress)
}

/// [`wipe`] of the drive `planned` describes, only if it is still that
/// drive (name, diskseq, serial, size) when opened: a stick swapped in
/// since the wipe was asked for is refused.
pub fn wipe_planned(
    planned: &DriveIdentity,
    full: bool,
    opts: &DiscoverOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    wipe_as(&planned.name, Some(planned), full, opts, cancel, progress)
}

fn wipe_as(
    name: &str,
    planned: Option<&DriveIdentity>,
    full: bool,
    opts: &DiscoverOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<()> {
    let mut meter = Meter::new(progress);
    meter.phase(Phase::Prepare, None);
    let drive = check_target(name, opts)?;
    let changed = |detail: String| Error::Changed {
        drive: name.to_owned(),
        job: "wipe",
        detail,
    };
    if let Some(p) = planned
        && let Some(detail) = p.differences(&DriveIdentity::of(&drive))
    {
        return Err(changed(detail));
    }
    let parts = discover::partition_extents(&drive.name);
    let mut disk =
        Disk::open(Path::new(&drive.path), Access::WriteExclusive).map_err(|e| {
            match e.raw_os_error() {
                Some(libc::EBUSY) => Error::Refused {
                    name: drive.name.clone(),
                    reason: "in use (a partition is mounted or another program holds it)".into(),
                },
                _ => Error::Drive {
                    drive: drive.name.clone(),
                    op: "open",
                    source: e,
                },
            }
        })?;
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
    let size = disk.size();
    let zeros = AlignedBuf::zeroed(EDGE as usize);
    meter.phase(
        Phase::Write,
        Some(if full {
            size
        } else {
            EDGE * 2 * (1 + parts.len() as u64)
        }),
    );
    if full {
        if let Err(e) = disk.discard(0, size) {
            tracing::debug!(drive = drive.name, error = %e, "discard not supported; zeroing only");
        }
        let mut pos = 0;
        let mut ioctl_ok = true;
        let big = AlignedBuf::zeroed(4 << 20);
        while pos < size {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let n = (size - pos).min(STEP);
            if ioctl_ok && disk.zero_out(pos, n).is_err() {
                ioctl_ok = false;
            }
            if !ioctl_ok {
                zero_range(&mut disk, &drive.name, pos, n, &big)?;
            }
            pos += n;
            meter.add(n);
        }
    } else {
        let mut edges = vec![(0, EDGE), (size.saturating_sub(EDGE), EDGE)];
        for (_, start, len) in &parts {
            edges.push((*start, EDGE.min(*len)));
            edges.push((start + len.saturating_sub(EDGE), EDGE.min(*len)));
        }
        for (start, len) in edges {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            zero_range(&mut disk, &drive.name, start, len, &zeros)?;
            meter.add(len);
        }
    }
    meter.phase(Phase::Sync, None);
    disk.sync().map_err(Error::drive(&drive.name, "flush"))?;
    disk.flush_buffers().ok();
    if let Err(e) = disk.reread_partitions() {
        tracing::debug!(drive = drive.name, error = %e, "BLKRRPART failed");
    }
    meter.phase(Phase::Done, None);
    Ok(())
}
