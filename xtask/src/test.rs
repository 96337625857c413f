//! `cargo xtask test`: install what the tests need, then run every test.
//!
//! This is the README's test command and what `.ci/run` calls. The tests use
//! real tools (OpenSSH clients, tmux, loop devices, compressors, bmaptool,
//! QEMU), so a fresh Debian 12 machine gets them from apt first.

use std::process::Command;

use anyhow::Result;

use crate::util::{ensure_apt, ensure_apt_files, root};

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
    ensure_apt_files(&[
        ("/usr/share/OVMF/OVMF_CODE.fd", "ovmf"),
        ("/usr/lib/syslinux/mbr/mbr.bin", "syslinux-common"),
        (
            "/usr/lib/syslinux/modules/bios/ldlinux.c32",
            "syslinux-common",
        ),
        ("/usr/bin/syslinux", "syslinux"),
    ])?;
    run_counted(
        Command::new("cargo")
            .args(["test", "--workspace"])
            .args(args)
            .current_dir(root()),
    )?;
    // Every fuzz target for a bounded time; a crash fails the run.
    crate::fuzz::ci()
}

/// Runs `cargo test`, passing its output through, and ends with one line
/// adding up every test binary's result: `total: N passed, N failed, N skipped`.
fn run_counted(cmd: &mut Command) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let mut child = cmd.stdout(std::process::Stdio::piped()).spawn()?;
    let (mut passed, mut failed, mut ignored) = (0u64, 0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        let mut stdout = std::io::stdout();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = writeln!(stdout, "{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let count = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| {
                            part.trim()
                                .trim_start_matches("ok. ")
                                .trim_start_matches("FAILED. ")
                                .strip_suffix(word)
                        })
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0)
                };
                passed += count("passed");
                failed += count("failed");
                ignored += count("ignored");
            }
        }
    }
    let status = child.wait()?;
    println!("total: {passed} passed, {failed} failed, {ignored} skipped");
    if !status.success() {
        anyhow::bail!("cargo test failed with {status}");
    }
    Ok(())
}
