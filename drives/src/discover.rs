//! Drive discovery from `/sys/block`, without udev.
//!
//! One pass builds every [`Drive`] the unit shows: identity from sysfs,
//! partitions with mount points from `/proc/self/mountinfo`, a cheap
//! filesystem probe for labels, and the eligibility verdict from
//! [`crate::safety`].

use std::fs;
use std::path::{Path, PathBuf};

use copyunit_model::{Drive, DriveKind, DriveRole, Partition};

use crate::blockdev;
use crate::error::{Error, Result};
use crate::probe;
use crate::safety::{self, SystemView};

/// What discovery may list and what it must protect.
#[derive(Debug, Clone, Default)]
pub struct DiscoverOptions {
    /// List loop devices (as targets): for tests and demos only.
    pub allow_loop_devices: bool,
    /// With `allow_loop_devices`: only loop devices over a file under one of
    /// these directories (none: any), so a test unit never sees, let alone
    /// writes, another program's loop devices.
    pub loop_devices_under: Vec<PathBuf>,
    /// The image store: the disk holding it is never a target.
    pub store_path: Option<PathBuf>,
    /// Skip reading partition superblocks for labels (faster, no I/O to drives).
    pub skip_fs_probe: bool,
}

fn read_trim(p: impl AsRef<Path>) -> Option<String> {
    let s = fs::read_to_string(p).ok()?;
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

fn read_u64(p: impl AsRef<Path>) -> Option<u64> {
    read_trim(p)?.parse().ok()
}

fn read_dev(p: impl AsRef<Path>) -> Option<(u32, u32)> {
    let s = read_trim(p)?;
    let (a, b) = s.split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Block devices that are never drives: RAM disks and the dm/md layers
/// (their member disks are what is shown).
fn never_listed(name: &str) -> bool {
    ["ram", "zram", "dm-", "md", "nbd", "fd"]
        .iter()
        .any(|p| name.starts_with(p))
}

fn kind_of(name: &str, devpath: &str) -> DriveKind {
    if name.starts_with("loop") {
        DriveKind::Loop
    } else if name.starts_with("sr") {
        DriveKind::Optical
    } else if devpath.contains("/usb") {
        DriveKind::Usb
    } else if name.starts_with("nvme") {
        DriveKind::Nvme
    } else if name.starts_with("mmcblk") {
        DriveKind::Mmc
    } else if name.starts_with("vd") {
        DriveKind::Virtio
    } else if name.starts_with("sd") {
        DriveKind::Sata
    } else {
        DriveKind::Other
    }
}

/// `1-1.2` style USB port path components.
fn is_usb_port(s: &str) -> bool {
    let Some((bus, ports)) = s.split_once('-') else {
        return false;
    };
    !bus.is_empty()
        && bus.bytes().all(|c| c.is_ascii_digit())
        && !ports.is_empty()
        && ports
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// The USB port path (stable slot label) and the USB device directory.
fn usb_port(devpath: &Path) -> Option<(String, PathBuf)> {
    let mut best = None;
    let mut acc = PathBuf::new();
    for c in devpath.components() {
        acc.push(c);
        let s = c.as_os_str().to_string_lossy();
        if is_usb_port(&s) {
            best = Some((s.into_owned(), acc.clone()));
        }
    }
    best
}

/// `(number, name, dev, start, size)` of one partition.
type PartRow = (u64, String, (u32, u32), u64, u64);

fn partitions_of(name: &str, sys: &Path) -> Vec<(String, (u32, u32), u64, u64)> {
    let mut parts: Vec<PartRow> = fs::read_dir(sys)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let p = e.path();
                    if !n.starts_with(name) || !p.join("partition").exists() {
                        return None;
                    }
                    let num = read_u64(p.join("partition")).unwrap_or(0);
                    let dev = read_dev(p.join("dev"))?;
                    let size = read_u64(p.join("size")).unwrap_or(0) * 512;
                    let start = read_u64(p.join("start")).unwrap_or(0) * 512;
                    Some((num, n, dev, start, size))
                })
                .collect()
        })
        .unwrap_or_default();
    parts.sort();
    parts
        .into_iter()
        .map(|(_, n, d, st, sz)| (n, d, st, sz))
        .collect()
}

