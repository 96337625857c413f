//! The one model of a copy unit, as every front-end sees it.
//!
//! unitd owns the live state; it publishes [`Snapshot`]s of it. The
//! dashboard (`tui`), the exec commands (text and `--json`) and the tests all
//! read these same types, and all turn what the user asks for into the same
//! [`Request`]s. Field names here are the stable JSON field names documented
//! in the README: rename nothing without a note there.
//!
//! Architecture invariant: this crate does no I/O and knows nothing of SSH,
//! terminals or block devices. Times are Unix seconds (UTC).

#![forbid(unsafe_code)]

use serde::{Deserialize, Serialize};

pub mod format;
pub mod names;
pub mod room;
pub mod targets;

pub use targets::DriveIdentity;

/// Everything a front-end needs to draw the unit at one instant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub unit: UnitInfo,
    pub drives: Vec<Drive>,
    pub images: Vec<Image>,
    pub uploads: Vec<Upload>,
    /// Interrupted uploads: not images, never a copy source.
    #[serde(default)]
    pub partials: Vec<Partial>,
    pub jobs: Vec<Job>,
    /// Newest last; bounded by unitd.
    pub events: Vec<Event>,
}

/// Identity and health of the unit itself (the `status` command).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnitInfo {
    pub name: String,
    pub version: String,
    /// Addresses an admin can `ssh` to, without port.
    pub addresses: Vec<String>,
    pub port: u16,
    /// `SHA256:...` as OpenSSH prints it.
    pub host_key_fingerprint: String,
    pub store: StoreUsage,
    pub uptime_secs: u64,
    /// True while no authorized key is installed and the pairing code is accepted.
    pub pairing: bool,
    /// The pairing code itself, only on the unit's own screen (never sent
    /// over SSH: whoever can read it there is standing at the unit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pairing_code: Option<String>,
    /// Duplicator mode, when on: every drive inserted gets this image.
    #[serde(default)]
    pub duplicator: Option<Duplicator>,
}

/// Duplicator mode: every eligible drive inserted while it is on gets a copy
/// job writing (and, unless turned off, verifying) `image`; a finished drive
/// is flushed, powered off where possible and marked "done - remove".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Duplicator {
    pub image: String,
    pub verify: bool,
    /// Unix seconds when it was turned on.
    pub since: u64,
}

/// Space on the filesystem holding the image store.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreUsage {
    pub path: String,
    pub total_bytes: u64,
    pub free_bytes: u64,
    pub used_bytes: u64,
    /// Bytes taken by complete images.
    pub images_bytes: u64,
    /// Bytes held by interrupted uploads (see [`Partial`]).
    #[serde(default)]
    pub partial_bytes: u64,
    /// No room left: no free bytes, or the catalog could not be saved for
    /// lack of space. Freed with `rm NAME`.
    #[serde(default)]
    pub full: bool,
    /// The store lives in RAM and is lost on power-off.
    pub volatile: bool,
}

/// A block device or optical drive attached to the unit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Drive {
    /// Kernel name: `sdb`, `nvme0n1`, `mmcblk0`, `sr0`, `loop3`.
    pub name: String,
    /// Device node, e.g. `/dev/sdb`.
    pub path: String,
    pub kind: DriveKind,
    pub role: DriveRole,
    pub vendor: Option<String>,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Stable label of the physical port (USB port path), if any.
    pub slot: Option<String>,
    /// Bytes; 0 for an empty card reader or an optical drive without disc.
    pub size: u64,
    pub logical_sector_size: u32,
    pub physical_sector_size: u32,
    pub removable: bool,
    pub read_only: bool,
    pub diskseq: Option<u64>,
    pub partitions: Vec<Partition>,
    /// May be chosen as a copy target now.
    pub eligible: bool,
    /// Why not eligible (system disk, mounted, read-only, ...), else None.
    pub reason: Option<String>,
    /// Disc in an optical drive, if any.
    pub media: Option<OpticalMedia>,
    /// Optical drives: what they can do (`read_dvd`, `read_bd`, `write_cd`,
    /// `write_dvd`, `write_bd`, `sao`); empty for other drives.
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// The job currently using this drive.
    pub job: Option<u64>,
    /// Finished writing in duplicator mode: waiting to be pulled.
    pub done_remove: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveKind {
    Usb,
    Mmc,
    Sata,
    Nvme,
    Optical,
    Loop,
    Virtio,
    #[default]
    Other,
}

