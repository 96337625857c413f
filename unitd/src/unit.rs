//! The unit: the one live model every front-end reads and asks things of.
//!
//! It owns the store, the keys, the drives and jobs, and an event log, and
//! publishes [`Snapshot`]s on a watch channel. The dashboard redraws from
//! those snapshots; the exec commands render them as text or JSON. A change
//! marks the model dirty; a publisher task coalesces changes into at most a
//! few snapshots a second, so a busy upload cannot flood the dashboards.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use copyunit_model::{Event, EventKind, Request, Snapshot, UnitInfo};
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::ssh::auth::Keys;
use crate::store::Store;

/// Events kept for the log pane and `events`.
const EVENT_LOG: usize = 200;
/// Fastest republish rate while something changes.
const PUBLISH_EVERY: Duration = Duration::from_millis(200);

pub struct Unit {
    pub config: Config,
    pub store: Store,
    pub keys: Keys,
    pub host_fingerprint: String,
    started: Instant,
    events: Mutex<VecDeque<Event>>,
    dirty: AtomicBool,
    wake: Notify,
    tx: watch::Sender<Arc<Snapshot>>,
}

impl Unit {
    pub fn new(config: Config, store: Store, keys: Keys, host_fingerprint: String) -> Arc<Unit> {
        let (tx, _) = watch::channel(Arc::new(Snapshot::default()));
        let unit = Arc::new(Unit {
            config,
            store,
            keys,
            host_fingerprint,
            started: Instant::now(),
            events: Mutex::new(VecDeque::new()),
            dirty: AtomicBool::new(true),
            wake: Notify::new(),
            tx,
        });
        unit.tx.send_replace(Arc::new(unit.build_snapshot()));
        unit
    }

    /// Starts the task that republishes snapshots after changes.
    pub fn spawn_publisher(self: &Arc<Self>) {
        let u = self.clone();
        tokio::spawn(async move {
            loop {
                // Uploads and jobs move without telling us: poll while any run.
                let busy = !u.store.uploads().is_empty();
                if !busy && !u.dirty.load(Ordering::Relaxed) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), u.wake.notified()).await;
                }
                tokio::time::sleep(PUBLISH_EVERY).await;
                u.dirty.store(false, Ordering::Relaxed);
                let snap = Arc::new(u.build_snapshot());
                u.tx.send_if_modified(|old| {
                    if **old == *snap {
                        false
                    } else {
                        *old = snap.clone();
                        true
                    }
                });
            }
        });
    }

    /// Something changed: republish soon.
    pub fn changed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }

    /// Records an event for the log pane and wakes the dashboards.
    pub fn event(&self, kind: EventKind, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(?kind, "{message}");
        let mut log = self.events.lock().unwrap_or_else(|p| p.into_inner());
        log.push_back(Event {
            at: now(),
            kind,
            message,
        });
        while log.len() > EVENT_LOG {
            log.pop_front();
        }
        drop(log);
        self.changed();
    }

    /// Carries out what a user asked for, from any front-end. The answer is
    /// a sentence for the user: what was done, or why not.
    pub async fn request(&self, req: Request) -> Result<String, String> {
        match req {
            Request::RemoveImage { name } => {
                let name = crate::store::ImageName::new(&name).map_err(|e| e.to_string())?;
                self.store.remove(&name).map_err(|e| e.to_string())?;
                self.event(EventKind::ImageRemoved, format!("image {name} removed"));
                Ok(format!("removed {name}"))
            }
            Request::Copy { .. }
            | Request::Cancel { .. }
            | Request::Wipe { .. }
            | Request::Read { .. } => Err("this unit has no drive support yet".into()),
        }
    }

    /// The latest published snapshot (cheap).
    pub fn latest(&self) -> Arc<Snapshot> {
        self.tx.borrow().clone()
    }

    /// A snapshot built now (what commands print, so they are never stale).
    pub fn snapshot(&self) -> Snapshot {
        self.build_snapshot()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    pub fn info(&self) -> UnitInfo {
        UnitInfo {
            name: self.config.name.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            addresses: addresses(),
            port: self.config.listen.port(),
            host_key_fingerprint: self.host_fingerprint.clone(),
            store: self.store.usage(),
            uptime_secs: self.started.elapsed().as_secs(),
            pairing: self.keys.pairing(),
        }
    }

    fn build_snapshot(&self) -> Snapshot {
        Snapshot {
            unit: self.info(),
            drives: Vec::new(),
            images: self.store.catalog(),
            uploads: self.store.uploads(),
            jobs: Vec::new(),
            events: self
                .events
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }
}

/// Unix seconds now.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The unit's IP addresses an admin could reach, loopback last.
pub fn addresses() -> Vec<String> {
    let Ok(ifaddrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    let mut out: Vec<(bool, String)> = Vec::new();
    for ifa in ifaddrs {
        let Some(addr) = ifa.address else { continue };
        let ip = if let Some(v4) = addr.as_sockaddr_in() {
            std::net::IpAddr::V4(v4.ip())
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            let ip = v6.ip();
            // Link-local v6 needs a zone to be usable: not worth showing.
            if (ip.segments()[0] & 0xffc0) == 0xfe80 {
                continue;
            }
            std::net::IpAddr::V6(ip)
        } else {
            continue;
        };
        let s = ip.to_string();
        if !out.iter().any(|(_, x)| *x == s) {
            out.push((ip.is_loopback(), s));
        }
    }
    out.sort_by_key(|(lo, _)| *lo);
    out.into_iter().map(|(_, s)| s).collect()
}
