//! Optical drives in the unit model: what the disc in each drive is, and
//! the jobs that use them: burning through the fan-out writer, ripping a
//! source disc into the store, copying disc to disc, blanking and ejecting.
//!
//! The MMC work is the optical crate's; this module maps it onto the model
//! (role, media, size, eligibility) and onto the drives crate's stream
//! targets and sources. Probing sends a handful of SCSI commands, so results
//! are cached and refreshed only every few seconds.
//!
//! With `--simulate-optical`, simulated drives (the optical crate's
//! [`SimDrive`]) appear next to the real ones as `sim0`, `sim1`, ...: the
//! one sanctioned simulator, for demos and end-to-end tests, since nothing
//! here can burn a real disc.

use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use copyunit_drives::{CancelToken, ImageReader, StreamDone, StreamInput, StreamTarget};
use copyunit_model::{Drive, DriveKind, DriveRole, JobTarget, Phase};
use copyunit_optical::{
    BurnOptions, DataDir, DiscReader, DriveConfig, DriveInfo, Media, Reply, RipOptions,
    SgTransport, SimDisc, SimDrive, Timing, Transport,
};

const PROBE_EVERY: Duration = Duration::from_secs(5);
/// Path prefix of simulated drives in the model.
const SIM_PATH: &str = "sim:";

/// The optical drives of the unit: probes of the real ones, and the
/// simulated ones when configured.
pub struct Optical {
    probes: Mutex<HashMap<String, Probe>>,
    sims: Vec<Sim>,
    eject_after_burn: bool,
}

/// When a drive was last probed (None: probe again) and what it said.
type Probe = (Option<Instant>, Option<DriveInfo>);

/// A simulated drive, shared by every job and probe that opens it.
struct Sim {
    name: String,
    drive: Arc<Mutex<SimDrive>>,
}

