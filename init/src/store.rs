//! Block devices at boot: the boot partition (FAT labelled COPYUNIT), the image store
//! (a filesystem labelled COPYUNIT-STORE), and blank internal disks that could become one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use nix::mount::{MsFlags, mount};

/// The boot partition's FAT volume label, written by image-build.
pub const BOOT_LABEL: &str = "COPYUNIT";

/// A filesystem kind PID 1 can recognise from its superblock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fs {
    Ext4,
    Vfat,
}

impl Fs {
    pub fn kernel_name(self) -> &'static str {
        match self {
            Fs::Ext4 => "ext4",
            Fs::Vfat => "vfat",
        }
    }
}

/// Reads the filesystem kind and label from the first 4 KiB of a device.
pub fn probe(head: &[u8]) -> Option<(Fs, String)> {
    let text = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .trim_end_matches(['\0', ' '])
            .to_string()
    };
    // ext2/3/4: superblock at 1024, magic 0xEF53 at +0x38, 16-byte label at +0x78.
    if head.len() >= 2048 && head[1024 + 0x38..1024 + 0x3a] == [0x53, 0xef] {
        return Some((Fs::Ext4, text(&head[1024 + 0x78..1024 + 0x88])));
    }
    if head.len() >= 512 && head[510..512] == [0x55, 0xaa] {
        // FAT32 extended BPB: label at 0x47, type at 0x52; FAT12/16: label at 0x2b, type at 0x36.
        if &head[0x52..0x57] == b"FAT32" {
            return Some((Fs::Vfat, text(&head[0x47..0x52])));
        }
        if &head[0x36..0x39] == b"FAT" {
            return Some((Fs::Vfat, text(&head[0x2b..0x36])));
        }
    }
    None
}

/// One block device or partition as seen in /sys/class/block.
#[derive(Debug, Clone)]
pub struct Block {
    pub name: String,
    pub fs: Option<(Fs, String)>,
    pub is_partition: bool,
    pub size_bytes: u64,
    pub removable: bool,
    pub usb: bool,
}

fn read_head(dev: &Path) -> std::io::Result<Vec<u8>> {
    let mut f = File::open(dev)?;
    let mut buf = vec![0u8; 4096];
    let mut got = 0;
    while got < buf.len() {
        match f.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// Every disk and partition, probed. Skips RAM, loop and optical devices.
pub fn scan() -> Vec<Block> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/class/block") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if ["ram", "loop", "sr", "zram", "fd"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        let sys = e.path();
        let read = |f: &str| std::fs::read_to_string(sys.join(f)).unwrap_or_default();
        let size_bytes = read("size").trim().parse::<u64>().unwrap_or(0) * 512;
        if size_bytes == 0 {
            continue;
        }
        let is_partition = sys.join("partition").exists();
        let disk_sys = if is_partition {
            sys.join("..")
        } else {
            sys.clone()
        };
        let removable =
            std::fs::read_to_string(disk_sys.join("removable")).is_ok_and(|r| r.trim() == "1");
        let usb = std::fs::canonicalize(&sys).is_ok_and(|p| p.to_string_lossy().contains("/usb"));
        let fs = read_head(&Path::new("/dev").join(&name))
            .ok()
            .and_then(|h| probe(&h));
        out.push(Block {
            name,
            fs,
            is_partition,
            size_bytes,
            removable,
            usb,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The device carrying a filesystem of this label, if any.
pub fn find_label<'a>(blocks: &'a [Block], label: &str) -> Option<&'a Block> {
    blocks.iter().find(|b| {
        b.fs.as_ref()
            .is_some_and(|(_, l)| l.eq_ignore_ascii_case(label))
    })
}

/// Internal disks (not USB, not removable) with no partitions and nothing in their first MiB.
pub fn blank_internal_disks(blocks: &[Block]) -> Vec<Block> {
    blocks
        .iter()
        .filter(|b| !b.is_partition && !b.usb && !b.removable && b.fs.is_none())
        .filter(|b| {
            !blocks
                .iter()
                .any(|p| p.is_partition && p.name.starts_with(&b.name))
        })
        .filter(|b| is_zero_head(&Path::new("/dev").join(&b.name)))
        .cloned()
        .collect()
}

fn is_zero_head(dev: &Path) -> bool {
    let Ok(mut f) = File::open(dev) else {
        return false;
    };
    let mut buf = vec![0u8; 1 << 20];
    if f.seek(SeekFrom::Start(0)).is_err() || f.read_exact(&mut buf).is_err() {
        return false;
    }
    buf.iter().all(|&b| b == 0)
}

/// Makes a whole blank disk the image store: an ext2 filesystem (mounted by the ext4 driver)
/// with the store's label, made by the initramfs's static busybox.
pub fn format(disk: &str, label: &str) -> Result<(), String> {
    let dev = format!("/dev/{disk}");
    let out = std::process::Command::new("/bin/busybox")
        .args(["mke2fs", "-m", "1", "-L", label, &dev])
        .output()
        .map_err(|e| format!("cannot run busybox mke2fs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "formatting {dev} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

/// Mounts a probed device at `target`.
pub fn mount_block(b: &Block, target: &str) -> Result<(), String> {
    let Some((fs, _)) = &b.fs else {
        return Err(format!("{} has no filesystem this unit knows", b.name));
    };
    std::fs::create_dir_all(target).map_err(|e| format!("{target}: {e}"))?;
    let dev = format!("/dev/{}", b.name);
    mount(
        Some(dev.as_str()),
        target,
        Some(fs.kernel_name()),
        MsFlags::MS_NOATIME,
        None::<&str>,
    )
    .map_err(|e| format!("mounting {dev} ({}) at {target}: {e}", fs.kernel_name()))
}

/// A tmpfs at `target`: the store when the unit has no disk for one.
pub fn mount_ram(target: &str) -> Result<(), String> {
    std::fs::create_dir_all(target).map_err(|e| format!("{target}: {e}"))?;
    mount(
        Some("ram-store"),
        target,
        Some("tmpfs"),
        MsFlags::MS_NOATIME,
        Some("mode=0755,size=75%"),
    )
    .map_err(|e| format!("mounting a RAM store at {target}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn head_of(path: &Path) -> Vec<u8> {
        read_head(path).expect("read image")
    }

    #[test]
    fn probes_real_filesystems() {
        let dir = std::env::temp_dir().join(format!("copyunit-init-probe-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        struct Cleanup(std::path::PathBuf);
        impl Drop for Cleanup {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _c = Cleanup(dir.clone());
        let ext = dir.join("ext.img");
        let fat = dir.join("fat.img");
        std::fs::File::create(&ext)
            .and_then(|f| f.set_len(8 << 20))
            .expect("ext img");
        std::fs::File::create(&fat)
            .and_then(|f| f.set_len(40 << 20))
            .expect("fat img");
        let ok = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "COPYUNIT-STORE"])
            .arg(&ext)
            .status();
        assert!(
            ok.is_ok_and(|s| s.success()),
            "mkfs.ext4 (e2fsprogs) is needed"
        );
        let ok = Command::new("mkfs.fat")
            .args(["-F", "32", "-n", "COPYUNIT"])
            .arg(&fat)
            .output();
        assert!(
            ok.is_ok_and(|s| s.status.success()),
            "mkfs.fat (dosfstools) is needed"
        );
        assert_eq!(
            probe(&head_of(&ext)),
            Some((Fs::Ext4, "COPYUNIT-STORE".into()))
        );
        assert_eq!(probe(&head_of(&fat)), Some((Fs::Vfat, "COPYUNIT".into())));
        assert_eq!(probe(&[0u8; 4096]), None);
    }
}
