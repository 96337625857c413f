//! Small helpers shared by the tasks: running commands, finding the workspace.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::Command;

/// The workspace root (the folder holding the top Cargo.toml).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Where cargo puts build output (`CARGO_TARGET_DIR` or `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Runs a command, inheriting stdio; fails with the command line on non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("could not start {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

/// True when `prog` is found on PATH.
pub fn have(prog: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(prog).is_file()))
        .unwrap_or(false)
}

/// Installs Debian packages that provide any missing program.
/// `needs` pairs a program with the package that provides it.
pub fn ensure_apt(needs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(prog, _)| !have(prog))
        .map(|(_, pkg)| *pkg)
        .collect();
    apt_install(&missing)
}

/// Installs Debian packages that provide any missing file.
/// `needs` pairs an absolute path with the package that provides it.
pub fn ensure_apt_files(needs: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(file, _)| !std::path::Path::new(file).exists())
        .map(|(_, pkg)| *pkg)
        .collect();
    apt_install(&missing)
}

/// One `apt-get update` and one install for all of `pkgs` (nothing if empty).
pub fn apt_install(pkgs: &[&str]) -> Result<()> {
    let mut pkgs = pkgs.to_vec();
    pkgs.sort_unstable();
    pkgs.dedup();
    if pkgs.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {}", pkgs.join(" "));
    run(Command::new("apt-get").args(["update", "-qq"]))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(&pkgs)
        .env("DEBIAN_FRONTEND", "noninteractive"))
}