impl Optical {
    /// `sims`: `--simulate-optical` specs, e.g. `dvd+r`, `cd-rw`, `rom=FILE`.
    pub fn new(sims: &[String], eject_after_burn: bool) -> Result<Optical, String> {
        let sims = items(sims)
            .enumerate()
            .map(|(i, spec)| Sim::parse(&format!("sim{i}"), spec))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Optical {
            probes: Mutex::default(),
            sims,
            eject_after_burn,
        })
    }

    /// No simulated drives.
    pub fn none() -> Optical {
        Optical {
            probes: Mutex::default(),
            sims: Vec::new(),
            eject_after_burn: true,
        }
    }

    /// Checks `--simulate-optical` specs without building the drives.
    pub fn check_specs(specs: &[String]) -> Result<(), String> {
        for spec in items(specs) {
            if let Spec::Rom(file) = Spec::parse(spec)?
                && !Path::new(file).is_file()
            {
                return Err(format!(
                    "simulate_optical: {spec}: {file} is not a readable file"
                ));
            }
        }
        Ok(())
    }

    /// Adds the simulated drives to `drives` and fills role, media, size
    /// and eligibility of every optical drive. Drives in `busy` (in a job)
    /// keep their last probe: a burn must not be disturbed.
    pub fn enrich(&self, drives: &mut Vec<Drive>, busy: &HashMap<String, u64>) {
        for s in &self.sims {
            drives.push(Drive {
                name: s.name.clone(),
                path: format!("{SIM_PATH}{}", s.name),
                kind: DriveKind::Optical,
                role: DriveRole::Source,
                removable: true,
                logical_sector_size: 2048,
                physical_sector_size: 2048,
                reason: Some("an optical drive".into()),
                ..Drive::default()
            });
        }
        let mut cache = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|name, _| drives.iter().any(|d| &d.name == name));
        for d in drives.iter_mut().filter(|d| d.kind == DriveKind::Optical) {
            let stale = cache
                .get(&d.name)
                .is_none_or(|(at, _)| at.is_none_or(|at| at.elapsed() >= PROBE_EVERY));
            if stale && !busy.contains_key(&d.name) {
                cache.insert(d.name.clone(), (Some(Instant::now()), self.probe(d)));
            }
            if let Some((_, Some(info))) = cache.get(&d.name) {
                apply(d, info);
            }
        }
    }

    fn probe(&self, d: &Drive) -> Option<DriveInfo> {
        self.open(d)
            .and_then(|mut t| copyunit_optical::probe(&mut *t).map_err(|e| e.to_string()))
            .map_err(|e| tracing::debug!("probing {}: {e}", d.name))
            .ok()
    }

    /// Probes these drives now, busy or not: a job that used them calls
    /// this before it reports, so the acknowledgement never comes with a
    /// stale view of the discs.
    pub fn refresh(&self, drives: &[&Drive]) {
        for d in drives.iter().filter(|d| is_optical(d)) {
            let info = self.probe(d);
            self.probes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(d.name.clone(), (Some(Instant::now()), info));
        }
    }

    /// Probe these drives again at the next rescan (a disc went in or out);
    /// a drive in a job keeps showing what it showed.
    pub fn forget(&self, names: &[String]) {
        let mut cache = self.probes.lock().unwrap_or_else(|p| p.into_inner());
        for n in names {
            if let Some(entry) = cache.get_mut(n) {
                entry.0 = None;
            }
        }
    }

    /// An MMC transport to the drive: SG_IO on its device node, or the
    /// simulated drive.
    pub fn open(&self, d: &Drive) -> Result<Box<dyn Transport>, String> {
        match d.path.strip_prefix(SIM_PATH) {
            Some(name) => self
                .sims
                .iter()
                .find(|s| s.name == name)
                .map(|s| Box::new(SharedSim(s.drive.clone(), s.name.clone())) as Box<dyn Transport>)
                .ok_or_else(|| format!("no simulated drive {name}")),
            None => SgTransport::open(&d.path)
                .map(|t| Box::new(t) as Box<dyn Transport>)
                .map_err(|e| e.to_string()),
        }
    }

    fn timing(&self, d: &Drive) -> Timing {
        if d.path.starts_with(SIM_PATH) {
            // The simulator has no clock: waiting would only slow tests.
            Timing::immediate()
        } else {
            Timing::default()
        }
    }

    /// The burner as a target of the fan-out writer: it gets the image's
    /// bytes as they are read, burns them with the sequence its disc needs,
    /// closes the disc, reads it back and opens the tray (if configured).
    pub fn burner(&self, d: &Drive) -> Result<StreamTarget, String> {
        let mut t = self.open(d)?;
        let opts = BurnOptions {
            eject: self.eject_after_burn,
            timing: self.timing(d),
            ..BurnOptions::default()
        };
        let name = d.name.clone();
        Ok(StreamTarget {
            name: d.name.clone(),
            write: Box::new(move |input: StreamInput<'_>| {
                let size = input.size.ok_or_else(|| {
                    format!("{name}: the image's size is not known, and a burner needs it first")
                })?;
                let opts = BurnOptions {
                    verify: input.verify,
                    ..opts
                };
                let cancel = input.cancel;
                let progress = input.progress;
                let report =
                    copyunit_optical::burn(&mut *t, input.content, size, &opts, &mut |p| {
                        progress(p.phase, p.bytes_done, Some(p.bytes_total), p.buffer_fill);
                        if cancel.is_cancelled() {
                            ControlFlow::Break(())
                        } else {
                            ControlFlow::Continue(())
                        }
                    })
                    .map_err(|e| e.to_string())?;
                Ok(StreamDone {
                    bytes_written: report.bytes,
                    verified: report.verified,
                    sha256: Some(report.sha256),
                })
            }),
        })
    }

    /// The disc in `d` as the source of a copy (disc to disc, or disc to
    /// sticks): read with retries; an unreadable sector fails the copy.
    pub fn disc_source(&self, d: &Drive) -> Result<ImageReader, String> {
        let t = self.open(d)?;
        let opts = RipOptions {
            timing: self.timing(d),
            ..RipOptions::default()
        };
        let reader = DiscReader::open(t, opts).map_err(|e| e.to_string())?;
        let size = reader.size();
        if size == 0 {
            return Err(format!("the disc in {} holds no data", d.name));
        }
        Ok(ImageReader::from_stream(&d.name, Box::new(reader), size))
    }

    /// Rips the disc in `d` into `out` through MMC READ with retries; an
    /// unreadable sector fails the rip, naming it.
    pub fn rip(
        &self,
        d: &Drive,
        out: &Path,
        cancel: &CancelToken,
        progress: &(dyn Fn(JobTarget) + Sync),
    ) -> Result<(u64, String), String> {
        let mut t = self.open(d)?;
        let opts = RipOptions {
            timing: self.timing(d),
            ..RipOptions::default()
        };
        rip_with(&mut *t, out, &opts, cancel, progress)
    }

    /// Blanks (CD-RW, DVD-RW) or formats (DVD+RW, DVD-RAM, BD-RE) the disc
    /// in `d`; `full` erases every sector instead of the table of contents.
    pub fn erase(
        &self,
        d: &Drive,
        full: bool,
        cancel: &CancelToken,
        progress: &(dyn Fn(copyunit_drives::Progress) + Sync),
    ) -> Result<(), String> {
        let mut t = self.open(d)?;
        let started = Instant::now();
        copyunit_optical::erase(&mut *t, full, &self.timing(d), &mut |p| {
            progress(drive_progress(
                p.phase,
                p.bytes_done,
                p.bytes_total,
                None,
                started,
            ));
            if cancel.is_cancelled() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Opens the tray (`load` = false) or closes it.
    pub fn eject(&self, d: &Drive, load: bool) -> Result<(), String> {
        let mut t = self.open(d)?;
        let mut mmc = copyunit_optical::Mmc::new(&mut *t);
        if load {
            mmc.start_stop(true)
        } else {
            mmc.eject()
        }
        .map_err(|e| e.to_string())
    }
}

/// The items of a `--simulate-optical` list, blanks dropped.
fn items(specs: &[String]) -> impl Iterator<Item = &str> {
    specs.iter().map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// One `--simulate-optical` item.
enum Spec<'a> {
    /// `rom=FILE`: a reader holding a pressed disc of FILE.
    Rom(&'a str),
    /// A burner holding a blank disc of this type and capacity in blocks.
    Blank(Media, u32),
}

impl Spec<'_> {
    fn parse(spec: &str) -> Result<Spec<'_>, String> {
        match spec.strip_prefix("rom=") {
            Some(file) => Ok(Spec::Rom(file)),
            None => blank_media(spec)
                .map(|(media, blocks)| Spec::Blank(media, blocks))
                .ok_or_else(|| bad_spec(spec)),
        }
    }
}

impl Sim {
    fn parse(name: &str, spec: &str) -> Result<Sim, String> {
        let drive = match Spec::parse(spec)? {
            Spec::Rom(file) => {
                let data = std::fs::read(file)
                    .map_err(|e| format!("--simulate-optical {spec}: cannot read {file}: {e}"))?;
                let mut d = SimDrive::with_config(name, DriveConfig::reader());
                d.insert(SimDisc::pressed(Media::DvdRom, &data));
                d
            }
            Spec::Blank(media, blocks) => {
                let mut d = SimDrive::new(name);
                d.insert(SimDisc::blank(media, blocks));
                d
            }
        };
        Ok(Sim {
            name: name.to_string(),
            drive: Arc::new(Mutex::new(drive)),
        })
    }
}

fn bad_spec(spec: &str) -> String {
    format!(
        "simulate_optical: {spec}: not a disc type (cd-r, cd-rw, dvd-r, dvd-rw, dvd+r, dvd+rw, \
         dvd-ram, bd-r, bd-re; TYPE:MIB for a smaller disc) or rom=FILE"
    )
}

/// A blank disc of the named type (`dvd+r`, or `cd-r:2` for a 2 MiB disc)
/// and its capacity in 2048-byte blocks.
fn blank_media(spec: &str) -> Option<(Media, u32)> {
    let (name, mib) = match spec.split_once(':') {
        Some((name, mib)) => (name, Some(mib.parse::<u32>().ok().filter(|m| *m > 0)?)),
        None => (spec, None),
    };
    let (media, full) = full_media(name)?;
    Some((
        media,
        mib.map_or(full, |m| (m.saturating_mul(512)).min(full)),
    ))
}

fn full_media(name: &str) -> Option<(Media, u32)> {
    Some(match name.to_ascii_lowercase().as_str() {
        "cd-r" => (Media::CdR, 359_847),
        "cd-rw" => (Media::CdRw, 359_847),
        "dvd-r" => (Media::DvdR, 2_298_496),
        "dvd-rw" => (Media::DvdRwSequential, 2_298_496),
        "dvd+r" => (Media::DvdPlusR, 2_295_104),
        "dvd+rw" => (Media::DvdPlusRw, 2_295_104),
        "dvd-ram" => (Media::DvdRam, 2_236_704),
        "bd-r" => (Media::BdR, 12_219_392),
        "bd-re" => (Media::BdRe, 11_826_176),
        _ => return None,
    })
}

/// A simulated drive behind a lock, so probes and jobs can share it as
/// they would share a real drive.
struct SharedSim(Arc<Mutex<SimDrive>>, String);

impl Transport for SharedSim {
    fn device(&self) -> &str {
        &self.1
    }

    fn execute(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        timeout: Duration,
    ) -> copyunit_optical::Result<Reply> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .execute(name, cdb, data, timeout)
    }
}

