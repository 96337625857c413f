//! Letting a finished drive go: flush it, then detach and power off its
//! USB port where the kernel allows, so the duplicator can show
//! "done - remove" and a person can pull the stick.

use std::fs;
use std::path::Path;

use copyunit_model::{DriveKind, DriveRole};

use crate::blockdev::{Access, Disk};
use crate::discover::{self, DiscoverOptions};
use crate::error::{Error, Result};

/// What [`power_off`] managed to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Released {
    /// Flushed, detached from the kernel and its USB port powered off.
    PoweredOff,
    /// Flushed and detached from the kernel (SCSI delete).
    Detached,
    /// Flushed only: this kind of drive cannot be detached (loop, MMC, NVMe).
    Flushed,
}

/// Flushes the drive `name` and powers it off where possible. Refuses the
/// system and store disks and drives with a mounted partition.
pub fn power_off(name: &str, opts: &DiscoverOptions) -> Result<Released> {
    let drives = discover::discover(&DiscoverOptions {
        skip_fs_probe: true,
        ..opts.clone()
    });
    let q = name.strip_prefix("/dev/").unwrap_or(name);
    let d = discover::find(&drives, q).ok_or_else(|| Error::NoSuchDrive(q.into()))?;
    if matches!(d.role, DriveRole::System | DriveRole::Store)
        || d.partitions.iter().any(|p| p.mountpoint.is_some())
    {
        return Err(Error::Refused {
            name: d.name.clone(),
            reason: d.reason.clone().unwrap_or_else(|| "in use".into()),
        });
    }
    if d.size > 0 {
        let disk =
            Disk::open(Path::new(&d.path), Access::Read).map_err(Error::drive(&d.name, "open"))?;
        disk.sync().map_err(Error::drive(&d.name, "flush"))?;
        disk.flush_buffers()
            .map_err(Error::drive(&d.name, "drop cached pages"))?;
    }
    let sys = Path::new("/sys/block").join(&d.name);
    // The USB device directory, found before the disk disappears from sysfs.
    let usb_remove = fs::canonicalize(sys.join("device")).ok().and_then(|p| {
        p.ancestors()
            .find(|a| a.join("remove").exists() && a.join("idVendor").exists())
            .map(|a| a.join("remove"))
    });
    let delete = sys.join("device/delete");
    if !matches!(d.kind, DriveKind::Usb | DriveKind::Sata) || !delete.exists() {
        return Ok(Released::Flushed);
    }
    // The sd driver syncs the cache and stops the unit as it lets go.
    fs::write(&delete, "1").map_err(Error::drive(&d.name, "detach"))?;
    match usb_remove {
        Some(remove) if fs::write(&remove, "1").is_ok() => Ok(Released::PoweredOff),
        _ => Ok(Released::Detached),
    }
}
