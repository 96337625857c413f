//! `cargo xtask test`: install what the tests need, then run every test.
//!
//! This is the README's test command and what `.ci/run` calls. The tests use
//! real tools (OpenSSH clients, tmux, loop devices, compressors, bmaptool,
//! QEMU), so a fresh Debian 12 machine gets them from apt first.

use std::process::Command;

use anyhow::Result;

use crate::util::{self, ensure_apt, root};

/// Programs the tests run, and the Debian package of each.
pub const NEEDS: &[(&str, &str)] = &[
    ("ssh", "openssh-client"),
    ("sftp", "openssh-client"),
    ("scp", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("sshd", "openssh-server"),
    ("tmux", "tmux"),
    ("losetup", "mount"),
    ("mkfs.ext4", "e2fsprogs"),
    ("xz", "xz-utils"),
    ("zstd", "zstd"),
    ("gzip", "gzip"),
    ("bzip2", "bzip2"),
    ("zip", "zip"),
    ("bmaptool", "bmap-tools"),
    ("fusermount3", "fuse3"),
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("qemu-img", "qemu-utils"),
    ("mcopy", "mtools"),
    ("mkfs.fat", "dosfstools"),
    ("cpio", "cpio"),
];

pub fn run(args: &[String]) -> Result<()> {
    ensure_apt(NEEDS)?;
    // Firmware for the BIOS/UEFI boot tests (files, not programs).
    for (file, pkg) in [
        ("/usr/share/OVMF/OVMF_CODE.fd", "ovmf"),
        ("/usr/lib/syslinux/mbr/mbr.bin", "syslinux-common"),
        (
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "syslinux-common",
        ),
        ("/usr/bin/syslinux", "syslinux"),
    ] {
        if !std::path::Path::new(file).exists() {
            util::run(Command::new("apt-get").args(["update", "-qq"]))?;
            util::run(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "--no-install-recommends", pkg])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            )?;
        }
    }
    util::run(
        Command::new("cargo")
            .args(["test", "--workspace"])
            .args(args)
            .current_dir(root()),
    )
}