/// What a drive is for on this unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DriveRole {
    /// Removable or spare disk: a copier.
    #[default]
    Target,
    /// Optical drive that can only read: the source disc drive.
    Source,
    /// Optical drive that can write discs.
    Burner,
    /// Holds the image store.
    Store,
    /// Backs the running system (or is otherwise never to be written).
    System,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    pub name: String,
    pub size: u64,
    pub label: Option<String>,
    pub fstype: Option<String>,
    pub mountpoint: Option<String>,
}

/// A disc in an optical drive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpticalMedia {
    /// e.g. "CD-R", "DVD+RW", "BD-RE".
    pub media_type: String,
    /// "blank", "appendable", "complete", "formatted", "unformatted".
    pub status: String,
    pub erasable: bool,
    pub capacity_bytes: u64,
    pub free_bytes: u64,
}

/// A complete image in the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub name: String,
    /// Bytes of the stored file (compressed size for compressed images).
    pub size: u64,
    /// Hex SHA-256 of the stored file.
    pub sha256: String,
    /// Unix seconds when the upload completed.
    pub added: u64,
    pub format: ImageFormat,
    /// Bytes once decompressed, when known.
    pub content_size: Option<u64>,
    /// A `.bmap` sidecar is stored with the image.
    pub bmap: bool,
    /// SHA-256 an uploaded `.sha256` / `SHA256SUMS` sidecar claims.
    pub expected_sha256: Option<String>,
    pub state: ImageState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageFormat {
    #[default]
    Raw,
    Iso,
    Xz,
    Gzip,
    Zstd,
    Bzip2,
    Zip,
}

impl ImageFormat {
    pub fn is_compressed(self) -> bool {
        !matches!(self, ImageFormat::Raw | ImageFormat::Iso)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Iso => "iso",
            ImageFormat::Xz => "xz",
            ImageFormat::Gzip => "gzip",
            ImageFormat::Zstd => "zstd",
            ImageFormat::Bzip2 => "bzip2",
            ImageFormat::Zip => "zip",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "reason")]
pub enum ImageState {
    #[default]
    Ok,
    /// A checksum sidecar disagrees with the stored bytes.
    Corrupt(String),
}

/// An upload still streaming in (not yet an image).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upload {
    pub name: String,
    pub bytes: u64,
    /// Size the client announced, if any.
    pub expected: Option<u64>,
    pub started: u64,
    pub rate_bps: u64,
}

/// An interrupted upload: a partial file kept for a resume (`reput`,
/// `put -a`, FileZilla, WinSCP), holding store space until it is resumed
/// or removed with `rm NAME`. Not an image: it is never a copy source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    pub name: String,
    /// Bytes it holds.
    pub bytes: u64,
    /// Unix seconds when it was last written.
    pub since: u64,
}

pub type JobId = u64;

/// A copy, wipe, read or burn job and its per-drive progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub kind: JobKind,
    /// Image name (copy) or source drive name (read, disc copy).
    pub source: String,
    pub verify: bool,
    pub state: JobState,
    pub created: u64,
    pub finished: Option<u64>,
    pub targets: Vec<JobTarget>,
    /// Job-level error (e.g. the image is corrupt).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    #[default]
    Copy,
    Wipe,
    Read,
    Burn,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    #[default]
    Running,
    /// Every target written and verified: the acknowledgement.
    Done,
    /// At least one target failed.
    Failed,
    Cancelled,
    /// unitd stopped (crash, power loss) while the job ran.
    Interrupted,
}

impl JobState {
    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Running)
    }
}

/// One drive within a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobTarget {
    pub drive: String,
    pub phase: Phase,
    pub bytes_done: u64,
    /// None while the total is unknown (compressed stream without size).
    pub bytes_total: Option<u64>,
    pub rate_bps: u64,
    pub eta_secs: Option<u64>,
    pub error: Option<String>,
    /// Optical: drive buffer fill, percent.
    pub buffer_fill: Option<u8>,
    /// Duplicator: the drive already held the image, so nothing was
    /// written (it was read and compared instead).
    #[serde(default)]
    pub skipped: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    #[default]
    Prepare,
    Write,
    Sync,
    /// Optical: closing track/session.
    Close,
    Verify,
    Done,
    Failed,
    Cancelled,
}

impl Phase {
    pub fn is_final(self) -> bool {
        matches!(self, Phase::Done | Phase::Failed | Phase::Cancelled)
    }
}

