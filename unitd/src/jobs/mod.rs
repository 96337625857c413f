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
    Drive, Duplicator, EventKind, Image, ImageState, Job, JobId, JobKind, JobState, JobTarget,
    Phase,
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
    /// Held while the history is written (with fsync), never together
    /// with `state` for longer than a clone: readers of the job list
    /// (`status`, every snapshot) do not wait for the disk.
    saving: Mutex<()>,
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
            saving: Mutex::new(()),
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

    /// Writes the history. The list is cloned under the lock and written
    /// after it is released; saves are serialised, each writing the list as
    /// it is when its turn comes, so the newest state is the last written.
    fn save(&self) {
        let _turn = self.saving.lock().unwrap_or_else(|p| p.into_inner());
        let (jobs, next_id) = {
            let st = self.lock();
            (st.jobs.clone(), st.next_id)
        };
        self.history.save(&jobs, next_id);
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
        let job = st
            .jobs
            .iter_mut()
            .find(|j| j.id == id && j.state == JobState::Running)?;
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
        history::bound(&mut st.jobs);
        drop(st);
        self.save();
        Some(job)
    }

    /// Ends a running job whose worker died (a panic): its unfinished
    /// drives fail with `why`, and it is finished as failed, so its drives
    /// are free again and `--wait` returns.
    fn fail_unfinished(&self, id: JobId, why: &str) -> Option<Job> {
        self.update(id, |job| {
            for t in job.targets.iter_mut().filter(|t| !t.phase.is_final()) {
                t.phase = Phase::Failed;
                t.error.get_or_insert_with(|| why.to_string());
            }
        });
        self.finish(id, Some(why.to_string()))
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

/// Resolves target names to drives that may be written now and are not in
/// another job. `all` is [`copyunit_model::targets::expand_copy_targets`]'s
/// (every writable block drive, as the dashboard's `a`), and burners named
/// beside it are written too. Kept in the order named: progress rows are
/// matched by drive, not by place.
fn resolve_targets(unit: &Arc<Unit>, names: &[String]) -> Result<Vec<Drive>, String> {
    use copyunit_model::targets;
    if names.iter().any(|n| n == targets::ALL) {
        // What is attached now, not at the last rescan.
        unit.rescan_drives();
    }
    let names =
        targets::expand_copy_targets(names, &unit.drives_now()).map_err(|e| e.to_string())?;
    let opts = discover_options(unit);
    let busy = unit.jobs.busy();
    let mut out: Vec<Drive> = Vec::new();
    for name in &names {
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
/// disc without room (padded as the burner writes it), a burner with no
/// size to plan the burn by. The dashboard and the burn preflight apply the
/// same rule ([`copyunit_model::room::fits`]).
fn check_room(image: &str, content: Option<u64>, drives: &[Drive]) -> Result<(), String> {
    for d in drives {
        copyunit_model::room::fits(image, content, d).map_err(|e| e.to_string())?;
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
    // Each drive is written only if it is still the one validated here.
    let mut plan = CopyPlan::for_drives(&path, &blocks);
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
    spawn(unit, id, move || {
        let progress = |up: TargetUpdate| {
            u.jobs.update(id, |job| apply_update(job, &up));
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
        u.jobs.update(id, |job| apply_report(job, &report.targets));
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
    // One drive, by name: never `all`.
    let drive = copyunit_model::targets::wipe_target(drive).map_err(|e| e.to_string())?;
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
    spawn(unit, id, move || {
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
            // Only the drive validated above: not one swapped in since.
            let planned = copyunit_model::DriveIdentity::of(&d);
            copyunit_drives::wipe_planned(&planned, full, &opts, &cancel, &progress)
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
    spawn(unit, id, move || {
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
    if let Some(job) = u.jobs.finish(id, error) {
        tell(u, &job);
    }
}

/// The event for a job that just finished.
fn tell(u: &Arc<Unit>, job: &Job) {
    let id = job.id;
    let what = match job.kind {
        JobKind::Copy => format!("{} to {}", job.source, names(job)),
        JobKind::Wipe => format!("wipe of {}", names(job)),
        JobKind::Read => format!("read of {}", names(job)),
        JobKind::Burn => format!("burn of {} to {}", job.source, names(job)),
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

/// One target's progress, applied to its row: matched by drive, not by
/// place in the list.
fn apply_update(job: &mut Job, up: &TargetUpdate) {
    if let Some(t) = job.targets.iter_mut().find(|t| t.drive == up.drive) {
        up.progress.apply(t);
    }
}

/// How each drive ended, applied to its row (matched by drive).
fn apply_report(job: &mut Job, results: &[copyunit_drives::TargetResult]) {
    for r in results {
        let Some(t) = job.targets.iter_mut().find(|t| t.drive == r.drive) else {
            continue;
        };
        t.phase = r.phase;
        t.error = r.error.clone();
        t.skipped = r.skipped;
        if r.phase == Phase::Done {
            t.bytes_done = t.bytes_total.unwrap_or(r.bytes_written).max(t.bytes_done);
        }
    }
}

/// Runs job `id`'s worker on a thread of its own. A panic in it (or no
/// thread to run it on) finishes the job as failed with a message and
/// frees its drives, instead of leaving it "running" for ever.
fn spawn(unit: &Arc<Unit>, id: JobId, f: impl FnOnce() + Send + 'static) {
    let u = unit.clone();
    let died = move |why: String| {
        tracing::error!("job {id}: {why}");
        if let Some(job) = u.jobs.fail_unfinished(id, &why) {
            tell(&u, &job);
        }
    };
    guarded(format!("job {id}"), f, died);
}

/// Runs `f` on a thread named `name`; `died` is told if it panicked or
/// could not start.
fn guarded(
    name: String,
    f: impl FnOnce() + Send + 'static,
    died: impl FnOnce(String) + Send + 'static,
) -> Option<std::thread::JoinHandle<()>> {
    let died = Arc::new(Mutex::new(Some(died)));
    let on_panic = died.clone();
    let spawned = std::thread::Builder::new().name(name).spawn(move || {
        if let Err(p) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            if let Some(d) = on_panic.lock().unwrap_or_else(|p| p.into_inner()).take() {
                d(format!("internal error: the job's worker stopped ({what})"));
            }
        }
    });
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            if let Some(d) = died.lock().unwrap_or_else(|p| p.into_inner()).take() {
                d(format!("cannot start a job thread: {e}"));
            }
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(name: &str) -> Drive {
        Drive {
            name: name.into(),
            ..Drive::default()
        }
    }

    /// Jobs over a fresh history in a directory of its own.
    fn jobs(tag: &str) -> (Jobs, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("copyunit-jobs-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(".copyunit")).unwrap();
        (Jobs::load(&dir), dir)
    }

    /// Issue 13, defect 3: progress went to the row at the writer's index,
    /// right only while block drives happened to be listed before burners.
    #[test]
    fn progress_rows_are_matched_by_index() {
        let mut job = Job {
            targets: ["sr1", "loop3"]
                .map(|d| JobTarget {
                    drive: d.into(),
                    ..JobTarget::default()
                })
                .to_vec(),
            ..Job::default()
        };
        // The writer lists its block drives first: loop3 is its index 0.
        let up = TargetUpdate {
            index: 0,
            drive: "loop3".into(),
            progress: copyunit_drives::Progress {
                phase: Phase::Write,
                bytes_done: 42,
                bytes_total: Some(100),
                rate_bps: 1,
                eta_secs: None,
                buffer_fill: None,
            },
        };
        apply_update(&mut job, &up);
        assert_eq!(job.targets[1].bytes_done, 42);
        assert_eq!(job.targets[0].bytes_done, 0, "sr1 got loop3's progress");
        let results = [copyunit_drives::TargetResult {
            drive: "loop3".into(),
            phase: Phase::Done,
            error: None,
            bytes_written: 100,
            verified: true,
            skipped: false,
            sha256: None,
        }];
        apply_report(&mut job, &results);
        assert_eq!(job.targets[1].phase, Phase::Done);
        assert_eq!(job.targets[0].phase, Phase::Prepare);
    }

    /// Issue 13, defect 6: only the file was trimmed; the list in memory
    /// (and every snapshot) grew all day in duplicator mode.
    #[test]
    fn the_in_memory_job_list_never_shrinks() {
        let (jobs, dir) = jobs("bound");
        {
            let mut st = jobs.lock();
            for id in 1..=history::KEEP as u64 + 100 {
                st.jobs.push(Job {
                    id,
                    state: JobState::Done,
                    ..Job::default()
                });
            }
            st.next_id = history::KEEP as u64 + 101;
        }
        let (id, _) = jobs.add(JobKind::Copy, "x.img", true, &[drive("sdb")], None, None);
        jobs.finish(id, None);
        let list = jobs.list();
        assert_eq!(list.len(), history::KEEP);
        assert_eq!(list.last().map(|j| j.id), Some(id), "the newest is kept");
        assert_eq!(Jobs::load(&dir).list().len(), history::KEEP);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Issue 13, defect 10: a panic in a job's worker (bmap-parser's unwrap)
    /// left the job running for ever, its drive busy and `--wait` waiting.
    #[test]
    fn a_panic_in_a_job_worker_never_ends_its_job() {
        let (jobs, dir) = jobs("panic");
        let jobs = Arc::new(jobs);
        let (id, _) = jobs.add(JobKind::Copy, "x.img", true, &[drive("sdb")], None, None);
        assert!(jobs.busy().contains_key("sdb"));
        let j = jobs.clone();
        let h = guarded(
            "job test".into(),
            || panic!("called `Result::unwrap()` on an `Err` value: ParseIntError"),
            move |why| {
                j.fail_unfinished(id, &why);
            },
        )
        .expect("a thread");
        h.join().expect("the panic is caught");
        let job = jobs.get(id).unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(
            job.error.as_deref().unwrap_or("").contains("ParseIntError"),
            "{job:?}"
        );
        assert_eq!(job.targets[0].phase, Phase::Failed);
        assert!(jobs.busy().is_empty(), "its drive is free again");
        let _ = std::fs::remove_dir_all(dir);
    }
}
