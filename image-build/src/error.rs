//! The crate's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not run {cmd} (is the program installed?): {source}")]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} failed ({status}): {stderr}")]
    Command {
        cmd: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("lock file {path}: {msg}")]
    Lock { path: PathBuf, msg: String },
    #[error(
        "pinned package {name} {version} cannot be downloaded any more ({detail}): move the pin with `cargo xtask image --update-lock`, check the image boots, and commit image-build/kernel.lock"
    )]
    PinGone {
        name: String,
        version: String,
        detail: String,
    },
    #[error(
        "{name} {version}: SHA-256 is {got} but the lock file says {want}: the archive now serves different bytes for this version; inspect it, then move the pin with `cargo xtask image --update-lock`"
    )]
    Checksum {
        name: String,
        version: String,
        got: String,
        want: String,
    },
    #[error(
        "kernel module {0} is neither in the kernel package nor built in: fix the module list in image-build/src/kmods.rs"
    )]
    MissingModule(String),
    #[error("{0}")]
    Layout(String),
}

pub type Result<T> = std::result::Result<T, Error>;

/// Adds the path to an I/O error.
pub fn io(what: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.into();
    move |source| Error::Io { what, path, source }
}