/// Something that happened, for the log pane and notices.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub at: u64,
    pub kind: EventKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    #[default]
    Info,
    DriveAdded,
    DriveRemoved,
    DriveChanged,
    UploadDone,
    ImageRemoved,
    JobStarted,
    JobDone,
    JobFailed,
    Warning,
}

/// What a user can ask of the unit, from any front-end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "request")]
pub enum Request {
    Copy {
        image: String,
        targets: Vec<String>,
        verify: bool,
    },
    Cancel {
        job: JobId,
    },
    Wipe {
        drive: String,
        full: bool,
    },
    Read {
        drive: String,
        name: String,
    },
    RemoveImage {
        name: String,
    },
    /// Duplicator mode on: write `image` to every drive inserted from now on.
    StartDuplicator {
        image: String,
        verify: bool,
    },
    StopDuplicator,
}

impl ImageFormat {
    /// Bytes of the file's head [`ImageFormat::detect`] wants to see (the ISO
    /// 9660 volume descriptor sits at 32 KiB).
    pub const DETECT_LEN: usize = 0x8006;

    /// Detects the format from the file's first bytes (magic numbers, not the
    /// file name). Anything unrecognised is a raw disk image.
    pub fn detect(head: &[u8]) -> ImageFormat {
        if head.starts_with(&[0xFD, b'7', b'z', b'X', b'Z', 0x00]) {
            ImageFormat::Xz
        } else if head.starts_with(&[0x1F, 0x8B]) {
            ImageFormat::Gzip
        } else if head.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]) {
            ImageFormat::Zstd
        } else if head.starts_with(b"BZh") && head.get(3).is_some_and(|c| (b'1'..=b'9').contains(c))
        {
            ImageFormat::Bzip2
        } else if head.starts_with(b"PK\x03\x04") {
            ImageFormat::Zip
        } else if head.get(0x8001..0x8006) == Some(b"CD001") {
            ImageFormat::Iso
        } else {
            ImageFormat::Raw
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_detected_by_magic_bytes() {
        assert_eq!(ImageFormat::detect(b"\xFD7zXZ\x00rest"), ImageFormat::Xz);
        assert_eq!(ImageFormat::detect(b"\x1F\x8B\x08"), ImageFormat::Gzip);
        assert_eq!(
            ImageFormat::detect(b"\x28\xB5\x2F\xFDxx"),
            ImageFormat::Zstd
        );
        assert_eq!(ImageFormat::detect(b"BZh91AY"), ImageFormat::Bzip2);
        assert_eq!(ImageFormat::detect(b"BZhx"), ImageFormat::Raw);
        assert_eq!(ImageFormat::detect(b"PK\x03\x04"), ImageFormat::Zip);
        let mut iso = vec![0u8; ImageFormat::DETECT_LEN];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(ImageFormat::detect(&iso), ImageFormat::Iso);
        assert_eq!(ImageFormat::detect(&iso[..0x8000]), ImageFormat::Raw);
        assert_eq!(ImageFormat::detect(b""), ImageFormat::Raw);
    }

    #[test]
    fn json_from_before_the_duplicator_still_parses() {
        let info: UnitInfo = serde_json::from_str(
            r#"{"name":"u","version":"0.1.0","addresses":[],"port":22,
                "host_key_fingerprint":"SHA256:x","store":{"path":"/store",
                "total_bytes":1,"free_bytes":1,"used_bytes":0,"images_bytes":0,
                "volatile":false},"uptime_secs":5,"pairing":false}"#,
        )
        .unwrap();
        assert_eq!(info.duplicator, None);
        let t: JobTarget = serde_json::from_str(
            r#"{"drive":"sdb","phase":"done","bytes_done":1,"bytes_total":1,
                "rate_bps":0,"eta_secs":null,"error":null,"buffer_fill":null}"#,
        )
        .unwrap();
        assert!(!t.skipped);
    }

    #[test]
    fn duplicator_requests_have_stable_json() {
        let on = Request::StartDuplicator {
            image: "debian.iso".into(),
            verify: true,
        };
        assert_eq!(
            serde_json::to_string(&on).unwrap(),
            r#"{"request":"start_duplicator","image":"debian.iso","verify":true}"#
        );
        assert_eq!(
            serde_json::to_string(&Request::StopDuplicator).unwrap(),
            r#"{"request":"stop_duplicator"}"#
        );
    }
}