/// What a probe says about a drive, in the model's terms: its role, its
/// disc, and whether a burn could start now (else why not).
pub fn apply(d: &mut Drive, info: &DriveInfo) {
    d.role = info.role;
    d.media = info.media.clone();
    d.capabilities = info.capabilities.names();
    if info.readable_bytes > 0 {
        d.size = info.readable_bytes;
    }
    if d.vendor.is_none() && !info.inquiry.vendor.is_empty() {
        d.vendor = Some(info.inquiry.vendor.clone());
    }
    if d.model.is_none() && !info.inquiry.product.is_empty() {
        d.model = Some(info.inquiry.product.clone());
    }
    if d.role != DriveRole::Burner {
        d.eligible = false;
        d.reason = Some("a disc reader: it cannot burn".into());
        return;
    }
    let why_not = match &info.media {
        _ if info.not_ready => Some(format!("the disc in {} is still spinning up", d.name)),
        None => Some(format!("no disc in {}", d.name)),
        Some(m) => match m.status.as_str() {
            "blank" | "formatted" | "unformatted" => None,
            "appendable" if m.erasable => Some(format!(
                "the disc in {} is not blank: `wipe {}` blanks it",
                d.name, d.name
            )),
            "appendable" => Some(format!(
                "the disc in {} is not blank (appendable {}): insert a blank disc",
                d.name, m.media_type
            )),
            _ if m.erasable => Some(format!(
                "the disc in {} holds data: `wipe {}` blanks it",
                d.name, d.name
            )),
            _ if m.media_type.ends_with("-ROM") => Some(format!(
                "the disc in {} is a pressed {}: not writable",
                d.name, m.media_type
            )),
            _ => Some(format!("the disc in {} is finalized: not writable", d.name)),
        },
    };
    d.eligible = why_not.is_none();
    d.reason = why_not;
}

