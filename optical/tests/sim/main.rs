//! Burn, erase, probe and rip sequences against the simulated MMC drive.
//!
//! One test target; each module covers one area. Every test builds its own
//! drive, so they run in parallel and share nothing.

#![forbid(unsafe_code)]

mod burn_sequences;
mod erase;
mod faults;
mod probe_rip;
mod refusals;
mod strictness;

use std::ops::ControlFlow;

use copyunit_optical::{BurnOptions, BurnReport, Error, Progress, SimDrive, Timing, burn};
use sha2::{Digest, Sha256};

/// Deterministic, non-repeating test bytes.
pub fn image(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as u8
        })
        .collect()
}

pub fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn opts() -> BurnOptions {
    BurnOptions {
        timing: Timing::immediate(),
        ..BurnOptions::default()
    }
}

/// Burn `img` and collect the progress reports.
pub fn run_burn(
    drive: &mut SimDrive,
    img: &[u8],
    o: &BurnOptions,
) -> (Result<BurnReport, Error>, Vec<Progress>) {
    let mut seen = vec![];
    let r = burn(drive, img, img.len() as u64, o, &mut |p| {
        seen.push(*p);
        ControlFlow::Continue(())
    });
    (r, seen)
}

/// Burn and expect success; returns the report.
pub fn burn_ok(drive: &mut SimDrive, img: &[u8], o: &BurnOptions) -> BurnReport {
    let (r, _) = run_burn(drive, img, o);
    match r {
        Ok(r) => r,
        Err(e) => panic!("burn failed: {e}\ncommands: {:?}", drive.actions()),
    }
}

/// The disc's first `len` bytes.
pub fn disc_bytes(drive: &SimDrive, lba: u32, len: usize) -> Vec<u8> {
    let disc = drive.disc().expect("a disc in the drive");
    let blocks = len.div_ceil(2048) as u32;
    let mut b = disc.read(lba, blocks);
    b.truncate(len);
    b
}

pub fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}
