//! Integration tests on real loop devices (needs root, as CI has).

#![forbid(unsafe_code)]

mod copy;
mod discover;
mod faults;
mod formats;
mod hotplug;
mod streams;
mod util;
mod wipe_read;