/// Partition geometry `(name, start, size)` in bytes, for the wiper.
pub(crate) fn partition_extents(name: &str) -> Vec<(String, u64, u64)> {
    partitions_of(name, &Path::new("/sys/block").join(name))
        .into_iter()
        .map(|(n, _, st, sz)| (n, st, sz))
        .collect()
}

/// A loop device's backing file is under one of `opts.loop_devices_under`
/// (or that list is empty).
fn backing_allowed(sys: &Path, opts: &DiscoverOptions) -> bool {
    if opts.loop_devices_under.is_empty() {
        return true;
    }
    read_trim(sys.join("loop/backing_file")).is_some_and(|file| {
        opts.loop_devices_under
            .iter()
            .any(|dir| Path::new(&file).starts_with(dir))
    })
}

fn describe(name: &str, opts: &DiscoverOptions, view: &SystemView) -> Option<Drive> {
    let sys = Path::new("/sys/block").join(name);
    let devlink = fs::canonicalize(sys.join("device")).ok();
    let devpath = devlink
        .as_deref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = kind_of(name, &devpath);
    let size = read_u64(sys.join("size")).unwrap_or(0) * 512;
    let removable = read_u64(sys.join("removable")) == Some(1);
    if kind == DriveKind::Loop
        && (!opts.allow_loop_devices || size == 0 || !backing_allowed(&sys, opts))
    {
        return None;
    }
    if size == 0 && !removable && kind != DriveKind::Optical {
        return None;
    }
    let dev = Path::new("/sys/block").join(name).join("device");
    let mut d = Drive {
        name: name.to_owned(),
        path: format!("/dev/{name}"),
        kind,
        size,
        removable,
        read_only: read_u64(sys.join("ro")) == Some(1),
        logical_sector_size: read_u64(sys.join("queue/logical_block_size")).unwrap_or(512) as u32,
        physical_sector_size: read_u64(sys.join("queue/physical_block_size")).unwrap_or(512) as u32,
        diskseq: read_u64(sys.join("diskseq")),
        vendor: read_trim(dev.join("vendor")),
        model: read_trim(dev.join("model")).or_else(|| read_trim(dev.join("name"))),
        serial: read_trim(dev.join("serial")),
        ..Drive::default()
    };
    if kind == DriveKind::Loop {
        d.model = read_trim(sys.join("loop/backing_file"));
    }
    if let Some((port, usbdev)) = devlink.as_deref().and_then(usb_port) {
        d.slot = Some(port);
        d.serial = d.serial.or_else(|| read_trim(usbdev.join("serial")));
        d.vendor = d.vendor.or_else(|| read_trim(usbdev.join("manufacturer")));
    }

    let parts = partitions_of(name, &sys);
    let mut mounted: Vec<String> = Vec::new();
    let disk_dev = read_dev(sys.join("dev"));
    if let Some(dd) = disk_dev {
        mounted.extend(view.mountpoints(dd));
    }
    for (pname, pdev, _start, psize) in &parts {
        let mps = view.mountpoints(*pdev);
        let (fstype, label) = if opts.skip_fs_probe || d.kind == DriveKind::Optical {
            (None, None)
        } else {
            match blockdev::read_head(&Path::new("/dev").join(pname), 0, probe::PROBE_LEN)
                .ok()
                .and_then(|h| probe::identify(&h))
            {
                Some((t, l)) => (Some(t), l),
                None => (None, None),
            }
        };
        mounted.extend(mps.iter().cloned());
        d.partitions.push(Partition {
            name: pname.clone(),
            size: *psize,
            label,
            fstype,
            mountpoint: mps.into_iter().next(),
        });
    }

    let part_names: Vec<String> = parts.iter().map(|p| p.0.clone()).collect();
    let holders = safety::holders(name, &part_names);
    let swap: Vec<&String> = view
        .swaps
        .iter()
        .filter(|s| *s == name || part_names.contains(s))
        .collect();

    d.role = if kind == DriveKind::Optical {
        DriveRole::Source
    } else if view.system.contains_key(name) {
        DriveRole::System
    } else if view.store.contains(name) {
        DriveRole::Store
    } else {
        DriveRole::Target
    };
    d.reason = if let Some(why) = view.system.get(name) {
        Some(format!("the system disk ({why})"))
    } else if view.store.contains(name) {
        Some("holding the image store".into())
    } else if let Some(s) = swap.first() {
        Some(format!("used as swap ({s})"))
    } else if let Some(h) = holders.first() {
        Some(format!("used by {h}"))
    } else if let Some(m) = mounted.first() {
        Some(format!("mounted at {m}"))
    } else if kind == DriveKind::Optical {
        Some("an optical drive".into())
    } else if d.read_only {
        Some("read-only".into())
    } else if size == 0 {
        Some("without medium".into())
    } else {
        None
    };
    if d.role == DriveRole::Target && (!swap.is_empty() || !holders.is_empty()) {
        d.role = DriveRole::System;
    }
    d.eligible = d.reason.is_none();
    Some(d)
}

