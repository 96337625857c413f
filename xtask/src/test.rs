//! `cargo xtask test`: install what the tests need, then run every test.
//!
//! This is the README's test command and what `.ci/run` calls. The tests use
//! real tools (OpenSSH clients, tmux, loop devices, compressors, bmaptool,
//! QEMU, and the other SSH/SFTP clients people use: PuTTY's tools, curl,
//! lftp, rclone, sshfs, paramiko, asyncssh), so a fresh Debian 12 machine
//! gets them from apt first, and the Python modules from pip.

use std::process::Command;

use anyhow::Result;

use crate::util::{self, apt_install, ensure_apt, ensure_apt_files, root};

/// Programs the tests run, and the Debian package of each.
pub const NEEDS: &[(&str, &str)] = &[
    ("ssh", "openssh-client"),
    ("sftp", "openssh-client"),
    ("scp", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("sshd", "openssh-server"),
    ("tmux", "tmux"),
    ("losetup", "mount"),
    ("dd", "coreutils"),
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
    // The image build the tests run (image-build's TOOLS in xtask/src/image.rs), and the
    // mounts and mtools readers of the tests; the tidy test keeps this list complete.
    ("depmod", "kmod"),
    ("strip", "binutils"),
    ("mdir", "mtools"),
    ("mtype", "mtools"),
    ("mount", "mount"),
    ("umount", "mount"),
    // The other clients of the SSH doors (tests/tests/e2e/clients.rs).
    ("psftp", "putty-tools"),
    ("pscp", "putty-tools"),
    ("plink", "putty-tools"),
    ("puttygen", "putty-tools"),
    ("curl", "curl"),
    ("lftp", "lftp"),
    ("rclone", "rclone"),
    ("sshfs", "sshfs"),
    ("timeout", "coreutils"),
    ("ss", "iproute2"),
    ("python3", "python3"),
];

/// Python modules the client tests import (tests/clients/*.py), and the
/// PyPI package of each, installed with pip for the `python3` on PATH.
pub const PYTHON_NEEDS: &[(&str, &str)] = &[("paramiko", "paramiko"), ("asyncssh", "asyncssh")];

pub fn run(args: &[String]) -> Result<()> {
    ensure_apt(NEEDS)?;
    ensure_pip(PYTHON_NEEDS)?;
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
    let total = run_counted(
        Command::new("cargo")
            .args(["test", "--workspace", "--no-fail-fast"])
            .args(args)
            .current_dir(root()),
    )?;
    // Every fuzz target for a bounded time; a crash fails the run.
    crate::fuzz::ci()?;
    // The tests' sum again as the last line, after the fuzzers' output.
    println!("{total}");
    Ok(())
}

/// True when `python3 -c "import MODULE"` works.
fn importable(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs, with pip for the `python3` on PATH, the packages of any module
/// it cannot import (nothing when all import: no network needed then).
/// Debian's own python3 gets pip from apt (python3-pip) and refuses
/// installs outside a virtualenv (PEP 668): there we pass
/// `--break-system-packages`, as the machine is a test machine.
fn ensure_pip(needs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(module, _)| !importable(module))
        .map(|(_, pkg)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let has_pip = || {
        Command::new("python3")
            .args(["-m", "pip", "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_pip() {
        apt_install(&["python3-pip"])?;
    }
    eprintln!("xtask: pip installing {}", missing.join(" "));
    let pip = || {
        let mut c = Command::new("python3");
        c.args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(&missing);
        c
    };
    if util::run(&mut pip()).is_err() {
        util::run(pip().arg("--break-system-packages"))?;
    }
    if let Some((module, _)) = needs.iter().find(|(m, _)| !importable(m)) {
        anyhow::bail!("pip installed {missing:?} but python3 still cannot import {module}");
    }
    Ok(())
}

/// Runs `cargo test`, passing its output through, and ends with one line
/// adding up every test binary's result: `total: N passed, N failed, N skipped`.
fn run_counted(cmd: &mut Command) -> Result<String> {
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
    let total = format!("total: {passed} passed, {failed} failed, {ignored} skipped");
    println!("{total}");
    if !status.success() {
        anyhow::bail!("cargo test failed with {status}");
    }
    Ok(total)
}
