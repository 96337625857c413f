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

use copyunit_model::{
    Drive, DriveRole, Duplicator, Event, EventKind, JobId, Request, Snapshot, UnitInfo,
};
use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::jobs::{self, Jobs};
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
    pub jobs: Jobs,
    drives: Mutex<Vec<Drive>>,
    /// Duplicator mode: write this image to every drive inserted.
    duplicator: Mutex<Option<Duplicator>>,
    /// Held for a whole rescan, so two rescans (the watcher's, a command's)
    /// cannot interleave and report one drive arriving twice.
    scan: Mutex<()>,
    /// Drives finished in duplicator mode, waiting to be pulled.
    done_remove: Mutex<Vec<Finished>>,
    pub optical: crate::optical::Optical,
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
        let jobs = Jobs::load(&config.store);
        let unit = Arc::new(Unit {
            store,
            keys,
            jobs,
            drives: Mutex::new(Vec::new()),
            duplicator: Mutex::new(None),
            scan: Mutex::new(()),
            done_remove: Mutex::new(Vec::new()),
            optical: crate::optical::Optical::new(
                &config.simulate_optical,
                config.eject_after_burn,
            )
            .unwrap_or_else(|e| {
                tracing::error!("{e}");
                crate::optical::Optical::none()
            }),
            config,
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
                let busy = !u.store.uploads().is_empty() || u.jobs.any_running();
                if !busy && !u.dirty.load(Ordering::Relaxed) {
                    let _ = tokio::time::timeout(Duration::from_secs(1), u.wake.notified()).await;
                }
                tokio::time::sleep(PUBLISH_EVERY).await;
                for notice in u.store.take_notices() {
                    u.event(EventKind::Warning, notice);
                }
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
    ///
    /// The work runs on a blocking thread: it reads sysfs, probes drives,
    /// inspects images and fsyncs the store and the job history, and one
    /// dying stick or slow store must not freeze every SSH session.
    pub async fn request(self: &Arc<Self>, req: Request) -> Result<Answer, String> {
        let u = self.clone();
        tokio::task::spawn_blocking(move || u.request_blocking(req))
            .await
            .unwrap_or_else(|e| Err(format!("internal error: the request failed ({e})")))
    }

    /// [`Unit::request`], on the calling thread (which may block).
    pub fn request_blocking(self: &Arc<Self>, req: Request) -> Result<Answer, String> {
        match req {
            Request::RemoveImage { name } => {
                let name = crate::store::ImageName::new(&name).map_err(|e| e.to_string())?;
                self.store.remove(&name).map_err(|e| e.to_string())?;
                self.event(EventKind::ImageRemoved, format!("image {name} removed"));
                Ok(Answer::said(format!("removed {name}")))
            }
            Request::Copy {
                image,
                targets,
                verify,
            } => {
                let id = jobs::start_copy(self, &image, &targets, verify)?;
                Ok(Answer::job(
                    id,
                    format!("job {id} started: writing {image}"),
                ))
            }
            Request::Cancel { job } => {
                self.jobs.cancel(job)?;
                Ok(Answer::said(format!("cancelling job {job}")))
            }
            Request::Wipe { drive, full } => {
                let id = jobs::start_wipe(self, &drive, full)?;
                Ok(Answer::job(id, format!("job {id} started: wiping {drive}")))
            }
            Request::Read { drive, name } => {
                let id = jobs::start_read(self, &drive, &name)?;
                Ok(Answer::job(
                    id,
                    format!("job {id} started: reading {drive} into {name}"),
                ))
            }
            Request::StartDuplicator { image, verify } => {
                jobs::copyable_image(self, &image)?;
                self.set_duplicator(Some(Duplicator {
                    image: image.clone(),
                    verify,
                    since: now(),
                }));
                Ok(Answer::said(format!(
                    "duplicator on: every drive inserted from now on gets {image} (verify {})",
                    if verify { "on" } else { "off" }
                )))
            }
            Request::StopDuplicator => Ok(Answer::said(if self.set_duplicator(None).is_some() {
                "duplicator off".to_string()
            } else {
                "duplicator was not on".to_string()
            })),
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
            pairing_code: None,
            duplicator: self.duplicator(),
        }
    }

    fn build_snapshot(&self) -> Snapshot {
        Snapshot {
            unit: self.info(),
            drives: self.drives_now(),
            images: self.store.catalog(),
            uploads: self.store.uploads(),
            partials: self.store.partials(),
            jobs: self.jobs.list(),
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

/// What the unit did for a request: a sentence for the user and, when it
/// started one, the job to follow.
#[derive(Debug, Clone)]
pub struct Answer {
    pub message: String,
    pub job: Option<JobId>,
}

impl Answer {
    fn said(message: String) -> Answer {
        Answer { message, job: None }
    }

    fn job(id: JobId, message: String) -> Answer {
        Answer {
            message,
            job: Some(id),
        }
    }
}

impl Unit {
    /// The drives as last discovered, with the jobs using them and the
    /// duplicator's finished drives (see [`with_finished`]).
    pub fn drives_now(&self) -> Vec<Drive> {
        let busy = self.jobs.busy();
        let mut drives = self
            .drives
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for d in &mut drives {
            d.job = busy.get(&d.name).copied();
        }
        with_finished(
            drives,
            &self.done_remove.lock().unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The drive `name` as last discovered.
    pub fn drive(&self, name: &str) -> Option<Drive> {
        self.drives
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|d| d.name == name)
            .cloned()
    }

    /// Discovers the drives again now; reports arrivals and departures.
    pub fn rescan_drives(self: &Arc<Self>) {
        let _scan = self.scan.lock().unwrap_or_else(|p| p.into_inner());
        let mut fresh = copyunit_drives::discover(&jobs::discover_options(self));
        self.optical.enrich(&mut fresh, &self.jobs.busy());
        let old = std::mem::replace(
            &mut *self.drives.lock().unwrap_or_else(|p| p.into_inner()),
            fresh.clone(),
        );
        let mut changed = old != fresh;
        for d in fresh.iter().filter(|d| {
            !old.iter()
                .any(|o| o.name == d.name && o.diskseq == d.diskseq)
        }) {
            let what = d
                .model
                .clone()
                .unwrap_or_else(|| format!("{:?}", d.kind).to_lowercase());
            self.event(
                EventKind::DriveAdded,
                format!(
                    "drive {} added: {what}, {}",
                    d.name,
                    copyunit_model::format::bytes(d.size)
                ),
            );
            self.on_arrival(d);
        }
        let mut finished = self.done_remove.lock().unwrap_or_else(|p| p.into_inner());
        for d in old.iter().filter(|o| {
            !fresh
                .iter()
                .any(|d| d.name == o.name && d.diskseq == o.diskseq)
        }) {
            // One the duplicator let go of is still in its port: no news.
            if !finished.iter().any(|f| f.detached && f.is(d)) {
                self.event(EventKind::DriveRemoved, format!("drive {} removed", d.name));
            }
        }
        let before = finished.len();
        finished.retain(|f| f.waits(&fresh));
        changed |= finished.len() != before;
        drop(finished);
        if changed {
            self.changed();
        }
    }

    /// Watches for drives arriving, leaving and changing media: kernel
    /// uevents when available, and a slow rescan as a safety net.
    pub fn spawn_drive_watcher(self: &Arc<Self>) {
        let _ = copyunit_drives::set_media_poll_interval(2000);
        self.rescan_drives();
        let u = self.clone();
        let spawned = std::thread::Builder::new()
            .name("drives".into())
            .spawn(move || {
                let listener = match copyunit_drives::HotplugListener::open() {
                    Ok(l) => Some(l),
                    Err(e) => {
                        tracing::warn!("no uevents ({e}): rescanning drives every 2 s instead");
                        None
                    }
                };
                loop {
                    let event = match &listener {
                        Some(l) => l.next(std::time::Duration::from_secs(1)).ok().flatten(),
                        None => {
                            std::thread::sleep(std::time::Duration::from_secs(2));
                            None
                        }
                    };
                    if let Some(first) = event {
                        // Let a burst (a stick and its partitions) settle first.
                        std::thread::sleep(std::time::Duration::from_millis(150));
                        let mut events = vec![first];
                        if let Some(l) = &listener {
                            while let Ok(Some(e)) = l.next(std::time::Duration::from_millis(50)) {
                                events.push(e);
                            }
                        }
                        // A disc inserted or ejected: probe that drive now,
                        // not when its cached probe runs out.
                        let discs: Vec<String> = events
                            .into_iter()
                            .filter(|e| e.media_change)
                            .map(|e| e.name)
                            .collect();
                        u.optical.forget(&discs);
                    }
                    u.rescan_drives();
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot watch drives: {e}");
        }
    }

    /// Duplicator mode: turned on with an image, every drive inserted from
    /// then on is written (and verified). Only [`Unit::request`] calls this,
    /// after checking the image; returns what was on before.
    fn set_duplicator(&self, dup: Option<Duplicator>) -> Option<Duplicator> {
        let before = std::mem::replace(
            &mut *self.duplicator.lock().unwrap_or_else(|p| p.into_inner()),
            dup.clone(),
        );
        match (&dup, &before) {
            (Some(d), _) => self.event(
                EventKind::Info,
                format!(
                    "duplicator on: every drive inserted gets {} (verify {})",
                    d.image,
                    if d.verify { "on" } else { "off" }
                ),
            ),
            (None, Some(_)) => self.event(EventKind::Info, "duplicator off"),
            (None, None) => {}
        }
        before
    }

    /// Duplicator mode, if on.
    pub fn duplicator(&self) -> Option<Duplicator> {
        self.duplicator
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn on_arrival(self: &Arc<Self>, d: &Drive) {
        let Some(dup) = self.duplicator() else { return };
        if !d.eligible || d.role != DriveRole::Target || d.size == 0 {
            return;
        }
        match jobs::start_auto(self, &dup, &d.name) {
            Ok(id) => tracing::info!("duplicator: job {id} for {}", d.name),
            Err(e) => self.event(EventKind::Warning, format!("duplicator: {}: {e}", d.name)),
        }
    }

    /// Marks a drive finished in duplicator mode (until it is pulled):
    /// `drive` as discovered before it was let go, `detached` if the kernel
    /// no longer lists it (its USB port powered off, a SCSI delete).
    pub fn mark_done_remove(&self, drive: Drive, detached: bool) {
        let mut finished = self.done_remove.lock().unwrap_or_else(|p| p.into_inner());
        finished.retain(|f| f.drive.name != drive.name);
        finished.push(Finished { drive, detached });
        drop(finished);
        self.changed();
    }
}

/// A drive the duplicator finished, shown "done - remove" until pulled.
#[derive(Debug, Clone)]
struct Finished {
    /// As discovered before it was let go.
    drive: Drive,
    /// Gone from the kernel's list though still in its port: a rescan
    /// cannot see it pulled, only its port (or its name) taken again.
    detached: bool,
}

impl Finished {
    fn is(&self, d: &Drive) -> bool {
        d.name == self.drive.name && d.diskseq == self.drive.diskseq
    }

    /// Still waiting to be pulled, given the drives found now.
    fn waits(&self, now: &[Drive]) -> bool {
        if !self.detached {
            // Still listed until pulled (a loop, a card reader, an NVMe disk).
            return now.iter().any(|d| self.is(d));
        }
        // A new drive in its port, or under its name, means it was pulled.
        !now.iter().any(|d| {
            !self.is(d)
                && (d.name == self.drive.name || (d.slot.is_some() && d.slot == self.drive.slot))
        })
    }
}

/// The drives found now, with the duplicator's finished ones marked
/// `done_remove`; one it detached from the kernel is listed as it was (not
/// eligible), so its slot reads "done - remove" until it is pulled.
fn with_finished(mut drives: Vec<Drive>, finished: &[Finished]) -> Vec<Drive> {
    for d in &mut drives {
        d.done_remove = finished.iter().any(|f| f.is(d));
    }
    for f in finished {
        if f.detached && !drives.iter().any(|d| f.is(d)) {
            drives.push(Drive {
                done_remove: true,
                eligible: false,
                reason: Some("done - remove".into()),
                job: None,
                partitions: Vec::new(),
                ..f.drive.clone()
            });
        }
    }
    drives
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stick(name: &str, slot: &str, seq: u64) -> Drive {
        Drive {
            name: name.into(),
            slot: Some(slot.into()),
            diskseq: Some(seq),
            size: 8 << 30,
            eligible: true,
            ..Drive::default()
        }
    }

    fn rows(drives: &[Drive]) -> Vec<(String, bool, bool)> {
        drives
            .iter()
            .map(|d| (d.name.clone(), d.done_remove, d.eligible))
            .collect()
    }

    #[test]
    fn a_powered_off_stick_keeps_its_row_until_its_port_is_used_again() {
        let sdb = stick("sdb", "1-1", 7);
        let done = vec![Finished {
            drive: sdb.clone(),
            detached: true,
        }];
        // Still listed for a moment after the power-off: marked.
        let now = with_finished(vec![sdb.clone(), stick("sdc", "1-2", 8)], &done);
        assert_eq!(
            rows(&now),
            [("sdb".into(), true, true), ("sdc".into(), false, true)]
        );
        // Gone from the kernel: listed as it was, not writable.
        let now = with_finished(vec![stick("sdc", "1-2", 8)], &done);
        assert_eq!(
            rows(&now),
            [("sdc".into(), false, true), ("sdb".into(), true, false)]
        );
        assert_eq!(now[1].reason.as_deref(), Some("done - remove"));
        assert_eq!(now[1].slot.as_deref(), Some("1-1"));
        // The detach itself is not a pull; another port's arrival is not either.
        assert!(done[0].waits(&[]));
        assert!(done[0].waits(&[stick("sdd", "1-3", 9)]));
        // A new stick in its port (whatever its name), or under its name: pulled.
        assert!(!done[0].waits(&[stick("sdd", "1-1", 9)]));
        assert!(!done[0].waits(&[stick("sdb", "1-4", 9)]));
    }

    #[test]
    fn a_drive_that_stays_listed_is_done_until_it_leaves() {
        let mut l = stick("loop3", "-", 4);
        l.slot = None;
        let done = vec![Finished {
            drive: l.clone(),
            detached: false,
        }];
        assert_eq!(
            rows(&with_finished(vec![l.clone()], &done)),
            [("loop3".into(), true, true)]
        );
        assert!(done[0].waits(std::slice::from_ref(&l)));
        // Pulled: gone, and no row is kept for it.
        assert!(!done[0].waits(&[]));
        assert!(with_finished(Vec::new(), &done).is_empty());
        // The same name on new media (another diskseq) is a new drive.
        let mut again = l.clone();
        again.diskseq = Some(5);
        assert!(!done[0].waits(std::slice::from_ref(&again)));
        assert!(!with_finished(vec![again], &done)[0].done_remove);
    }
}
