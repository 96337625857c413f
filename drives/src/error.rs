//! The crate's error type: each message names the drive or image and says
//! what to do about it.

use std::io;
use std::path::PathBuf;

/// Everything this crate can refuse or fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no drive named {0}")]
    NoSuchDrive(String),
    /// The drive may not be written: system disk, mounted, read-only, hidden loop device.
    #[error("drive {name}: {reason}: refusing to write")]
    Refused { name: String, reason: String },
    #[error("image {image} needs {image_size} bytes but drive {drive} holds only {drive_size}")]
    TooSmall {
        image: String,
        drive: String,
        image_size: u64,
        drive_size: u64,
    },
    #[error("drive {drive}: {op}: {source}")]
    Drive {
        drive: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("image {image}: {op}: {source}")]
    Image {
        image: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    /// The compressed stream is damaged or ends early.
    #[error("image {image} is corrupt or truncated at byte {offset} of the file ({detail})")]
    Corrupt {
        image: String,
        offset: u64,
        detail: String,
    },
    #[error("bmap {path}: {detail}")]
    Bmap { path: PathBuf, detail: String },
    #[error("image {image}: {detail}")]
    Unsupported { image: String, detail: String },
    #[error("drive {drive} reports more capacity than it has: {detail}")]
    FakeCapacity { drive: String, detail: String },
    #[error("drive {drive} was replaced during the job (diskseq {before} became {after})")]
    Replaced {
        drive: String,
        before: u64,
        after: u64,
    },
    /// The drive under the planned name is not the one validated.
    #[error("drive {drive} changed since the {job} was planned ({detail}): refusing to write")]
    Changed {
        drive: String,
        /// "copy", "wipe".
        job: &'static str,
        detail: String,
    },
    #[error("drive {drive} reads back different data than was written: {detail}")]
    VerifyMismatch { drive: String, detail: String },
    #[error("drive {drive} took no data for {secs} s: not responding")]
    Stalled { drive: String, secs: u64 },
    #[error("cancelled")]
    Cancelled,
    /// Every target of a copy failed: the reader stopped early.
    #[error("every target failed")]
    NoTargetLeft,
    #[error("{0}")]
    Source(String),
    /// A stream target (a disc burner) failed; its own message names the drive.
    #[error("{detail}")]
    Stream { drive: String, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn drive(drive: &str, op: &'static str) -> impl FnOnce(io::Error) -> Error {
        let drive = drive.to_owned();
        move |source| Error::Drive { drive, op, source }
    }
    pub(crate) fn image(image: &str, op: &'static str) -> impl FnOnce(io::Error) -> Error {
        let image = image.to_owned();
        move |source| Error::Image { image, op, source }
    }
}
