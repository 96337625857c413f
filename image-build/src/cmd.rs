//! Running the Debian tools the build relies on (apt-get, dpkg-deb, depmod, mkfs.fat, mtools).

use std::process::Command;

use crate::error::{Error, Result};

/// Runs `cmd` to completion; its stderr goes into the error when it fails. Returns stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let line = format!("{cmd:?}");
    tracing::debug!("running {line}");
    let out = cmd.output().map_err(|source| Error::Spawn {
        cmd: line.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            cmd: line,
            status: out.status,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
