//! Log lines a client can cause, rate-limited.
//!
//! Anyone who can reach the port can make unitd log: refused connections,
//! failed logins, protocol errors. Unlimited, 20,000 refused connections
//! wrote 12,927 lines. Each kind of line here gets [`BURST`] lines per
//! [`INTERVAL`]; the rest are counted, and one "suppressed N similar
//! messages" line says how many were left out (at the next line of that
//! kind, or from [`report`], which the accept loop calls every interval).
//!
//! [`limited!`] is for our own lines; [`ThirdParty`] is a per-layer filter
//! that does the same for russh and russh-sftp's own warnings (an unknown
//! channel request is one line per packet).

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const INTERVAL: Duration = Duration::from_secs(10);
pub const BURST: u32 = 10;

#[derive(Debug)]
struct Bucket {
    start: Instant,
    logged: u32,
    suppressed: u64,
}

/// Counts lines per kind in fixed windows.
#[derive(Debug)]
pub struct Limiter {
    interval: Duration,
    burst: u32,
    buckets: Mutex<BTreeMap<String, Bucket>>,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; first say that `suppressed` lines of this kind were left out.
    Log {
        suppressed: u64,
    },
    Drop,
}

impl Limiter {
    pub const fn new(interval: Duration, burst: u32) -> Limiter {
        Limiter {
            interval,
            burst,
            buckets: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn check(&self, kind: &str, now: Instant) -> Verdict {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        // A flood of distinct kinds must not grow the map without bound.
        if map.len() > 1024 && !map.contains_key(kind) {
            map.retain(|_, b| now.duration_since(b.start) < self.interval || b.suppressed > 0);
            if map.len() > 1024 {
                return Verdict::Drop;
            }
        }
        let b = map.entry(kind.to_string()).or_insert(Bucket {
            start: now,
            logged: 0,
            suppressed: 0,
        });
        let mut suppressed = 0;
        if now.duration_since(b.start) >= self.interval {
            suppressed = std::mem::take(&mut b.suppressed);
            b.start = now;
            b.logged = 0;
        }
        if b.logged < self.burst {
            b.logged += 1;
            Verdict::Log { suppressed }
        } else {
            b.suppressed = b.suppressed.saturating_add(1);
            if suppressed > 0 {
                // The window rolled over into a full one: carry the count.
                b.suppressed = b.suppressed.saturating_add(suppressed);
            }
            Verdict::Drop
        }
    }

    /// Kinds whose window is over with lines left out: (kind, count). Their
    /// counts restart.
    pub fn take_suppressed(&self, now: Instant) -> Vec<(String, u64)> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        map.retain(|kind, b| {
            if now.duration_since(b.start) < self.interval {
                return true;
            }
            if b.suppressed == 0 {
                return false; // a quiet kind: forget it
            }
            out.push((kind.clone(), std::mem::take(&mut b.suppressed)));
            b.start = now;
            b.logged = 0;
            true
        });
        out
    }
}

/// The limiter behind [`limited!`].
pub static OURS: Limiter = Limiter::new(INTERVAL, BURST);
/// The limiter behind [`ThirdParty`].
pub static THEIRS: Limiter = Limiter::new(INTERVAL, BURST);

/// True when a line of `kind` may be logged now; says first how many of
/// that kind were left out before.
pub fn allow(kind: &str) -> bool {
    match OURS.check(kind, Instant::now()) {
        Verdict::Log { suppressed } => {
            if suppressed > 0 {
                tracing::warn!("suppressed {suppressed} similar messages ({kind})");
            }
            true
        }
        Verdict::Drop => false,
    }
}

/// Logs the counts of windows that ended with lines left out. Called every
/// [`INTERVAL`] by the accept loop, so the last burst is accounted for too.
pub fn report() {
    let now = Instant::now();
    for (kind, n) in OURS.take_suppressed(now) {
        tracing::warn!("suppressed {n} similar messages ({kind})");
    }
    for (kind, n) in THEIRS.take_suppressed(now) {
        tracing::warn!("suppressed {n} similar messages from {kind}");
    }
}

/// `limited!(warn, "kind", fields..., "message")`: a tracing line, at most
/// [`BURST`] of that kind per [`INTERVAL`].
#[macro_export]
macro_rules! limited {
    ($level:ident, $kind:expr, $($arg:tt)+) => {
        if $crate::ssh::logs::allow($kind) {
            tracing::$level!($($arg)+);
        }
    };
}

/// A per-layer filter: events from russh and russh-sftp (their own
/// warnings, which a client causes) are limited per source line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThirdParty;

fn third_party(target: &str) -> bool {
    target.starts_with("russh")
}

impl<S> tracing_subscriber::layer::Filter<S> for ThirdParty {
    fn enabled(
        &self,
        meta: &tracing::Metadata<'_>,
        _cx: &tracing_subscriber::layer::Context<'_, S>,
    ) -> bool {
        if !meta.is_event() || !third_party(meta.target()) {
            return true;
        }
        let kind = format!("{}:{}", meta.target(), meta.line().unwrap_or(0));
        matches!(THEIRS.check(&kind, Instant::now()), Verdict::Log { .. })
    }

    fn callsite_enabled(
        &self,
        _meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Decided per event: log records (russh uses `log`) share callsites.
        tracing::subscriber::Interest::sometimes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_one_kind_logs_a_burst_then_one_count_per_interval() {
        let l = Limiter::new(Duration::from_secs(10), 3);
        let t0 = Instant::now();
        let mut logged = 0;
        for i in 0..2000u64 {
            let now = t0 + Duration::from_millis(i); // 2 s of flood
            if let Verdict::Log { .. } = l.check("refused", now) {
                logged += 1;
            }
        }
        assert_eq!(logged, 3);
        assert!(l.take_suppressed(t0 + Duration::from_secs(5)).is_empty());
        assert_eq!(
            l.take_suppressed(t0 + Duration::from_secs(11)),
            vec![("refused".to_string(), 1997)]
        );
        // Another kind has its own budget.
        assert_eq!(l.check("auth", t0), Verdict::Log { suppressed: 0 });
    }

    #[test]
    fn the_next_window_first_says_how_many_were_left_out() {
        let l = Limiter::new(Duration::from_secs(10), 1);
        let t0 = Instant::now();
        assert_eq!(l.check("k", t0), Verdict::Log { suppressed: 0 });
        assert_eq!(l.check("k", t0), Verdict::Drop);
        assert_eq!(l.check("k", t0), Verdict::Drop);
        assert_eq!(
            l.check("k", t0 + Duration::from_secs(10)),
            Verdict::Log { suppressed: 2 }
        );
    }
}
