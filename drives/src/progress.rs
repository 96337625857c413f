//! Cancellation and per-drive progress, shared by copy, wipe and read.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use copyunit_model::{JobTarget, Phase};

/// Asks a running operation to stop at its next chunk. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Where one drive is in its operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub phase: Phase,
    /// Bytes done in this phase (written, or read back while verifying).
    pub bytes_done: u64,
    /// Bytes this phase will take, when known.
    pub bytes_total: Option<u64>,
    pub rate_bps: u64,
    pub eta_secs: Option<u64>,
    /// Disc burners: the drive's own buffer fill, percent.
    pub buffer_fill: Option<u8>,
}

impl Progress {
    /// Copies the progress into the model's per-drive row.
    pub fn apply(&self, t: &mut JobTarget) {
        t.phase = self.phase;
        t.bytes_done = self.bytes_done;
        t.bytes_total = self.bytes_total;
        t.rate_bps = self.rate_bps;
        t.eta_secs = self.eta_secs;
        t.buffer_fill = self.buffer_fill;
    }
}

/// Turns byte counts into throttled [`Progress`] reports.
pub(crate) struct Meter<'a> {
    phase: Phase,
    started: Instant,
    last: Option<Instant>,
    total: Option<u64>,
    done: u64,
    fill: Option<u8>,
    sink: &'a (dyn Fn(Progress) + Sync),
}

const EVERY: Duration = Duration::from_millis(250);

impl<'a> Meter<'a> {
    pub fn new(sink: &'a (dyn Fn(Progress) + Sync)) -> Meter<'a> {
        Meter {
            phase: Phase::Prepare,
            started: Instant::now(),
            last: None,
            total: None,
            done: 0,
            fill: None,
            sink,
        }
    }

    /// Enters a phase (always reported).
    pub fn phase(&mut self, phase: Phase, total: Option<u64>) {
        self.phase = phase;
        self.total = total;
        self.done = 0;
        self.started = Instant::now();
        self.report();
    }

    /// Counts bytes; reports at most every 250 ms.
    pub fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.is_none_or(|t| t.elapsed() >= EVERY) {
            self.report();
        }
    }

    /// Sets the absolute position a drive reports itself (disc burners):
    /// a new phase is reported at once, the rest at most every 250 ms.
    pub fn set(&mut self, phase: Phase, done: u64, total: Option<u64>, fill: Option<u8>) {
        let new_phase = phase != self.phase;
        if new_phase {
            self.phase = phase;
            self.started = Instant::now();
        }
        self.fill = fill;
        self.total = total;
        self.done = done;
        // A new phase is reported with where the drive says it is, not 0.
        if new_phase || self.last.is_none_or(|t| t.elapsed() >= EVERY) {
            self.report();
        }
    }

    pub fn done(&self) -> u64 {
        self.done
    }

    pub fn report(&mut self) {
        self.last = Some(Instant::now());
        let secs = self.started.elapsed().as_secs_f64();
        let rate = if secs > 0.05 {
            (self.done as f64 / secs) as u64
        } else {
            0
        };
        let eta = match (self.total, rate) {
            (Some(t), r) if r > 0 => Some(t.saturating_sub(self.done) / r),
            _ => None,
        };
        (self.sink)(Progress {
            phase: self.phase,
            bytes_done: self.done,
            bytes_total: self.total,
            rate_bps: rate,
            eta_secs: eta,
            buffer_fill: self.fill,
        });
    }
}
