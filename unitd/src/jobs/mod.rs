//! Copy, wipe and read jobs: validated here, run on threads by the drives
//! crate, recorded in the history, announced as events.
//!
//! A job's progress reaches the front-ends only through the unit's
//! snapshots: the worker thread updates the job row here and marks the unit
//! changed. A job is `Done` only when every target was written and (unless
//! turned off) read back equal: that is the acknowledgement.

pub mod history;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use copyunit_drives::{CancelToken, CopyPlan, DiscoverOptions, Released, TargetUpdate};
use copyunit_model::{
    Drive, DriveRole, Duplicator, EventKind, Image, ImageState, Job, JobId, JobKind, JobState,
    JobTarget, Phase,
};

use crate::store::ImageName;
use crate::unit::{Unit, now};
use history::History;

#[derive(Default)]
struct State {
    jobs: Vec<Job>,
    cancels: HashMap<JobId, CancelToken>,
    /// Drives running jobs read from, besides the ones they write.
    reading: HashMap<JobId, String>,
    next_id: JobId,
}

pub struct Jobs {
    state: Mutex<State>,
    history: History,
}

impl Jobs {
    pub fn load(store_root: &std::path::Path) -> Jobs {
        let history = History::new(store_root);
        let (jobs, next_id) = history.load();
        let jobs_ = Jobs {
            state: Mutex::new(State {
                jobs,
                cancels: HashMap::new(),
                reading: HashMap::new(),
                next_id,
            }),
            history,
        };
        jobs_.save();
        jobs_
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn list(&self) -> Vec<Job> {
        self.lock().jobs.clone()
    }

    pub fn get(&self, id: JobId) -> Option<Job> {
        self.lock().jobs.iter().find(|j| j.id == id).cloned()
    }

    /// Drives in use by running jobs, with the job id.
    pub fn busy(&self) -> HashMap<String, JobId> {
        let st = self.lock();
        st.jobs
            .iter()
            .filter(|j| j.state == JobState::Running)
            .flat_map(|j| j.targets.iter().map(move |t| (t.drive.clone(), j.id)))
            // A drive a job reads (a disc copied to other discs) is as busy
            // as one it writes.
            .chain(st.reading.iter().map(|(id, d)| (d.clone(), *id)))
            .collect()
    }

    pub fn any_running(&self) -> bool {
        self.lock()
            .jobs
            .iter()
            .any(|j| j.state == JobState::Running)
    }

    fn save(&self) {
        let st = self.lock();
        self.history.save(&st.jobs, st.next_id);
    }

    /// Records a running job; `reads` is a drive it reads from (a source
    /// disc), busy until the job ends like the drives it writes.
    fn add(
        &self,
        kind: JobKind,
        source: &str,
        verify: bool,
        drives: &[Drive],
        total: Option<u64>,
        reads: Option<&Drive>,
    ) -> (JobId, CancelToken) {
        let mut st = self.lock();
        let id = st.next_id;
        st.next_id += 1;
        if let Some(d) = reads {
            st.reading.insert(id, d.name.clone());
        }
        st.jobs.push(Job {
            id,
            kind,
            source: source.to_string(),
            verify,
            state: JobState::Running,
            created: now(),
            finished: None,
            targets: drives
                .iter()
                .map(|d| JobTarget {
                    drive: d.name.clone(),
                    phase: Phase::Prepare,
                    bytes_total: total,
                    ..JobTarget::default()
                })
                .collect(),
            error: None,
        });
        let cancel = CancelToken::new();
        st.cancels.insert(id, cancel.clone());
        drop(st);
        self.save();
        (id, cancel)
    }

    fn update(&self, id: JobId, f: impl FnOnce(&mut Job)) {
        if let Some(job) = self.lock().jobs.iter_mut().find(|j| j.id == id) {
            f(job);
        }
    }

    /// Ends a job: state from its targets, history saved.
    fn finish(&self, id: JobId, error: Option<String>) -> Option<Job> {
        let mut st = self.lock();
        st.cancels.remove(&id);
        st.reading.remove(&id);
        let job = st.jobs.iter_mut().find(|j| j.id == id)?;
        job.finished = Some(now());
        job.error = error;
        job.state = if job.targets.iter().all(|t| t.phase == Phase::Done) && job.error.is_none() {
            JobState::Done
        } else if job.targets.iter().any(|t| t.phase == Phase::Cancelled) {
            JobState::Cancelled
        } else {
            JobState::Failed
        };
        let job = job.clone();
        drop(st);
        self.save();
        Some(job)
    }

    pub fn cancel(&self, id: JobId) -> Result<(), String> {
        let st = self.lock();
        match st.cancels.get(&id) {
            Some(c) => {
                c.cancel();
                Ok(())
            }
            None if st.jobs.iter().any(|j| j.id == id) => {
                Err(format!("job {id} has already finished"))
            }
            None => Err(format!("no job {id}")),
        }
    }
}

/// The safety options for every drive operation on this unit.
pub fn discover_options(unit: &Unit) -> DiscoverOptions {
    DiscoverOptions {
        allow_loop_devices: unit.config.allow_loop_devices,
        loop_devices_under: unit.config.loop_devices_under.clone(),
        store_path: Some(unit.config.store.clone()),
        skip_fs_probe: false,
    }
}

/// Refuses a drive another job is using.
fn ensure_free(busy: &HashMap<String, JobId>, d: &Drive) -> Result<(), String> {
    match busy.get(&d.name) {
        Some(job) => Err(format!("drive {} is busy with job {job}", d.name)),
        None => Ok(()),
    }
}

/// An optical drive by name, as last probed.
fn optical_drive(unit: &Unit, name: &str) -> Option<Drive> {
    let drives = unit.drives_now();
    copyunit_drives::find(&drives, name)
        .filter(|d| crate::optical::is_optical(d))
        .cloned()
}

/// Resolves target names (`all` = every eligible drive that is not a disc
/// burner) to drives that may be written now and are not in another job.
/// Burners come last, as the writer reports them.
fn resolve_targets(unit: &Unit, names: &[String]) -> Result<Vec<Drive>, String> {
    let opts = discover_options(unit);
    let busy = unit.jobs.busy();
    let mut out: Vec<Drive> = Vec::new();
    if names.iter().any(|n| n == "all") {
        let all: Vec<Drive> = copyunit_drives::discover(&opts)
            .into_iter()
            .filter(|d| d.eligible && d.role == DriveRole::Target && !busy.contains_key(&d.name))
            .collect();
        if all.is_empty() {
            return Err("no eligible drive to write (insert one, or see `drives`)".into());
        }
        return Ok(all);
    }
    if names.is_empty() {
        return Err("name at least one drive (or `all`)".into());
    }
    for name in names {
        let d = match optical_drive(unit, name) {
            Some(d) if d.eligible => d,
            Some(d) => {
                let why = d.reason.as_deref().unwrap_or("not writable now");
                return Err(format!("drive {}: {why}: refusing to write", d.name));
            }
            None => copyunit_drives::check_target(name, &opts).map_err(|e| e.to_string())?,
        };
        ensure_free(&busy, &d)?;
        if !out.iter().any(|o| o.name == d.name) {
            out.push(d);
        }
    }
    out.sort_by_key(crate::optical::is_optical);
    Ok(out)
}

/// Starts writing `image` to `targets`; returns the job id at once.
pub fn start_copy(
    unit: &Arc<Unit>,
    image: &str,
    targets: &[String],
    verify: bool,
) -> Result<JobId, String> {
    start_copy_with(unit, image, targets, verify, false)
}

/// Duplicator mode: one job per inserted drive; a drive that already holds
/// the image is reported done without writing; a finished drive is flushed,
/// powered off and shown as "done - remove".
pub fn start_auto(unit: &Arc<Unit>, dup: &Duplicator, drive: &str) -> Result<JobId, String> {
    start_copy_with(unit, &dup.image, &[drive.to_string()], dup.verify, true)
}

/// What a copy reads: a stored image, or the disc in an optical drive.
enum Source {
    Image { path: std::path::PathBuf },
    Disc(Box<Drive>),
}

/// A copy's source and what is known of its content before reading it:
/// `(source, content bytes, content SHA-256, bmap)`.
type Resolved = (
    Source,
    Option<u64>,
    Option<String>,
    Option<std::path::PathBuf>,
);

/// The image `image` if it may be copied: in the store and not flagged
/// corrupt. The one check behind a copy and the duplicator.
pub fn copyable_image(unit: &Unit, image: &str) -> Result<(ImageName, Image), String> {
    let name = ImageName::new(image).map_err(|e| e.to_string())?;
    let img = unit
        .store
        .image(name.as_str())
        .ok_or_else(|| format!("no image named {image} in the store (see `images`)"))?;
    if let ImageState::Corrupt(why) = &img.state {
        return Err(format!(
            "image {image} is flagged corrupt ({why}): refusing to copy it"
        ));
    }
    Ok((name, img))
}

fn resolve_source(unit: &Unit, image: &str) -> Result<Resolved, String> {
    let stored = ImageName::new(image)
        .ok()
        .is_some_and(|n| unit.store.image(n.as_str()).is_some());
    // Not an image: the disc in an optical drive (disc-to-disc copies).
    if !stored && let Some(d) = optical_drive(unit, image) {
        ensure_free(&unit.jobs.busy(), &d)?;
        if d.media.is_none() || d.size == 0 {
            return Err(format!("no readable disc in {}", d.name));
        }
        let size = d.size;
        return Ok((Source::Disc(Box::new(d)), Some(size), None, None));
    }
    let (name, img) = copyable_image(unit, image)?;
    let path = unit.store.path_of(&name);
    // The store records the decoded size when an image is published; only
    // one whose decode is still pending is looked at here.
    let content = match img.content_size {
        Some(size) => Some(size),
        None => {
            let info = copyunit_drives::inspect(&path).map_err(|e| e.to_string())?;
            info.content_size
                .or((!info.format.is_compressed()).then_some(info.file_size))
        }
    };
    let sha = (!img.format.is_compressed()).then(|| img.sha256.clone());
    Ok((
        Source::Image { path },
        content,
        sha,
        unit.store.bmap_for(image),
    ))
}

/// Refuses before a byte is written: a target smaller than the content, a
/// disc without room, a burner with no size to plan the burn by.
fn check_room(image: &str, content: Option<u64>, drives: &[Drive]) -> Result<(), String> {
    use copyunit_model::format::bytes;
    for d in drives {
        match (crate::optical::is_optical(d), content) {
            (true, None) => {
                return Err(format!(
                    "image {image} is compressed without a recorded size, and burner {} needs the \
                     size before it starts: upload it uncompressed",
                    d.name
                ));
            }
            (true, Some(need)) => {
                let free = d.media.as_ref().map_or(0, |m| m.free_bytes);
                if free < need {
                    return Err(format!(
                        "{image} needs {} but the disc in {} has only {} free: refusing to burn",
                        bytes(need),
                        d.name,
                        bytes(free)
                    ));
                }
            }
            (false, Some(need)) if d.size < need => {
                return Err(format!(
                    "image {image} needs {} but drive {} holds only {}: refusing to write",
                    bytes(need),
                    d.name,
                    bytes(d.size)
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

fn start_copy_with(
    unit: &Arc<Unit>,
    image: &str,
    targets: &[String],
    verify: bool,
    auto: bool,
) -> Result<JobId, String> {
    let (source, content, sha256, bmap) = resolve_source(unit, image)?;
    let drives = resolve_targets(unit, targets)?;
    if let Source::Disc(src) = &source
        && drives.iter().any(|d| d.name == src.name)
    {
        return Err(format!(
            "{} is the source of this copy: it cannot be a target too",
            src.name
        ));
    }
    check_room(image, content, &drives)?;
    let (burners, blocks): (Vec<Drive>, Vec<Drive>) =
        drives.iter().cloned().partition(crate::optical::is_optical);
    let path = match &source {
        Source::Image { path, .. } => path.clone(),
        Source::Disc(d) => std::path::PathBuf::from(&d.path),
    };
    let mut plan = CopyPlan::new(&path, blocks.iter().map(|d| d.name.clone()).collect());
    plan.verify = verify;
    plan.discover = discover_options(unit);
    // A disc needs the whole image: no bmap when burning.
    plan.bmap = bmap.filter(|_| burners.is_empty());
    if let Some(sha) = &sha256 {
        plan.content_sha256 = Some(sha.clone());
        if auto && let Some(len) = content {
            plan.skip_if_holds = Some((len, sha.clone()));
        }
    }
    let streams = burners
        .iter()
        .map(|d| unit.optical.burner(d))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = if blocks.is_empty() {
        JobKind::Burn
    } else {
        JobKind::Copy
    };
    let reads = match &source {
        Source::Disc(d) => Some(&**d),
        Source::Image { .. } => None,
    };
    let (id, cancel) = unit.jobs.add(kind, image, verify, &drives, content, reads);
    let list: Vec<String> = drives.iter().map(|d| d.name.clone()).collect();
    unit.event(
        EventKind::JobStarted,
        format!(
            "job {id}: {} {image} to {}",
            if kind == JobKind::Burn {
                "burning"
            } else {
                "writing"
            },
            list.join(", ")
        ),
    );
    let u = unit.clone();
    spawn(format!("job {id}"), move || {
        let progress = |up: TargetUpdate| {
            u.jobs.update(id, |job| {
                if let Some(t) = job.targets.get_mut(up.index) {
                    up.progress.apply(t);
                }
            });
            u.changed();
        };
        let reader = match &source {
            Source::Image { path, .. } => copyunit_drives::ImageReader::open(path),
            Source::Disc(d) => u
                .optical
                .disc_source(d)
                .map_err(copyunit_drives::Error::Source),
        };
        let report = copyunit_drives::copy_from(&plan, reader, streams, &cancel, &progress);
        u.jobs.update(id, |job| {
            for (t, r) in job.targets.iter_mut().zip(&report.targets) {
                t.phase = r.phase;
                t.error = r.error.clone();
                t.skipped = r.skipped;
                if r.phase == Phase::Done {
                    t.bytes_done = t.bytes_total.unwrap_or(r.bytes_written).max(t.bytes_done);
                }
            }
        });
        if !burners.is_empty() {
            // The discs changed (burned, ejected): show them as they are
            // now before acknowledging.
            u.optical.refresh(&burners.iter().collect::<Vec<_>>());
            u.rescan_drives();
        }
        announce(&u, id, report.source_error.clone());
        if auto {
            for r in report.targets.iter().filter(|r| r.phase == Phase::Done) {
                // As it was before it is let go: a powered-off stick leaves
                // the kernel's list but keeps its row until pulled.
                let Some(drive) = u.drive(&r.drive) else {
                    continue;
                };
                let detached = match copyunit_drives::power_off(&r.drive, &plan.discover) {
                    Ok(how) => {
                        let what = match how {
                            Released::PoweredOff => "flushed and powered off",
                            Released::Detached => "flushed and detached",
                            Released::Flushed => "flushed",
                        };
                        u.event(
                            EventKind::Info,
                            format!("duplicator: {} {what}: done - remove", r.drive),
                        );
                        how != Released::Flushed
                    }
                    Err(e) => {
                        u.event(
                            EventKind::Warning,
                            format!("duplicator: {} written but not released: {e}", r.drive),
                        );
                        false
                    }
                };
                u.mark_done_remove(drive, detached);
            }
        }
    });
    Ok(id)
}

/// Starts erasing a drive's partition tables and signatures (or all of it);
/// for a rewritable disc, blanking or formatting it.
pub fn start_wipe(unit: &Arc<Unit>, drive: &str, full: bool) -> Result<JobId, String> {
    let d = match optical_drive(unit, drive) {
        Some(d) => {
            ensure_free(&unit.jobs.busy(), &d)?;
            match &d.media {
                None => return Err(format!("no disc in {}", d.name)),
                Some(m) if !m.erasable => {
                    return Err(format!(
                        "the {} in {} cannot be erased (not a rewritable disc)",
                        m.media_type, d.name
                    ));
                }
                Some(_) => d,
            }
        }
        None => resolve_targets(unit, &[drive.to_string()])?.remove(0),
    };
    let (id, cancel) = unit.jobs.add(
        JobKind::Wipe,
        if full { "wipe --full" } else { "wipe" },
        false,
        std::slice::from_ref(&d),
        None,
        None,
    );
    unit.event(
        EventKind::JobStarted,
        format!("job {id}: wiping {}", d.name),
    );
    let u = unit.clone();
    let opts = discover_options(unit);
    spawn(format!("job {id}"), move || {
        let progress = |p: copyunit_drives::Progress| {
            u.jobs.update(id, |job| p.apply(&mut job.targets[0]));
            u.changed();
        };
        let r = if crate::optical::is_optical(&d) {
            let r = u.optical.erase(&d, full, &cancel, &progress);
            u.optical.refresh(&[&d]);
            u.rescan_drives();
            r
        } else {
            copyunit_drives::wipe(&d.name, full, &opts, &cancel, &progress)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        settle_single(&u, id, r, &cancel);
    });
    Ok(id)
}

/// Starts reading a drive into a new image `name` in the store.
pub fn start_read(unit: &Arc<Unit>, drive: &str, name: &str) -> Result<JobId, String> {
    let image = ImageName::new(name).map_err(|e| e.to_string())?;
    if unit.store.stat(&image).is_some() {
        return Err(format!(
            "{name} already exists in the store: choose another name or rm it first"
        ));
    }
    let opts = discover_options(unit);
    let d = match optical_drive(unit, drive) {
        Some(d) => d,
        None => copyunit_drives::find(&copyunit_drives::discover(&opts), drive)
            .ok_or_else(|| format!("no drive named {drive}"))?
            .clone(),
    };
    ensure_free(&unit.jobs.busy(), &d)?;
    let free = unit.store.usage().free_bytes;
    if d.size > free {
        return Err(format!(
            "drive {} holds {} but the store has only {} free",
            d.name,
            copyunit_model::format::bytes(d.size),
            copyunit_model::format::bytes(free)
        ));
    }
    let (id, cancel) = unit.jobs.add(
        JobKind::Read,
        &d.name,
        false,
        std::slice::from_ref(&d),
        Some(d.size),
        None,
    );
    unit.event(
        EventKind::JobStarted,
        format!("job {id}: reading {} into {name}", d.name),
    );
    let u = unit.clone();
    spawn(format!("job {id}"), move || {
        let progress = |p: copyunit_drives::Progress| {
            u.jobs.update(id, |job| p.apply(&mut job.targets[0]));
            u.changed();
        };
        let tmp = u.store.scratch_path(&image);
        let read = if crate::optical::is_optical(&d) {
            // A disc: MMC READ with retries; unreadable sectors are named.
            u.optical
                .rip(&d, &tmp, &cancel, &|t: JobTarget| {
                    u.jobs.update(id, |job| {
                        let row = &mut job.targets[0];
                        let drive = std::mem::take(&mut row.drive);
                        *row = JobTarget { drive, ..t };
                    });
                    u.changed();
                })
                .map(|(_, sha)| sha)
        } else {
            copyunit_drives::read_drive(&d.name, &tmp, &opts, &cancel, &progress)
                .map(|rep| rep.sha256)
                .map_err(|e| e.to_string())
        };
        let r = read.and_then(|sha256| {
            u.store
                .adopt(&image, &tmp, sha256)
                .map_err(|e| e.to_string())
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        settle_single(&u, id, r.map(|_| ()), &cancel);
    });
    Ok(id)
}

/// Opens (or with `load`, closes) a disc drive's tray; flushes a USB
/// drive and powers its port off, so it can be pulled.
pub fn eject(unit: &Arc<Unit>, drive: &str, load: bool) -> Result<String, String> {
    if let Some(d) = optical_drive(unit, drive) {
        ensure_free(&unit.jobs.busy(), &d)?;
        unit.optical.eject(&d, load)?;
        unit.optical.refresh(&[&d]);
        unit.rescan_drives();
        return Ok(if load {
            format!("{}: tray closed", d.name)
        } else {
            format!("{}: tray open", d.name)
        });
    }
    if load {
        return Err(format!("{drive}: --load is for disc drives"));
    }
    let opts = discover_options(unit);
    let d = copyunit_drives::check_target(drive, &opts).map_err(|e| e.to_string())?;
    ensure_free(&unit.jobs.busy(), &d)?;
    let how = copyunit_drives::power_off(&d.name, &opts).map_err(|e| e.to_string())?;
    unit.rescan_drives();
    Ok(match how {
        copyunit_drives::Released::PoweredOff => {
            format!("{}: flushed and powered off: remove it", d.name)
        }
        copyunit_drives::Released::Detached => {
            format!("{}: flushed and detached: remove it", d.name)
        }
        copyunit_drives::Released::Flushed => {
            format!(
                "{}: flushed (this kind of drive cannot be powered off)",
                d.name
            )
        }
    })
}

fn settle_single<E: ToString>(u: &Arc<Unit>, id: JobId, r: Result<(), E>, cancel: &CancelToken) {
    u.jobs.update(id, |job| {
        let t = &mut job.targets[0];
        match &r {
            Ok(()) => {
                t.phase = Phase::Done;
                if let Some(total) = t.bytes_total {
                    t.bytes_done = total;
                }
            }
            Err(_) if cancel.is_cancelled() => t.phase = Phase::Cancelled,
            Err(e) => {
                t.phase = Phase::Failed;
                t.error = Some(e.to_string());
            }
        }
    });
    announce(u, id, None);
}

/// Ends a job and tells everyone: the acknowledgement (patent step 38).
fn announce(u: &Arc<Unit>, id: JobId, error: Option<String>) {
    let Some(job) = u.jobs.finish(id, error) else {
        return;
    };
    let what = match job.kind {
        JobKind::Copy => format!("{} to {}", job.source, names(&job)),
        JobKind::Wipe => format!("wipe of {}", names(&job)),
        JobKind::Read => format!("read of {}", names(&job)),
        JobKind::Burn => format!("burn of {} to {}", job.source, names(&job)),
    };
    let skipped: Vec<&str> = job
        .targets
        .iter()
        .filter(|t| t.skipped)
        .map(|t| t.drive.as_str())
        .collect();
    let held = if skipped.is_empty() {
        String::new()
    } else {
        format!(" ({} already held it: not written)", skipped.join(", "))
    };
    match job.state {
        JobState::Done => u.event(
            EventKind::JobDone,
            format!(
                "job {id} done: {what}{}{held}",
                if job.verify { ", verified" } else { "" }
            ),
        ),
        JobState::Cancelled => u.event(EventKind::JobFailed, format!("job {id} cancelled: {what}")),
        _ => {
            let failed: Vec<String> = job
                .targets
                .iter()
                .filter(|t| t.phase != Phase::Done)
                .map(|t| format!("{}: {}", t.drive, t.error.as_deref().unwrap_or("failed")))
                .collect();
            u.event(
                EventKind::JobFailed,
                format!("job {id} failed: {what} ({})", failed.join("; ")),
            );
        }
    }
    if job.kind == JobKind::Read {
        u.changed();
    }
}

fn names(job: &Job) -> String {
    job.targets
        .iter()
        .map(|t| t.drive.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn spawn(name: String, f: impl FnOnce() + Send + 'static) {
    if let Err(e) = std::thread::Builder::new().name(name).spawn(f) {
        tracing::error!("cannot start a job thread: {e}");
    }
}