/// Every drive attached now, sorted by name. Never fails: an unreadable
/// sysfs entry just yields fewer details.
pub fn discover(opts: &DiscoverOptions) -> Vec<Drive> {
    let view = SystemView::read(opts.store_path.as_deref());
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| !never_listed(n));
    names.sort();
    names
        .iter()
        .filter_map(|n| describe(n, opts, &view))
        .collect()
}

/// The drive `name` (kernel name, `/dev/` path, slot label or serial) if
/// it may be written now; otherwise why not. Loop devices are refused unless
/// `opts.allow_loop_devices`.
pub fn check_target(name: &str, opts: &DiscoverOptions) -> Result<Drive> {
    let name = name.strip_prefix("/dev/").unwrap_or(name);
    if name.starts_with("loop") && !opts.allow_loop_devices {
        return Err(Error::Refused {
            name: name.into(),
            reason: "a loop device (allowed only with --allow-loop-devices)".into(),
        });
    }
    if never_listed(name) {
        return Err(Error::Refused {
            name: name.into(),
            reason: "a dm/md/RAM device, not a drive".into(),
        });
    }
    let opts = DiscoverOptions {
        skip_fs_probe: true,
        ..opts.clone()
    };
    let drives = discover(&opts);
    let d = find(&drives, name).ok_or_else(|| Error::NoSuchDrive(name.into()))?;
    match &d.reason {
        Some(r) => Err(Error::Refused {
            name: d.name.clone(),
            reason: r.clone(),
        }),
        None => Ok(d.clone()),
    }
}

/// Finds a drive by kernel name, `/dev/` path, slot label or serial.
pub fn find<'a>(drives: &'a [Drive], query: &str) -> Option<&'a Drive> {
    let q = query.strip_prefix("/dev/").unwrap_or(query);
    drives.iter().find(|d| d.name == q).or_else(|| {
        drives
            .iter()
            .find(|d| d.slot.as_deref() == Some(q) || d.serial.as_deref() == Some(q))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usb_port_components() {
        assert!(is_usb_port("1-1.2"));
        assert!(is_usb_port("2-3"));
        assert!(!is_usb_port("1-1.2:1.0"));
        assert!(!is_usb_port("usb1"));
        let p = Path::new(
            "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.4/1-1.4:1.0/host6/target6:0:0/6:0:0:0",
        );
        assert_eq!(usb_port(p).map(|x| x.0), Some("1-1.4".to_owned()));
    }
}
