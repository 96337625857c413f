//! The hybrid disk image: an MBR (syslinux's boot code) with one active FAT32 partition that
//! boots on BIOS through syslinux and on UEFI through Debian's signed shim and grub
//! (EFI/BOOT/BOOTX64.EFI), so it also boots with Secure Boot on.
//!
//! Built without root: mkfs.fat, mcopy and syslinux's mtools installer work on a partition
//! file, which is then placed after the MBR. mtools and mkfs.fat --invariant take their
//! times from SOURCE_DATE_EPOCH or use constants, so the bytes are reproducible.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use crate::cmd;
use crate::error::{Error, Result, io};

/// Total image size: fits a 64 MiB stick and leaves room to grow the initramfs.
pub const IMAGE_BYTES: u64 = 64 << 20;
/// The partition starts at 1 MiB, as partitioning tools align it.
pub const PART_START_LBA: u64 = 2048;
/// FAT volume label PID 1 looks for.
pub const BOOT_LABEL: &str = "COPYUNIT";
/// MBR disk signature: "COPY".
const DISK_SIGNATURE: u32 = 0x5950_4f43;

/// What goes on the boot partition, and the tools that put it there.
pub struct BootFiles<'a> {
    pub vmlinuz: &'a Path,
    pub initrd: &'a Path,
    /// shimx64.efi.signed, installed as EFI/BOOT/BOOTX64.EFI.
    pub shim: &'a Path,
    /// grubx64.efi.signed, which shim starts from its own folder.
    pub grub: &'a Path,
    /// syslinux's mtools installer binary, from the pinned syslinux package.
    pub syslinux: &'a Path,
    /// syslinux's MBR boot code (mbr.bin, 440 bytes).
    pub mbr_code: &'a Path,
    pub cmdline: &'a str,
    pub unit_toml: &'a [u8],
    pub authorized_keys: &'a [u8],
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io("creating", p))?;
    }
    std::fs::write(path, bytes).map_err(io("writing", path))
}

/// Sets every file's and folder's times under `dir` to `epoch`, so mcopy -m copies them.
fn set_times(dir: &Path, epoch: u64) -> Result<()> {
    let t = UNIX_EPOCH + Duration::from_secs(epoch);
    for e in std::fs::read_dir(dir)
        .map_err(io("listing", dir))?
        .flatten()
    {
        let p = e.path();
        if p.is_dir() {
            set_times(&p, epoch)?;
        }
        let f = File::open(&p).map_err(io("opening", &p))?;
        f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .map_err(io("setting times of", &p))?;
    }
    Ok(())
}

/// Lays out the boot partition's files in `staging`.
fn stage(files: &BootFiles, staging: &Path) -> Result<()> {
    let copy = |from: &Path, to: &str| {
        let to = staging.join(to);
        if let Some(p) = to.parent() {
            std::fs::create_dir_all(p).map_err(io("creating", p))?;
        }
        std::fs::copy(from, &to)
            .map(|_| ())
            .map_err(io("copying", from))
    };
    copy(files.vmlinuz, "vmlinuz")?;
    copy(files.initrd, "initrd.img")?;
    copy(files.shim, "EFI/BOOT/BOOTX64.EFI")?;
    copy(files.grub, "EFI/BOOT/grubx64.efi")?;
    let cmdline = files.cmdline;
    write_file(
        &staging.join("syslinux.cfg"),
        format!(
            "SERIAL 0 115200\nDEFAULT copyunit\nPROMPT 0\nTIMEOUT 0\n\nLABEL copyunit\n  KERNEL /vmlinuz\n  INITRD /initrd.img\n  APPEND {cmdline}\n"
        )
        .as_bytes(),
    )?;
    // Debian's signed grub reads $prefix/grub.cfg (prefix /EFI/debian) or, failing that, the
    // grub.cfg beside itself.
    let grub_cfg = format!(
        "set timeout=0\nset default=0\n\nmenuentry copyunit {{\n  linux /vmlinuz {cmdline}\n  initrd /initrd.img\n}}\n"
    );
    write_file(&staging.join("EFI/BOOT/grub.cfg"), grub_cfg.as_bytes())?;
    write_file(&staging.join("EFI/debian/grub.cfg"), grub_cfg.as_bytes())?;
    write_file(&staging.join("unit.toml"), files.unit_toml)?;
    write_file(&staging.join("authorized_keys"), files.authorized_keys)?;
    write_file(
        &staging.join("README.txt"),
        b"copyunit boot stick\r\n\r\n\
unit.toml        the unit's name, and a static address if DHCP is not wanted\r\n\
authorized_keys  OpenSSH public keys (one per line) allowed to log in as admin;\r\n\
                 leave it without keys to pair from the console's one-time code\r\n\r\n\
Everything else here is needed to boot: do not rename or delete it.\r\n",
    )
}

