//! Drives and the writer: what is attached, what may be written, and
//! writing one image to many drives at once.
//!
//! The API is synchronous (std threads, no async runtime): unitd calls it
//! from `spawn_blocking` or a thread of its own. Everything returns
//! `copyunit_model` types where they fit ([`Drive`], [`Phase`], [`ImageFormat`]).
//!
//! | call | what |
//! |---|---|
//! | [`discover`]`(&DiscoverOptions) -> Vec<Drive>` | every drive from `/sys/block`, with role, eligibility and reason |
//! | [`check_target`]`(name, &opts) -> Result<Drive>` | the drive if it may be written now, else why not |
//! | [`copy`]`(&CopyPlan, &CancelToken, &progress) -> CopyReport` | the fan-out writer (read once, write N, verify) |
//! | [`copy_from`]`(&plan, source, streams, ..)` | the same from any source (a disc) and to [`StreamTarget`]s (disc burners) |
//! | [`wipe`]`(name, full, &opts, &cancel, &progress)` | erase partition tables and signatures, or every byte |
//! | [`read_drive`]`(name, out, &opts, &cancel, &progress) -> ReadReport` | drive to a new image file with SHA-256 |
//! | [`validate_bmap`]`(bytes)` | a `.bmap` sidecar checked as it arrives (the wrong line named) |
//! | [`inspect`]`(path) -> ImageInfo` | format by magic bytes and decoded size when recorded |
//! | [`content_sha256`], [`drive_sha256`], [`holds_image`] | hashes for the duplicator's "already holds the image" skip |
//! | [`power_off`]`(name, &opts) -> Released` | flush a finished drive and power off its USB port |
//! | [`HotplugListener`], [`set_media_poll_interval`] | kernel uevents for arrivals, removals and media changes |
//!
//! Code map: [`discover`](mod@discover) (sysfs) and [`safety`] (system
//! disk, mounts, swap, holders) decide what may be written; [`blockdev`]
//! opens devices and issues ioctls; [`source`] and [`bmap`] turn an image
//! into a byte stream; [`write`](mod@write) fans it out; [`verify`],
//! [`wipe`](mod@wipe), [`read_back`], [`eject`] and [`hotplug`] do the rest.
//!
//! Architecture invariants:
//! - only [`blockdev`] contains `unsafe` and opens device nodes;
//! - a drive that backs the system, holds the image store, has a mounted or
//!   swap partition or a dm/md holder is never eligible and is refused by
//!   every operation, even when named;
//! - memory used by a copy is bounded by the queue depth, not by the number
//!   of targets: targets share the same buffers.

pub mod blockdev;
pub mod bmap;
mod buffer;
pub mod discover;
pub mod eject;
mod error;
pub mod hotplug;
mod probe;
pub mod progress;
mod queue;
pub mod read_back;
pub mod safety;
pub mod source;
pub mod verify;
pub mod wipe;
pub mod write;

pub use bmap::validate_bmap;
pub use copyunit_model::{Drive, ImageFormat, Phase};
pub use discover::{DiscoverOptions, check_target, discover, find};
pub use eject::{Released, power_off};
pub use error::{Error, Result};
pub use hotplug::{HotplugListener, Uevent, set_media_poll_interval};
pub use progress::{CancelToken, Progress};
pub use read_back::{ReadReport, read_drive};
pub use source::ImageReader;
pub use source::{ImageInfo, inspect};
pub use verify::{content_sha256, drive_sha256, holds_image};
pub use wipe::{wipe, wipe_planned};
pub use write::{
    CopyPlan, CopyReport, StreamDone, StreamInput, StreamTarget, TargetResult, TargetUpdate, copy,
    copy_from,
};
