//! Reading a whole drive into a new image file, hashed on the way.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use copyunit_model::{DriveRole, Phase};
use sha2::{Digest, Sha256};

use crate::blockdev::{Access, Disk};
use crate::buffer::AlignedBuf;
use crate::discover::{self, DiscoverOptions};
use crate::error::{Error, Result};
use crate::progress::{CancelToken, Meter, Progress};

/// What [`read_drive`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReport {
    pub bytes: u64,
    /// Hex SHA-256 of the image written.
    pub sha256: String,
}

/// Copies the whole drive `name` into the new file `out` (which must not
/// exist) and returns its length and SHA-256. The system and store disks
/// and drives with a mounted partition are refused; a partial file is
/// removed on failure or cancel.
pub fn read_drive(
    name: &str,
    out: &Path,
    opts: &DiscoverOptions,
    cancel: &CancelToken,
    progress: &(dyn Fn(Progress) + Sync),
) -> Result<ReadReport> {
    let mut meter = Meter::new(progress);
    meter.phase(Phase::Prepare, None);
    let drives = discover::discover(&DiscoverOptions {
        skip_fs_probe: true,
        ..opts.clone()
    });
    let q = name.strip_prefix("/dev/").unwrap_or(name);
    let d = discover::find(&drives, q).ok_or_else(|| Error::NoSuchDrive(q.into()))?;
    let refuse = |reason: String| Error::Refused {
        name: d.name.clone(),
        reason,
    };
    if matches!(d.role, DriveRole::System | DriveRole::Store) {
        return Err(refuse(
            d.reason.clone().unwrap_or_else(|| "the system disk".into()),
        ));
    }
    if let Some(m) = d.partitions.iter().find_map(|p| p.mountpoint.as_ref()) {
        return Err(refuse(format!("mounted at {m}")));
    }
    if d.size == 0 {
        return Err(refuse("without medium".into()));
    }
    let mut disk =
        Disk::open(Path::new(&d.path), Access::Read).map_err(Error::drive(&d.name, "open"))?;
    let size = disk.size();
    let image = out.display().to_string();
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(Error::image(&image, "create"))?;
    let result = (|| {
        meter.phase(Phase::Write, Some(size));
        let mut buf = AlignedBuf::zeroed(4 << 20);
        let mut h = Sha256::new();
        let sector = u64::from(disk.logical_sector_size());
        let mut pos = 0;
        while pos < size {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            let n = (size - pos).min(buf.len() as u64);
            let aligned = n.div_ceil(sector) * sector;
            let s = &mut buf.as_mut_slice()[..aligned as usize];
            disk.read_exact_at(s, pos)
                .map_err(Error::drive(&d.name, "read"))?;
            h.update(&s[..n as usize]);
            file.write_all(&s[..n as usize])
                .map_err(Error::image(&image, "write"))?;
            pos += n;
            meter.add(n);
        }
        meter.phase(Phase::Sync, None);
        file.sync_all().map_err(Error::image(&image, "flush"))?;
        Ok(ReadReport {
            bytes: size,
            sha256: hex::encode(h.finalize()),
        })
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(out);
    } else {
        meter.phase(Phase::Done, None);
    }
    result
}
