//! The crate's error type: every failure says which drive and what to do.

use std::io;
use std::path::PathBuf;

use crate::sense::{Condition, Sense};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("{} is not a SCSI/MMC device (SG_IO not supported): use /dev/sr* or /dev/sg*", path.display())]
    NotScsi { path: PathBuf },

    #[error("{device}: SG_IO for {command} failed: {source}")]
    Io {
        device: String,
        command: &'static str,
        source: io::Error,
    },

    #[error("{device}: {command} timed out after {secs}s: the drive does not answer")]
    Timeout {
        device: String,
        command: &'static str,
        secs: u64,
    },

    #[error(
        "{device} disappeared during {command} (host status {host:#x}, driver status {driver:#x})"
    )]
    Gone {
        device: String,
        command: &'static str,
        host: u16,
        driver: u16,
    },

    #[error("{device}: {command} failed with SCSI status {status:#04x}")]
    Status {
        device: String,
        command: &'static str,
        status: u8,
    },

    /// The drive answered CHECK CONDITION.
    #[error("{}", condition.describe(device, command, sense))]
    Drive {
        device: String,
        command: &'static str,
        sense: Sense,
        condition: Condition,
    },

    #[error("{device}: short answer to {command} ({got} bytes)")]
    ShortReply {
        device: String,
        command: &'static str,
        got: usize,
    },

    #[error("no disc in {device}")]
    NoDisc { device: String },

    #[error("the {media} in {device} is finalized: not writable")]
    Finalized { device: String, media: String },

    #[error("the {media} in {device} is not blank ({status}): blank it first or use a blank disc")]
    NotBlank {
        device: String,
        media: String,
        status: String,
    },

    #[error(
        "the {media} in {device} is too small: the image needs {need} bytes, the disc has {free} free"
    )]
    TooSmall {
        device: String,
        media: String,
        need: u64,
        free: u64,
    },

    #[error("the {media} in {device} is not writable{why}")]
    NotWritable {
        device: String,
        media: String,
        why: String,
    },

    #[error("the {media} in {device} cannot be blanked or formatted")]
    NotErasable { device: String, media: String },

    #[error("reading the image failed after {done} of {total} bytes: {source}")]
    Source {
        done: u64,
        total: u64,
        source: io::Error,
    },

    #[error("the image ended after {done} of {total} bytes")]
    SourceShort { done: u64, total: u64 },

    #[error("writing the ripped image failed after {done} bytes: {source}")]
    Sink { done: u64, source: io::Error },

    #[error(
        "verify failed on {device}: the disc reads back as SHA-256 {actual}, the image is {expected}"
    )]
    VerifyMismatch {
        device: String,
        expected: String,
        actual: String,
    },

    #[error("{device} stayed busy ({what}) after {tries} tries")]
    Busy {
        device: String,
        what: &'static str,
        tries: u32,
    },

    #[error("{} unreadable sector(s) on the disc in {device}, first at LBA {}", lbas.len(), lbas.first().copied().unwrap_or(0))]
    Unreadable { device: String, lbas: Vec<u32> },

    #[error("cancelled")]
    Cancelled,
}

impl Error {
    /// The drive's sense condition, when the drive answered with one.
    pub fn condition(&self) -> Option<Condition> {
        match self {
            Error::Drive { condition, .. } => Some(*condition),
            _ => None,
        }
    }

    /// There is no disc in the drive (from preflight or from a command).
    pub fn is_no_disc(&self) -> bool {
        matches!(self, Error::NoDisc { .. })
            || matches!(self.condition(), Some(Condition::NoMedium { .. }))
    }
}
