//! `cargo xtask bench [NAME...]`: measured against the peer tool in the same run.

use anyhow::{Result, bail};

mod dashboard;
mod sftp;
mod tui;
mod write;

pub fn run(args: &[String]) -> Result<()> {
    let all = ["sftp", "write", "tui", "dashboard"];
    let names: Vec<&str> = if args.is_empty() {
        all.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    };
    for name in names {
        match name {
            "sftp" => sftp::run()?,
            "write" => write::run()?,
            "tui" => tui::run()?,
            "dashboard" => dashboard::run()?,
            other => bail!("unknown benchmark `{other}` (known: {})", all.join(", ")),
        }
    }
    Ok(())
}

/// What every unitd benchmark sets up: a release unitd, and a scratch
/// folder on /dev/shm (removed on drop) holding an admin key pair and its
/// authorized_keys.
pub(crate) struct Scratch {
    pub dir: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Result<Scratch> {
        use crate::util::{self, root};
        use std::process::Command;
        util::run(
            Command::new("cargo")
                .args(["build", "--release", "-q", "-p", "unitd"])
                .current_dir(root()),
        )?;
        let dir = std::path::Path::new("/dev/shm")
            .join(format!("copyunit-bench-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let key = dir.join("id");
        keygen(&key)?;
        std::fs::copy(key.with_extension("pub"), dir.join("authorized_keys"))?;
        Ok(Scratch { dir, key })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An ed25519 key pair without passphrase at `path`.
pub(crate) fn keygen(path: &std::path::Path) -> Result<()> {
    crate::util::run(
        std::process::Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(path),
    )
}

/// A child process killed (and reaped) on drop.
pub(crate) struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
