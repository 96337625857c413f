//! Optical drives for copyunit: burners and the source disc drive, driven
//! with MMC commands over SG_IO, and a simulated drive to test them.
//!
//! # Layers
//! - [`transport`]: the [`Transport`] trait (send a CDB with a data phase,
//!   get status, data and decoded sense) and [`SgTransport`], the real one
//!   over the SG_IO ioctl on `/dev/sr*` or `/dev/sg*`.
//! - [`sense`]: sense data (fixed and descriptor formats) decoded into
//!   [`Condition`]s with messages a person can act on ("no disc in sr1").
//! - [`mmc`]: typed MMC commands ([`Mmc`]) and their parsed answers.
//! - [`sim`]: [`SimDrive`], an in-memory drive with media state, drive
//!   buffer, unit attentions and injectable faults, recording every command.
//! - [`mod@burn`]: the burn sequence per media type with preflight checks,
//!   verify and eject; [`blank`], [`fn@format`], [`erase`].
//! - [`mod@probe`]: drive identity, capabilities (Burner or Source) and the
//!   disc as [`copyunit_model::OpticalMedia`]; [`media_event`] to poll for
//!   discs inserted or removed.
//! - [`mod@rip`]: read a source disc into a writer with SHA-256, or stream it
//!   with [`DiscReader`] for disc-to-disc copies.
//!
//! # Use from unitd
//! ```no_run
//! use std::ops::ControlFlow;
//! use copyunit_optical::{BurnOptions, SgTransport, burn, probe};
//!
//! # fn main() -> Result<(), copyunit_optical::Error> {
//! let mut drive = SgTransport::open("/dev/sr1")?;
//! let info = probe(&mut drive)?; // role, media for the model's Drive
//! let image = std::fs::File::open("/store/debian.iso").map_err(|e| copyunit_optical::Error::Open {
//!     path: "/store/debian.iso".into(),
//!     source: e,
//! })?;
//! let size = image.metadata().map(|m| m.len()).unwrap_or(0);
//! let report = burn(&mut drive, image, size, &BurnOptions::default(), &mut |p| {
//!     println!("{:?} {}/{} buffer {:?}", p.phase, p.bytes_done, p.bytes_total, p.buffer_fill);
//!     ControlFlow::Continue(())
//! })?;
//! assert!(report.verified);
//! # let _ = info; Ok(()) }
//! ```
//!
//! Every operation takes `&mut dyn Transport`, so one thread per drive owns
//! its transport; the source of a burn is any `impl Read` with its size
//! (e.g. one reader of the fan-out engine per burner).
//!
//! Architecture invariant: only `transport` opens devices or uses `unsafe`
//! (one ioctl, wrapped once). Nothing here knows about SSH or the dashboard.

pub mod burn;
pub mod error;
pub mod mmc;
pub mod probe;
pub mod rip;
pub mod sense;
pub mod sim;
pub mod transport;

pub use burn::{
    BurnOptions, BurnReport, Plan, Progress, Timing, WriteMode, blank, burn, erase, format,
    preflight,
};
pub use error::{Error, Result};
pub use mmc::{BlankKind, Media, MediaEvent, MediaEventKind, Mmc};
pub use probe::{Capabilities, DriveInfo, media_event, probe};
pub use rip::{DiscReader, RipOptions, RipReport, rip};
pub use sense::{Condition, Sense};
pub use sim::{DriveConfig, Fault, SimDisc, SimDrive};
pub use transport::{DataDir, Reply, SgTransport, Status, Transport};