/// The 512-byte MBR: boot code, signature, one active FAT32 (LBA) partition.
pub fn mbr(code: &[u8], start_lba: u64, sectors: u64) -> Result<[u8; 512]> {
    if code.len() > 440 {
        return Err(Error::Layout(format!(
            "MBR boot code is {} bytes; at most 440 fit",
            code.len()
        )));
    }
    let start = u32::try_from(start_lba)
        .map_err(|_| Error::Layout("partition start beyond 2 TiB".into()))?;
    let count =
        u32::try_from(sectors).map_err(|_| Error::Layout("partition beyond 2 TiB".into()))?;
    let mut m = [0u8; 512];
    m[..code.len()].copy_from_slice(code);
    m[440..444].copy_from_slice(&DISK_SIGNATURE.to_le_bytes());
    let p = &mut m[446..462];
    p[0] = 0x80; // active: syslinux's MBR code boots the active partition
    p[1..4].copy_from_slice(&[0xfe, 0xff, 0xff]); // CHS unused: LBA only
    p[4] = 0x0c; // FAT32 with LBA
    p[5..8].copy_from_slice(&[0xfe, 0xff, 0xff]);
    p[8..12].copy_from_slice(&start.to_le_bytes());
    p[12..16].copy_from_slice(&count.to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xaa;
    Ok(m)
}

/// Builds the disk image at `out` from `files`, using `work` as scratch space.
pub fn assemble(files: &BootFiles, work: &Path, out: &Path, epoch: u64) -> Result<()> {
    let staging = work.join("fat");
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(io("creating", &staging))?;
    stage(files, &staging)?;
    set_times(&staging, epoch)?;

    let part_sectors = IMAGE_BYTES / 512 - PART_START_LBA;
    let part = work.join("boot.part");
    let _ = std::fs::remove_file(&part);
    File::create(&part)
        .and_then(|f| f.set_len(part_sectors * 512))
        .map_err(io("creating", &part))?;
    let epoch_s = epoch.to_string();
    cmd::run(
        Command::new(mkfs_fat())
            .args([
                "-F",
                "32",
                "-S",
                "512",
                "-s",
                "1",
                "-n",
                BOOT_LABEL,
                "--invariant",
            ])
            .args(["-h", &PART_START_LBA.to_string()])
            .arg(&part)
            .env("SOURCE_DATE_EPOCH", &epoch_s),
    )?;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&staging)
        .map_err(io("listing", &staging))?
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    cmd::run(
        Command::new("mcopy")
            .arg("-i")
            .arg(&part)
            .args(["-s", "-m", "-Q"])
            .args(&entries)
            .arg("::/")
            .env("SOURCE_DATE_EPOCH", &epoch_s)
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;
    cmd::run(
        Command::new(files.syslinux)
            .arg("--install")
            .arg(&part)
            .env("SOURCE_DATE_EPOCH", &epoch_s)
            .env("MTOOLS_SKIP_CHECK", "1"),
    )?;

    let code = std::fs::read(files.mbr_code).map_err(io("reading", files.mbr_code))?;
    let sector0 = mbr(&code, PART_START_LBA, part_sectors)?;
    let tmp = out.with_extension("img.partial");
    let mut img = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io("creating", &tmp))?;
    img.write_all(&sector0).map_err(io("writing", &tmp))?;
    img.set_len(IMAGE_BYTES).map_err(io("sizing", &tmp))?;
    img.seek(SeekFrom::Start(PART_START_LBA * 512))
        .map_err(io("seeking", &tmp))?;
    let mut p = File::open(&part).map_err(io("opening", &part))?;
    std::io::copy(&mut p, &mut img).map_err(io("writing", &tmp))?;
    img.sync_all().map_err(io("syncing", &tmp))?;
    drop(img);
    std::fs::rename(&tmp, out).map_err(io("renaming", &tmp))?;
    let _ = std::fs::remove_file(&part);
    Ok(())
}

fn mkfs_fat() -> PathBuf {
    for p in ["/usr/sbin/mkfs.fat", "/sbin/mkfs.fat"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "mkfs.fat".into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbr_layout() {
        let m = mbr(&[0xfa; 440], 2048, 129024).expect("fits");
        assert_eq!(&m[510..], &[0x55, 0xaa]);
        assert_eq!(m[446], 0x80);
        assert_eq!(m[450], 0x0c);
        assert_eq!(u32::from_le_bytes([m[454], m[455], m[456], m[457]]), 2048);
        assert_eq!(u32::from_le_bytes([m[458], m[459], m[460], m[461]]), 129024);
        assert!(mbr(&[0; 441], 2048, 1).is_err());
    }
}
