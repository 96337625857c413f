//! Which disks must never be written, and why.
//!
//! Architecture invariant: a disk that backs `/`, the boot medium, the image
//! store, an active swap area, or that has a mounted partition or a dm/md
//! holder is never eligible, and [`crate::check_target`] refuses it even when
//! named. Everything here is read from `/proc` and `/sys`; nothing is opened
//! for writing.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One line of `/proc/self/mountinfo` that names a block device.
#[derive(Debug, Clone)]
pub struct Mount {
    pub dev: (u32, u32),
    pub mountpoint: String,
    pub source: String,
}

/// Mounts, swaps and system roots at one instant.
#[derive(Debug, Default, Clone)]
pub struct SystemView {
    /// Every mount, by device number.
    pub mounts: Vec<Mount>,
    /// Whole-disk names that back the system, with the reason.
    pub system: BTreeMap<String, String>,
    /// Whole-disk names that hold the image store.
    pub store: BTreeSet<String>,
    /// Kernel names (disk or partition) of active swap areas.
    pub swaps: BTreeSet<String>,
}

/// `\040` and friends in mountinfo paths.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 4 <= b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8)
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo text.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        if f.len() < 10 {
            continue;
        }
        let Some((ma, mi)) = f[2].split_once(':') else {
            continue;
        };
        let (Ok(ma), Ok(mi)) = (ma.parse(), mi.parse()) else {
            continue;
        };
        let sep = f.iter().position(|x| *x == "-").unwrap_or(f.len());
        let source = f.get(sep + 2).map(|s| unescape(s)).unwrap_or_default();
        out.push(Mount {
            dev: (ma, mi),
            mountpoint: unescape(f[4]),
            source,
        });
    }
    out
}

/// The kernel name (`sda1`, `loop3`) of a block device number, if any.
pub fn name_of_dev(dev: (u32, u32)) -> Option<String> {
    let link = fs::canonicalize(format!("/sys/dev/block/{}:{}", dev.0, dev.1)).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The whole disks under a block device name: a partition's parent disk,
/// and through dm/md `slaves/` the disks they are built on.
pub fn disks_of(name: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    let mut seen = BTreeSet::new();
    while let Some(n) = todo.pop() {
        if !seen.insert(n.clone()) {
            continue;
        }
        let Ok(dir) = fs::canonicalize(format!("/sys/class/block/{n}")) else {
            continue;
        };
        let disk_dir: PathBuf = if dir.join("partition").exists() {
            dir.parent().map(Path::to_path_buf).unwrap_or(dir.clone())
        } else {
            dir.clone()
        };
        let disk = disk_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let slaves: Vec<String> = fs::read_dir(disk_dir.join("slaves"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        if slaves.is_empty() {
            out.insert(disk);
        } else {
            todo.extend(slaves);
        }
    }
    out
}

/// Device number of the filesystem holding `path`.
fn dev_of_path(path: &Path) -> Option<(u32, u32)> {
    let d = fs::metadata(path).ok()?.dev();
    Some((libc::major(d), libc::minor(d)))
}

impl SystemView {
    /// Reads the current mounts and swaps; `store` is the image store path.
    pub fn read(store: Option<&Path>) -> SystemView {
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default();
        let mut v = SystemView {
            mounts,
            ..Default::default()
        };
        for m in &v.mounts {
            let why = match m.mountpoint.as_str() {
                "/" => "backs the root filesystem /",
                "/boot" | "/boot/efi" | "/efi" => "holds the boot medium",
                "/usr" | "/var" | "/home" => "holds a system filesystem",
                _ => continue,
            };
            if let Some(name) = name_of_dev(m.dev) {
                for d in disks_of(&name) {
                    v.system
                        .entry(d)
                        .or_insert_with(|| format!("{why} ({})", m.mountpoint));
                }
            }
        }
        // The root filesystem may be an overlay or similar without a device
        // number of its own: the lower mounts then show up above.
        if let Some(dev) = dev_of_path(Path::new("/")).and_then(name_of_dev) {
            for d in disks_of(&dev) {
                v.system
                    .entry(d)
                    .or_insert_with(|| "backs the root filesystem /".into());
            }
        }
        if let Some(store) = store
            && let Some(name) = dev_of_path(store).and_then(name_of_dev)
        {
            v.store.extend(disks_of(&name));
        }
        if let Ok(t) = fs::read_to_string("/proc/swaps") {
            for line in t.lines().skip(1) {
                let Some(dev) = line.split_whitespace().next() else {
                    continue;
                };
                let dev = unescape(dev);
                if let Some(n) = dev.strip_prefix("/dev/") {
                    v.swaps.insert(n.to_owned());
                } else if let Some(name) = dev_of_path(Path::new(&dev)).and_then(name_of_dev) {
                    // A swap file pins the disk holding it.
                    v.swaps.insert(name);
                }
            }
        }
        v
    }

    /// Mount points of a block device (disk or partition) by device number.
    pub fn mountpoints(&self, dev: (u32, u32)) -> Vec<String> {
        self.mounts
            .iter()
            .filter(|m| m.dev == dev)
            .map(|m| m.mountpoint.clone())
            .collect()
    }
}

/// dm/md devices built on a disk or any of its partitions.
pub fn holders(disk: &str, partitions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for n in std::iter::once(disk.to_owned()).chain(partitions.iter().cloned()) {
        let dir = if n == disk {
            format!("/sys/block/{disk}/holders")
        } else {
            format!("/sys/block/{disk}/{n}/holders")
        };
        if let Ok(rd) = fs::read_dir(dir) {
            out.extend(
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_with_escaped_spaces() {
        let t = "36 35 8:17 / /media/my\\040stick rw,noatime shared:1 - vfat /dev/sdb1 rw\n\
                 22 1 0:21 / /proc rw - proc proc rw\n";
        let m = parse_mountinfo(t);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].dev, (8, 17));
        assert_eq!(m[0].mountpoint, "/media/my stick");
        assert_eq!(m[0].source, "/dev/sdb1");
        assert_eq!(m[1].mountpoint, "/proc");
    }
}
