//! The copyunit dashboard, as a pure function of the unit's model.
//!
//! Architecture invariant: this crate does no I/O. It takes a
//! [`copyunit_model::Snapshot`], raw input bytes and a terminal size, and
//! gives ANSI output bytes and [`copyunit_model::Request`]s. It knows nothing
//! of SSH, tokio, block devices or the image store, which is what lets unitd
//! run one [`Dashboard`] per SSH session and one on the local console, and
//! lets the tests draw it into ratatui's `TestBackend`.
//!
//! # Using it (one per terminal)
//!
//! ```
//! use copyunit_model::Snapshot;
//! use copyunit_tui::{Action, ColorMode, Dashboard, Options};
//!
//! let snap = Snapshot::default(); // from unitd's watch channel
//! let mut dash = Dashboard::new(Options {
//!     width: 80,
//!     height: 24, // from the pty request
//!     colors: ColorMode::from_term("xterm-256color", None),
//!     view_only: false,
//!     mouse: false,
//! });
//! let mut out = dash.enter_bytes(); // send first
//! if let Some(frame) = dash.render(&snap) {
//!     out.extend(frame); // send; None means the screen is up to date
//! }
//! for action in dash.handle_input(b"q", &snap) {
//!     match action {
//!         Action::Request(_req) => { /* hand to the unit */ }
//!         Action::Quit => out.extend(dash.leave_bytes()), // then exit-status 0
//!     }
//! }
//! ```
//!
//! The caller's loop, per session:
//! - channel data -> [`Dashboard::handle_input`]; act on each [`Action`];
//!   if the unit refuses a request, [`Dashboard::show_message`] the reason.
//!   If [`Dashboard::has_pending_input`] afterwards, call
//!   [`Dashboard::flush_pending`] when ~50 ms pass without more input
//!   (that is how a lone Escape key is told from the start of a sequence).
//! - window-change -> [`Dashboard::resize`].
//! - at most ~10 times a second: if [`Dashboard::needs_redraw`] with the
//!   latest snapshot, [`Dashboard::render`] and send the bytes. Each frame is
//!   a diff against the previous *rendered* frame, so when the client is slow,
//!   skip rendering (do not queue frames): the next render catches up in one
//!   diff. If bytes already rendered were dropped after all, call
//!   [`Dashboard::redraw_all`] (the user can also press Ctrl-L).
//! - on every exit path (q, Ctrl-C, disconnect, error) send
//!   [`Dashboard::leave_bytes`] if the channel is still open.
//!
//! Modules: [`input`] (bytes -> keys), [`backend`] (frames -> ANSI, colour
//! degradation), `state` (UI state and key map), `views` (drawing), `text`
//! and `theme` (formatting and styles).

#![forbid(unsafe_code)]

pub mod backend;
mod dashboard;
pub mod input;
mod state;
mod text;
mod theme;
mod views;

pub use backend::{ColorMode, enter_bytes, leave_bytes};
pub use dashboard::{Dashboard, Options};
pub use input::{Event, InputParser, KeyCode, KeyEvent, Modifiers, MouseEvent};
pub use state::{Action, Dialog, Notice, Pane, Ui};
pub use views::{MIN_HEIGHT, MIN_WIDTH};

#[cfg(test)]
mod tests;
