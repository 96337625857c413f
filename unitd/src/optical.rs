//! Optical drives in the unit model: what the disc in each drive is, and
//! ripping a source disc into the store (`read sr0 NAME`).
//!
//! The MMC work is the optical crate's; this module only maps it onto the
//! model (role, media, size) and the store. Probing sends a handful of SCSI
//! commands, so results are cached and refreshed only every few seconds.

use std::collections::HashMap;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use copyunit_drives::CancelToken;
use copyunit_model::{Drive, DriveKind, DriveRole, JobTarget};
use copyunit_optical::{DriveInfo, RipOptions, SgTransport, Transport};

const PROBE_EVERY: Duration = Duration::from_secs(5);

/// Last probe of each optical drive.
#[derive(Default)]
pub struct Probes(Mutex<HashMap<String, (Instant, Option<DriveInfo>)>>);

impl Probes {
    /// Fills role, media and size of the optical drives in `drives`.
    /// Drives in `busy` (in a job) keep their last probe.
    pub fn enrich(&self, drives: &mut [Drive], busy: &HashMap<String, u64>) {
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|name, _| drives.iter().any(|d| &d.name == name));
        for d in drives.iter_mut().filter(|d| d.kind == DriveKind::Optical) {
            let stale = cache
                .get(&d.name)
                .is_none_or(|(at, _)| at.elapsed() >= PROBE_EVERY);
            if stale && !busy.contains_key(&d.name) {
                let info = SgTransport::open(&d.path)
                    .and_then(|mut t| copyunit_optical::probe(&mut t))
                    .map_err(|e| tracing::debug!("probing {}: {e}", d.name))
                    .ok();
                cache.insert(d.name.clone(), (Instant::now(), info));
            }
            if let Some((_, Some(info))) = cache.get(&d.name) {
                apply(d, info);
            }
        }
    }
}

/// What a probe says about a drive, in the model's terms.
pub fn apply(d: &mut Drive, info: &DriveInfo) {
    d.role = info.role;
    d.media = info.media.clone();
    if info.readable_bytes > 0 {
        d.size = info.readable_bytes;
    }
    if d.vendor.is_none() && !info.inquiry.vendor.is_empty() {
        d.vendor = Some(info.inquiry.vendor.clone());
    }
    if d.model.is_none() && !info.inquiry.product.is_empty() {
        d.model = Some(info.inquiry.product.clone());
    }
    if d.role == DriveRole::Burner {
        d.eligible = false;
        d.reason = Some("a disc burner: burning from copy jobs is not available yet".into());
    }
}

/// Rips the disc in `drive` (a `/dev/sr*` path) into `out`, through MMC
/// READ with retries; an unreadable sector fails the rip, naming it.
pub fn rip_drive(
    path: &Path,
    out: &Path,
    cancel: &CancelToken,
    progress: &(dyn Fn(JobTarget) + Sync),
) -> Result<(u64, String), String> {
    let mut t = SgTransport::open(path).map_err(|e| e.to_string())?;
    rip_with(&mut t, out, cancel, progress)
}

/// [`rip_drive`] over any transport (the simulator in tests).
pub fn rip_with(
    t: &mut dyn Transport,
    out: &Path,
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
    let report = copyunit_optical::rip(t, &mut w, &RipOptions::default(), &mut |p| {
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.5 {
            (p.bytes_done as f64 / secs) as u64
        } else {
            0
        };
        progress(JobTarget {
            drive: String::new(),
            phase: p.phase,
            bytes_done: p.bytes_done,
            bytes_total: Some(p.bytes_total),
            rate_bps: rate,
            eta_secs: (rate > 0).then(|| p.bytes_total.saturating_sub(p.bytes_done) / rate),
            error: None,
            buffer_fill: p.buffer_fill,
            skipped: false,
        });
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

/// True for CD/DVD/BD drives (read through MMC, not as a block device).
pub fn is_optical(d: &Drive) -> bool {
    d.kind == DriveKind::Optical
}

#[cfg(test)]
mod tests {
    use super::*;
    use copyunit_optical::{Media, SimDisc, SimDrive};

    #[test]
    fn a_source_disc_rips_into_a_file_with_its_sha256() {
        let data: Vec<u8> = (0..2048 * 300).map(|i| (i * 7 % 251) as u8).collect();
        let mut sim = SimDrive::with_disc("sr0", SimDisc::pressed(Media::DvdRom, &data));
        let dir = std::env::temp_dir().join(format!("unitd-rip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("disc.iso");
        let _ = std::fs::remove_file(&out);
        let seen = std::sync::Mutex::new(0u64);
        let (len, sha) = rip_with(&mut sim, &out, &CancelToken::new(), &|t| {
            *seen.lock().unwrap() = t.bytes_done
        })
        .unwrap();
        use sha2::Digest;
        assert_eq!(len, data.len() as u64);
        assert_eq!(sha, hex::encode(sha2::Sha256::digest(&data)));
        assert_eq!(std::fs::read(&out).unwrap(), data);
        assert_eq!(*seen.lock().unwrap(), data.len() as u64);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