/// [`Optical::rip`] over any transport (the simulator in tests).
pub fn rip_with(
    t: &mut dyn Transport,
    out: &Path,
    opts: &RipOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(JobTarget) + Sync),
) -> Result<(u64, String), String> {
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    let started = Instant::now();
    let report = copyunit_optical::rip(t, &mut w, opts, &mut |p| {
        let d = drive_progress(p.phase, p.bytes_done, p.bytes_total, p.buffer_fill, started);
        let mut row = JobTarget::default();
        d.apply(&mut row);
        progress(row);
        if cancel.is_cancelled() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .map_err(|e| e.to_string())?;
    w.flush().map_err(|e| e.to_string())?;
    w.get_ref().sync_all().map_err(|e| e.to_string())?;
    Ok((report.bytes, report.sha256))
}

/// An optical operation's position as the drives crate's progress, with
/// rate and ETA over the time since `started`.
fn drive_progress(
    phase: Phase,
    done: u64,
    total: u64,
    fill: Option<u8>,
    started: Instant,
) -> copyunit_drives::Progress {
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.5 {
        (done as f64 / secs) as u64
    } else {
        0
    };
    copyunit_drives::Progress {
        phase,
        bytes_done: done,
        bytes_total: Some(total),
        rate_bps: rate,
        eta_secs: (rate > 0).then(|| total.saturating_sub(done) / rate),
        buffer_fill: fill,
    }
}

/// True for CD/DVD/BD drives (read through MMC, not as a block device).
pub fn is_optical(d: &Drive) -> bool {
    d.kind == DriveKind::Optical
}

#[cfg(test)]
mod tests;
