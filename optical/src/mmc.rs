//! Typed MMC commands (MMC-5, SPC-3) over any [`Transport`].
//!
//! [`Mmc`] builds each CDB, sends it with a timeout suited to the command,
//! turns CHECK CONDITION into [`Error::Drive`] and parses the answer into
//! plain structs. It knows nothing about burn sequences: that is `burn`.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::sense::{Condition, Sense};
use crate::transport::{DataDir, Status, Transport};

/// Bytes per block of data discs (CD mode 1, DVD, BD).
pub const BLOCK: usize = 2048;

/// Timeouts per kind of command: quick queries, data transfer (a full
/// drive buffer may stall a WRITE), and long operations without Immed.
pub const TIMEOUT_QUICK: Duration = Duration::from_secs(30);
pub const TIMEOUT_DATA: Duration = Duration::from_secs(200);
pub const TIMEOUT_LONG: Duration = Duration::from_secs(3600);

/// Current-profile numbers (MMC-5 table 92): the media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Media {
    None,
    CdRom,
    CdR,
    CdRw,
    DvdRom,
    DvdR,
    DvdRam,
    DvdRwRestricted,
    DvdRwSequential,
    DvdRDl,
    DvdPlusRw,
    DvdPlusR,
    DvdPlusRDl,
    BdRom,
    BdR,
    BdRRandom,
    BdRe,
    Other(u16),
}

impl Media {
    pub fn from_profile(p: u16) -> Media {
        match p {
            0x0000 => Media::None,
            0x0008 => Media::CdRom,
            0x0009 => Media::CdR,
            0x000a => Media::CdRw,
            0x0010 => Media::DvdRom,
            0x0011 => Media::DvdR,
            0x0012 => Media::DvdRam,
            0x0013 => Media::DvdRwRestricted,
            0x0014 => Media::DvdRwSequential,
            0x0015 => Media::DvdRDl,
            0x001a => Media::DvdPlusRw,
            0x001b => Media::DvdPlusR,
            0x002b => Media::DvdPlusRDl,
            0x0040 => Media::BdRom,
            0x0041 => Media::BdR,
            0x0042 => Media::BdRRandom,
            0x0043 => Media::BdRe,
            other => Media::Other(other),
        }
    }

    pub fn profile(self) -> u16 {
        match self {
            Media::None => 0x0000,
            Media::CdRom => 0x0008,
            Media::CdR => 0x0009,
            Media::CdRw => 0x000a,
            Media::DvdRom => 0x0010,
            Media::DvdR => 0x0011,
            Media::DvdRam => 0x0012,
            Media::DvdRwRestricted => 0x0013,
            Media::DvdRwSequential => 0x0014,
            Media::DvdRDl => 0x0015,
            Media::DvdPlusRw => 0x001a,
            Media::DvdPlusR => 0x001b,
            Media::DvdPlusRDl => 0x002b,
            Media::BdRom => 0x0040,
            Media::BdR => 0x0041,
            Media::BdRRandom => 0x0042,
            Media::BdRe => 0x0043,
            Media::Other(p) => p,
        }
    }

    /// Name as users know it, e.g. "DVD+RW".
    pub fn name(self) -> String {
        match self {
            Media::None => "no disc",
            Media::CdRom => "CD-ROM",
            Media::CdR => "CD-R",
            Media::CdRw => "CD-RW",
            Media::DvdRom => "DVD-ROM",
            Media::DvdR => "DVD-R",
            Media::DvdRam => "DVD-RAM",
            Media::DvdRwRestricted => "DVD-RW (restricted overwrite)",
            Media::DvdRwSequential => "DVD-RW",
            Media::DvdRDl => "DVD-R DL",
            Media::DvdPlusRw => "DVD+RW",
            Media::DvdPlusR => "DVD+R",
            Media::DvdPlusRDl => "DVD+R DL",
            Media::BdRom => "BD-ROM",
            Media::BdR => "BD-R",
            Media::BdRRandom => "BD-R (random)",
            Media::BdRe => "BD-RE",
            Media::Other(p) => return format!("unknown disc (profile {p:#06x})"),
        }
        .to_string()
    }

    pub fn is_cd(self) -> bool {
        matches!(self, Media::CdRom | Media::CdR | Media::CdRw)
    }

    /// Random-access rewritable media written without sessions.
    pub fn is_overwrite(self) -> bool {
        matches!(
            self,
            Media::DvdRam | Media::DvdRwRestricted | Media::DvdPlusRw | Media::BdRe
        )
    }

    /// Pressed (or otherwise never writable) media.
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Media::CdRom | Media::DvdRom | Media::BdRom | Media::None | Media::Other(_)
        )
    }
}

/// Standard INQUIRY data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inquiry {
    /// 5 for CD/DVD/BD drives.
    pub peripheral_type: u8,
    pub removable: bool,
    pub vendor: String,
    pub product: String,
    pub revision: String,
}

/// One feature descriptor from GET CONFIGURATION.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feature {
    pub code: u16,
    pub current: bool,
    pub data: Vec<u8>,
}

/// GET CONFIGURATION: the current profile and what the drive can do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Configuration {
    pub current_profile: u16,
    /// Every profile the drive supports (Profile List feature 0000h).
    pub profiles: Vec<u16>,
    pub features: Vec<Feature>,
}

/// Feature numbers (MMC-5 5.3).
pub mod feature {
    pub const PROFILE_LIST: u16 = 0x0000;
    pub const RANDOM_WRITABLE: u16 = 0x0020;
    pub const INCREMENTAL_STREAMING: u16 = 0x0021;
    pub const FORMATTABLE: u16 = 0x0023;
    pub const RESTRICTED_OVERWRITE: u16 = 0x0026;
    pub const DVD_PLUS_RW: u16 = 0x002a;
    pub const DVD_PLUS_R: u16 = 0x002b;
    pub const CD_TAO: u16 = 0x002d;
    pub const CD_MASTERING: u16 = 0x002e;
    pub const DVD_MINUS_R_WRITE: u16 = 0x002f;
    pub const BD_WRITE: u16 = 0x0041;
}

impl Configuration {
    pub fn media(&self) -> Media {
        Media::from_profile(self.current_profile)
    }

    pub fn feature(&self, code: u16) -> Option<&Feature> {
        self.features.iter().find(|f| f.code == code)
    }

    pub fn supports_profile(&self, p: Media) -> bool {
        self.profiles.contains(&p.profile())
    }

    /// CD Mastering feature with its SAO bit: Session At Once works.
    pub fn can_sao(&self) -> bool {
        self.feature(feature::CD_MASTERING)
            .is_some_and(|f| f.data.first().is_some_and(|b| b & 0x20 != 0))
    }
}

/// Disc Status of READ DISC INFORMATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscStatus {
    Blank,
    Appendable,
    Complete,
    /// Random-access media (overwrite discs).
    Other,
}

/// Standard Disc Information (READ DISC INFORMATION type 000b).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscInfo {
    pub status: DiscStatus,
    pub erasable: bool,
    pub sessions: u16,
    pub first_track_last_session: u16,
    pub last_track_last_session: u16,
    /// DVD+RW background format: 0 none, 1 partial, 2 running, 3 complete.
    pub bg_format: u8,
}

/// READ TRACK INFORMATION addressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackRef {
    Lba(u32),
    Number(u16),
    /// The invisible/incomplete track (number FFh): where writing goes.
    Invisible,
}

/// Track Information Block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackInfo {
    pub track: u16,
    pub session: u16,
    pub blank: bool,
    pub start: u32,
    pub next_writable: Option<u32>,
    pub free_blocks: u32,
    pub size: u32,
    pub last_recorded: Option<u32>,
}

/// READ CAPACITY.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub last_lba: u32,
    pub block_len: u32,
}

impl Capacity {
    pub fn bytes(&self) -> u64 {
        (u64::from(self.last_lba) + 1) * u64::from(self.block_len)
    }
}

/// Descriptor type of the current capacity in READ FORMAT CAPACITIES.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityKind {
    Unformatted,
    Formatted,
    NoMedium,
}

/// A format the disc offers, also the payload of FORMAT UNIT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormatDescriptor {
    pub blocks: u32,
    pub format_type: u8,
    pub param: u32,
}

/// READ FORMAT CAPACITIES.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatCapacities {
    pub current_blocks: u32,
    pub current_kind: CapacityKind,
    pub formats: Vec<FormatDescriptor>,
}

/// Media class event of GET EVENT STATUS NOTIFICATION.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaEvent {
    pub kind: MediaEventKind,
    pub tray_open: bool,
    pub present: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaEventKind {
    NoChange,
    EjectRequest,
    NewMedia,
    MediaRemoval,
    MediaChanged,
    Other(u8),
}

/// READ BUFFER CAPACITY (block form).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferCapacity {
    pub size: u32,
    pub free: u32,
}

impl BufferCapacity {
    pub fn fill_percent(&self) -> u8 {
        if self.size == 0 {
            return 0;
        }
        let used = u64::from(self.size.saturating_sub(self.free));
        u8::try_from(used * 100 / u64::from(self.size)).unwrap_or(100)
    }
}

/// Write Type of mode page 05h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteType {
    /// Packet/incremental (DVD-R incremental).
    Incremental = 0,
    Tao = 1,
    /// Session At Once (CD) / Disc At Once (DVD-R).
    Sao = 2,
}

/// The fields of Write Parameters mode page 05h that matter for data discs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteParams {
    pub write_type: WriteType,
    pub buffer_underrun_free: bool,
    /// Keep the disc appendable after the session (multi-session 11b).
    pub multi_session: bool,
    /// 4 data uninterrupted (CD), 5 incremental (DVD).
    pub track_mode: u8,
    /// 8: mode 1, 2048-byte blocks.
    pub data_block_type: u8,
    /// DVD-R incremental: link size 16 and fixed 16-block packets.
    pub dvd_incremental: bool,
}

impl WriteParams {
    /// Page 05h bytes (page code, length 32h, ...).
    pub fn page(&self) -> [u8; 52] {
        let mut p = [0u8; 52];
        p[0] = 0x05;
        p[1] = 0x32;
        p[2] = self.write_type as u8
            | if self.buffer_underrun_free { 0x40 } else { 0 }
            | if self.dvd_incremental { 0x20 } else { 0 };
        p[3] = (self.track_mode & 0x0f)
            | if self.multi_session { 0xc0 } else { 0 }
            | if self.dvd_incremental { 0x20 } else { 0 };
        p[4] = self.data_block_type & 0x0f;
        if self.dvd_incremental {
            p[5] = 16;
            p[10..14].copy_from_slice(&16u32.to_be_bytes());
        }
        // Audio pause length 150 (2 s) as libburn and the cookbook advise.
        p[14..16].copy_from_slice(&150u16.to_be_bytes());
        p
    }

    /// Parse a page 05h as returned by MODE SENSE.
    pub fn from_page(p: &[u8]) -> Option<WriteParams> {
        if p.len() < 5 || p[0] & 0x3f != 0x05 {
            return None;
        }
        let write_type = match p[2] & 0x0f {
            0 => WriteType::Incremental,
            1 => WriteType::Tao,
            2 => WriteType::Sao,
            _ => return None,
        };
        Some(WriteParams {
            write_type,
            buffer_underrun_free: p[2] & 0x40 != 0,
            multi_session: p[3] & 0xc0 == 0xc0,
            track_mode: p[3] & 0x0f,
            data_block_type: p[4] & 0x0f,
            dvd_incremental: p[3] & 0x20 != 0,
        })
    }
}

/// CLOSE TRACK/SESSION close functions (MMC-5 6.3).
pub mod close {
    pub const TRACK: u8 = 0b001;
    pub const SESSION: u8 = 0b010;
    /// DVD+R: close session and finalize the disc ("minimal radius").
    pub const FINALIZE_DVD_PLUS_R: u8 = 0b101;
    /// BD-R (and DVD+R DL): finalize.
    pub const FINALIZE_BD_R: u8 = 0b110;
}

/// BLANK types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlankKind {
    /// Blank the whole disc (slow; restores DVD-RW incremental capability).
    Full = 0,
    /// Minimally blank: TOC/PMA only (fast).
    Fast = 1,
}

/// LBA to CD MSF (75 frames per second, 150-frame offset).
pub fn lba_to_msf(lba: i64) -> [u8; 3] {
    let f = (lba + 150).max(0);
    [
        u8::try_from(f / (60 * 75)).unwrap_or(u8::MAX),
        ((f / 75) % 60) as u8,
        (f % 75) as u8,
    ]
}

/// The SAO cue sheet for one mode-1 data track of `blocks` blocks starting
/// at LBA 0 with the mandatory 2 s pregap (cookbook "SAO CD").
pub fn data_cue_sheet(blocks: u32) -> Vec<u8> {
    let end = lba_to_msf(i64::from(blocks));
    let entries: [[u8; 8]; 4] = [
        // Lead-in, data pause form.
        [0x41, 0x00, 0x00, 0x14, 0, 0, 0, 0],
        // Track 1 index 0: pregap at 00:00:00 (LBA -150).
        [0x41, 0x01, 0x00, 0x10, 0, 0, 0, 0],
        // Track 1 index 1 at 00:02:00 (LBA 0).
        [0x41, 0x01, 0x01, 0x10, 0, 0, 2, 0],
        // Lead-out.
        [0x41, 0xaa, 0x01, 0x14, 0, end[0], end[1], end[2]],
    ];
    entries.concat()
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn ascii(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim().to_string()
}

/// Typed MMC commands over a borrowed transport.
pub struct Mmc<'a> {
    t: &'a mut dyn Transport,
}

impl<'a> Mmc<'a> {
    pub fn new(t: &'a mut dyn Transport) -> Mmc<'a> {
        Mmc { t }
    }

    pub fn device(&self) -> &str {
        self.t.device()
    }

    /// Send one command; CHECK CONDITION becomes [`Error::Drive`].
    /// Returns the bytes transferred.
    pub fn run(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        data: DataDir<'_>,
        timeout: Duration,
    ) -> Result<usize> {
        let reply = self.t.execute(name, cdb, data, timeout)?;
        match reply.status {
            Status::Good => Ok(reply.transferred),
            Status::CheckCondition(Some(sense)) => {
                let condition = sense.condition();
                if condition == Condition::Recovered {
                    return Ok(reply.transferred);
                }
                tracing::debug!(device = self.device(), command = name, %sense, "check condition");
                Err(Error::Drive {
                    device: self.device().to_string(),
                    command: name,
                    sense,
                    condition,
                })
            }
            Status::CheckCondition(None) => Err(Error::Status {
                device: self.device().to_string(),
                command: name,
                status: 0x02,
            }),
            Status::Busy => Err(Error::Status {
                device: self.device().to_string(),
                command: name,
                status: 0x08,
            }),
            Status::Other(status) => Err(Error::Status {
                device: self.device().to_string(),
                command: name,
                status,
            }),
        }
    }

    fn read_into(
        &mut self,
        name: &'static str,
        cdb: &[u8],
        len: usize,
        min: usize,
    ) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; len];
        let got = self.run(name, cdb, DataDir::FromDevice(&mut buf), TIMEOUT_QUICK)?;
        if got < min {
            return Err(Error::ShortReply {
                device: self.device().to_string(),
                command: name,
                got,
            });
        }
        buf.truncate(got);
        Ok(buf)
    }

    pub fn test_unit_ready(&mut self) -> Result<()> {
        self.run(
            "TEST UNIT READY",
            &[0x00, 0, 0, 0, 0, 0],
            DataDir::None,
            TIMEOUT_QUICK,
        )
        .map(|_| ())
    }

    /// REQUEST SENSE (fixed format): the drive's pending condition, e.g.
    /// the progress of a blank. None when there is nothing to report.
    pub fn request_sense(&mut self) -> Result<Option<Sense>> {
        let b = self.read_into("REQUEST SENSE", &[0x03, 0, 0, 0, 18, 0], 18, 0)?;
        Ok(Sense::parse(&b)
            .filter(|s| s.condition() != Condition::Recovered || s.progress.is_some()))
    }

    pub fn inquiry(&mut self) -> Result<Inquiry> {
        let b = self.read_into("INQUIRY", &[0x12, 0, 0, 0, 96, 0], 96, 36)?;
        Ok(Inquiry {
            peripheral_type: b[0] & 0x1f,
            removable: b[1] & 0x80 != 0,
            vendor: ascii(&b[8..16]),
            product: ascii(&b[16..32]),
            revision: ascii(&b[32..36]),
        })
    }

    /// GET CONFIGURATION, all features.
    pub fn get_configuration(&mut self) -> Result<Configuration> {
        let len: u16 = 8192;
        let [hi, lo] = len.to_be_bytes();
        let b = self.read_into(
            "GET CONFIGURATION",
            &[0x46, 0x00, 0, 0, 0, 0, 0, hi, lo, 0],
            usize::from(len),
            8,
        )?;
        let total = (usize::try_from(be32(&b, 0))
            .unwrap_or(usize::MAX)
            .saturating_add(4))
        .min(b.len());
        let mut cfg = Configuration {
            current_profile: be16(&b, 6),
            ..Configuration::default()
        };
        let mut at = 8;
        while at + 4 <= total {
            let code = be16(&b, at);
            let current = b[at + 2] & 0x01 != 0;
            let len = usize::from(b[at + 3]);
            let data = b[at + 4..total.min(at + 4 + len)].to_vec();
            if code == feature::PROFILE_LIST {
                cfg.profiles = data.chunks_exact(4).map(|d| be16(d, 0)).collect();
            }
            cfg.features.push(Feature {
                code,
                current,
                data,
            });
            at += 4 + len;
        }
        Ok(cfg)
    }

    pub fn read_disc_information(&mut self) -> Result<DiscInfo> {
        let b = self.read_into(
            "READ DISC INFORMATION",
            &[0x51, 0, 0, 0, 0, 0, 0, 0, 34, 0],
            34,
            8,
        )?;
        Ok(DiscInfo {
            status: match b[2] & 0x03 {
                0 => DiscStatus::Blank,
                1 => DiscStatus::Appendable,
                2 => DiscStatus::Complete,
                _ => DiscStatus::Other,
            },
            erasable: b[2] & 0x10 != 0,
            sessions: u16::from(b[4]) | b.get(9).map_or(0, |m| u16::from(*m) << 8),
            first_track_last_session: u16::from(b[5]) | b.get(10).map_or(0, |m| u16::from(*m) << 8),
            last_track_last_session: u16::from(b[6]) | b.get(11).map_or(0, |m| u16::from(*m) << 8),
            bg_format: b[7] & 0x03,
        })
    }

    pub fn read_track_information(&mut self, which: TrackRef) -> Result<TrackInfo> {
        let (kind, number) = match which {
            TrackRef::Lba(l) => (0u8, l),
            TrackRef::Number(n) => (1, u32::from(n)),
            TrackRef::Invisible => (1, 0xff),
        };
        let n = number.to_be_bytes();
        let b = self.read_into(
            "READ TRACK INFORMATION",
            &[0x52, kind, n[0], n[1], n[2], n[3], 0, 0, 36, 0],
            36,
            28,
        )?;
        let nwa_valid = b[7] & 0x01 != 0;
        let lra_valid = b[7] & 0x02 != 0;
        Ok(TrackInfo {
            track: u16::from(b[2]) | b.get(32).map_or(0, |m| u16::from(*m) << 8),
            session: u16::from(b[3]) | b.get(33).map_or(0, |m| u16::from(*m) << 8),
            blank: b[6] & 0x40 != 0,
            start: be32(&b, 8),
            next_writable: nwa_valid.then(|| be32(&b, 12)),
            free_blocks: be32(&b, 16),
            size: be32(&b, 24),
            last_recorded: if lra_valid && b.len() >= 32 {
                Some(be32(&b, 28))
            } else {
                None
            },
        })
    }

    pub fn read_capacity(&mut self) -> Result<Capacity> {
        let b = self.read_into("READ CAPACITY", &[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], 8, 8)?;
        Ok(Capacity {
            last_lba: be32(&b, 0),
            block_len: be32(&b, 4),
        })
    }

    pub fn read_format_capacities(&mut self) -> Result<FormatCapacities> {
        let b = self.read_into(
            "READ FORMAT CAPACITIES",
            &[0x23, 0, 0, 0, 0, 0, 0, 0x01, 0x04, 0],
            260,
            12,
        )?;
        let list = (usize::from(b[3]) + 4).min(b.len());
        let current_kind = match b[8] & 0x03 {
            1 => CapacityKind::Unformatted,
            2 => CapacityKind::Formatted,
            _ => CapacityKind::NoMedium,
        };
        let formats = b[12..list.max(12)]
            .chunks_exact(8)
            .map(|d| FormatDescriptor {
                blocks: be32(d, 0),
                format_type: d[4] >> 2,
                param: u32::from_be_bytes([0, d[5], d[6], d[7]]),
            })
            .collect();
        Ok(FormatCapacities {
            current_blocks: be32(&b, 4),
            current_kind,
            formats,
        })
    }

    /// READ(10) of `buf.len() / 2048` blocks at `lba`.
    pub fn read10(&mut self, lba: u32, buf: &mut [u8]) -> Result<()> {
        let blocks = u16::try_from(buf.len() / BLOCK).unwrap_or(u16::MAX);
        let l = lba.to_be_bytes();
        let n = blocks.to_be_bytes();
        let cdb = [0x28, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0];
        let want = usize::from(blocks) * BLOCK;
        let got = self.run(
            "READ(10)",
            &cdb,
            DataDir::FromDevice(&mut buf[..want]),
            TIMEOUT_DATA,
        )?;
        if got < want {
            return Err(Error::ShortReply {
                device: self.device().to_string(),
                command: "READ(10)",
                got,
            });
        }
        Ok(())
    }

    /// WRITE(10) of whole blocks at `lba` (an i32 in two's complement for
    /// the CD SAO pregap at -150).
    pub fn write10(&mut self, lba: i32, data: &[u8]) -> Result<()> {
        let blocks = u16::try_from(data.len() / BLOCK).unwrap_or(u16::MAX);
        let l = lba.to_be_bytes();
        let n = blocks.to_be_bytes();
        let cdb = [0x2a, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0];
        let want = usize::from(blocks) * BLOCK;
        self.run(
            "WRITE(10)",
            &cdb,
            DataDir::ToDevice(&data[..want]),
            TIMEOUT_DATA,
        )
        .map(|_| ())
    }

    /// MODE SENSE(10) of one page (current values); returns the page bytes.
    pub fn mode_sense(&mut self, page: u8) -> Result<Vec<u8>> {
        let b = self.read_into(
            "MODE SENSE",
            &[0x5a, 0x08, page & 0x3f, 0, 0, 0, 0, 0x01, 0x00, 0],
            256,
            8,
        )?;
        let bd_len = usize::from(be16(&b, 6));
        let start = (8 + bd_len).min(b.len());
        let total = (usize::from(be16(&b, 0)) + 2).min(b.len());
        Ok(b[start..total.max(start)].to_vec())
    }

    /// MODE SELECT(10) of one page (with an all-zero 8-byte header).
    pub fn mode_select(&mut self, page: &[u8]) -> Result<()> {
        let mut data = vec![0u8; 8];
        data.extend_from_slice(page);
        let n = u16::try_from(data.len()).unwrap_or(u16::MAX).to_be_bytes();
        self.run(
            "MODE SELECT",
            &[0x55, 0x10, 0, 0, 0, 0, 0, n[0], n[1], 0],
            DataDir::ToDevice(&data),
            TIMEOUT_QUICK,
        )
        .map(|_| ())
    }

    pub fn set_write_params(&mut self, params: &WriteParams) -> Result<()> {
        self.mode_select(&params.page())
    }

    pub fn send_cue_sheet(&mut self, sheet: &[u8]) -> Result<()> {
        let n = u32::try_from(sheet.len()).unwrap_or(0).to_be_bytes();
        self.run(
            "SEND CUE SHEET",
            &[0x5d, 0, 0, 0, 0, 0, n[1], n[2], n[3], 0],
            DataDir::ToDevice(sheet),
            TIMEOUT_QUICK,
        )
        .map(|_| ())
    }

    /// RESERVE TRACK of `blocks` (RMZ=ARSV=0).
    pub fn reserve_track(&mut self, blocks: u32) -> Result<()> {
        let n = blocks.to_be_bytes();
        self.run(
            "RESERVE TRACK",
            &[0x53, 0, 0, 0, 0, n[0], n[1], n[2], n[3], 0],
            DataDir::None,
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    pub fn synchronize_cache(&mut self) -> Result<()> {
        self.run(
            "SYNCHRONIZE CACHE",
            &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DataDir::None,
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    /// CLOSE TRACK/SESSION with a function of [`close`].
    pub fn close_track_session(&mut self, function: u8, track: u16, immed: bool) -> Result<()> {
        let t = track.to_be_bytes();
        self.run(
            "CLOSE TRACK/SESSION",
            &[
                0x5b,
                u8::from(immed),
                function & 0x07,
                0,
                t[0],
                t[1],
                0,
                0,
                0,
                0,
            ],
            DataDir::None,
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    /// FORMAT UNIT with one descriptor (FmtData, format code 001b).
    pub fn format_unit(&mut self, d: FormatDescriptor, immed: bool) -> Result<()> {
        let mut data = [0u8; 12];
        // Format list header: FOV + Immed when asked.
        data[1] = if immed { 0x82 } else { 0x80 };
        data[3] = 8;
        data[4..8].copy_from_slice(&d.blocks.to_be_bytes());
        data[8] = d.format_type << 2;
        data[9..12].copy_from_slice(&d.param.to_be_bytes()[1..]);
        self.run(
            "FORMAT UNIT",
            &[0x04, 0x11, 0, 0, 0, 0],
            DataDir::ToDevice(&data),
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    pub fn blank(&mut self, kind: BlankKind, immed: bool) -> Result<()> {
        let b1 = kind as u8 | if immed { 0x10 } else { 0 };
        self.run(
            "BLANK",
            &[0xa1, b1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            DataDir::None,
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    pub fn read_buffer_capacity(&mut self) -> Result<BufferCapacity> {
        let b = self.read_into(
            "READ BUFFER CAPACITY",
            &[0x5c, 0, 0, 0, 0, 0, 0, 0, 12, 0],
            12,
            12,
        )?;
        Ok(BufferCapacity {
            size: be32(&b, 4),
            free: be32(&b, 8),
        })
    }

    pub fn prevent_removal(&mut self, prevent: bool) -> Result<()> {
        self.run(
            "PREVENT ALLOW MEDIUM REMOVAL",
            &[0x1e, 0, 0, 0, u8::from(prevent), 0],
            DataDir::None,
            TIMEOUT_QUICK,
        )
        .map(|_| ())
    }

    /// START STOP UNIT: eject (LoEj, Start=0) or load (LoEj, Start=1).
    pub fn start_stop(&mut self, load: bool) -> Result<()> {
        let b4 = 0x02 | u8::from(load);
        self.run(
            "START STOP UNIT",
            &[0x1b, 0, 0, 0, b4, 0],
            DataDir::None,
            TIMEOUT_LONG,
        )
        .map(|_| ())
    }

    /// GET EVENT STATUS NOTIFICATION (polled, media class): a cheap way to
    /// notice a disc being inserted or removed without disturbing a drive
    /// (no unit attention is consumed).
    pub fn media_event(&mut self) -> Result<MediaEvent> {
        let b = self.read_into(
            "GET EVENT STATUS NOTIFICATION",
            &[0x4a, 0x01, 0, 0, 0x10, 0, 0, 0, 8, 0],
            8,
            4,
        )?;
        // NEA set or another class: the drive has no media event to give.
        if b.len() < 8 || b[2] & 0x80 != 0 || b[2] & 0x07 != 4 {
            return Ok(MediaEvent {
                kind: MediaEventKind::NoChange,
                tray_open: false,
                present: false,
            });
        }
        Ok(MediaEvent {
            kind: match b[4] & 0x0f {
                0 => MediaEventKind::NoChange,
                1 => MediaEventKind::EjectRequest,
                2 => MediaEventKind::NewMedia,
                3 => MediaEventKind::MediaRemoval,
                4 => MediaEventKind::MediaChanged,
                k => MediaEventKind::Other(k),
            },
            tray_open: b[5] & 0x01 != 0,
            present: b[5] & 0x02 != 0,
        })
    }

    /// Allow removal, then eject the tray.
    pub fn eject(&mut self) -> Result<()> {
        self.prevent_removal(false)?;
        self.start_stop(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::Reply;

    /// Records CDBs and data-out, answers GOOD with canned data.
    struct Recorder {
        sent: Vec<(Vec<u8>, Vec<u8>)>,
        answer: Vec<u8>,
    }

    impl Transport for Recorder {
        fn device(&self) -> &str {
            "sr9"
        }
        fn execute(
            &mut self,
            _name: &'static str,
            cdb: &[u8],
            data: DataDir<'_>,
            _timeout: Duration,
        ) -> Result<Reply> {
            let (out, n) = match data {
                DataDir::ToDevice(b) => (b.to_vec(), b.len()),
                DataDir::FromDevice(b) => {
                    let n = b.len().min(self.answer.len());
                    b[..n].copy_from_slice(&self.answer[..n]);
                    (vec![], n)
                }
                DataDir::None => (vec![], 0),
            };
            self.sent.push((cdb.to_vec(), out));
            Ok(Reply {
                status: Status::Good,
                transferred: n,
            })
        }
    }

    fn rec(answer: Vec<u8>) -> Recorder {
        Recorder {
            sent: vec![],
            answer,
        }
    }

    /// CDB bytes as MMC-5/SPC-3 lay them out, written down independently
    /// of the simulator (which parses with the same code's assumptions).
    #[test]
    fn cdbs_have_the_spec_layout() {
        let mut r = rec(vec![0; 4096]);
        let mut m = Mmc::new(&mut r);
        m.read_track_information(TrackRef::Invisible).unwrap();
        m.close_track_session(close::SESSION, 0, false).unwrap();
        m.close_track_session(close::TRACK, 3, true).unwrap();
        m.blank(BlankKind::Fast, true).unwrap();
        m.start_stop(false).unwrap();
        m.prevent_removal(true).unwrap();
        m.reserve_track(0x0001_0203).unwrap();
        m.write10(-150, &[0u8; 4096]).unwrap();
        m.read10(0x10, &mut [0u8; 2048]).unwrap();
        m.send_cue_sheet(&data_cue_sheet(300)).unwrap();
        m.format_unit(
            FormatDescriptor {
                blocks: u32::MAX,
                format_type: 0x26,
                param: 0,
            },
            true,
        )
        .unwrap();
        m.synchronize_cache().unwrap();
        let sent = &r.sent;
        assert_eq!(sent[0].0, [0x52, 0x01, 0, 0, 0, 0xff, 0, 0, 36, 0]);
        assert_eq!(sent[1].0, [0x5b, 0x00, 0x02, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sent[2].0, [0x5b, 0x01, 0x01, 0, 0, 3, 0, 0, 0, 0]);
        assert_eq!(sent[3].0, [0xa1, 0x11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sent[4].0, [0x1b, 0, 0, 0, 0x02, 0]);
        assert_eq!(sent[5].0, [0x1e, 0, 0, 0, 0x01, 0]);
        assert_eq!(sent[6].0, [0x53, 0, 0, 0, 0, 0x00, 0x01, 0x02, 0x03, 0]);
        assert_eq!(sent[7].0, [0x2a, 0, 0xff, 0xff, 0xff, 0x6a, 0, 0, 2, 0]);
        assert_eq!(sent[7].1.len(), 4096);
        assert_eq!(sent[8].0, [0x28, 0, 0, 0, 0, 0x10, 0, 0, 1, 0]);
        assert_eq!(sent[9].0, [0x5d, 0, 0, 0, 0, 0, 0, 0, 32, 0]);
        assert_eq!(sent[10].0, [0x04, 0x11, 0, 0, 0, 0]);
        assert_eq!(
            sent[10].1,
            [
                0x00, 0x82, 0x00, 0x08, 0xff, 0xff, 0xff, 0xff, 0x98, 0, 0, 0
            ]
        );
        assert_eq!(sent[11].0[0], 0x35);
    }

    #[test]
    fn mode_select_sends_header_and_page_05() {
        let mut r = rec(vec![]);
        let mut m = Mmc::new(&mut r);
        m.set_write_params(&WriteParams {
            write_type: WriteType::Sao,
            buffer_underrun_free: true,
            multi_session: false,
            track_mode: 4,
            data_block_type: 8,
            dvd_incremental: false,
        })
        .unwrap();
        let (cdb, data) = &r.sent[0];
        assert_eq!(cdb, &[0x55, 0x10, 0, 0, 0, 0, 0, 0, 60, 0]);
        assert_eq!(&data[..8], &[0u8; 8]);
        assert_eq!(&data[8..13], &[0x05, 0x32, 0x42, 0x04, 0x08]);
    }

    #[test]
    fn answers_are_parsed_per_spec() {
        // READ DISC INFORMATION: erasable, last session complete, disc
        // complete, 2 sessions, tracks 3..3, DVD+RW background format 3.
        let mut di = vec![0u8; 34];
        di[1] = 32;
        di[2] = 0x10 | (3 << 2) | 2;
        di[4] = 2;
        di[5] = 3;
        di[6] = 3;
        di[7] = 3;
        let mut r = rec(di);
        let info = Mmc::new(&mut r).read_disc_information().unwrap();
        assert_eq!(info.status, DiscStatus::Complete);
        assert!(info.erasable);
        assert_eq!(
            (info.sessions, info.last_track_last_session, info.bg_format),
            (2, 3, 3)
        );

        // GET CONFIGURATION: current profile DVD+RW; profile list with
        // CD-R and DVD+RW; CD Mastering with SAO.
        let mut gc = vec![0, 0, 0, 0, 0, 0, 0x00, 0x1a];
        gc.extend_from_slice(&[0x00, 0x00, 0x03, 8, 0x00, 0x09, 0, 0, 0x00, 0x1a, 1, 0]);
        gc.extend_from_slice(&[0x00, 0x2e, 0x03, 4, 0x20, 0, 0, 0]);
        let len = (gc.len() - 4) as u32;
        gc[..4].copy_from_slice(&len.to_be_bytes());
        let mut r = rec(gc);
        let cfg = Mmc::new(&mut r).get_configuration().unwrap();
        assert_eq!(cfg.media(), Media::DvdPlusRw);
        assert_eq!(cfg.profiles, vec![0x09, 0x1a]);
        assert!(cfg.supports_profile(Media::CdR));
        assert!(cfg.can_sao());

        // INQUIRY.
        let mut inq = vec![b' '; 36];
        inq[0] = 5;
        inq[1] = 0x80;
        inq[8..12].copy_from_slice(b"HL-D");
        inq[16..24].copy_from_slice(b"DVDRAM G");
        let mut r = rec(inq);
        let i = Mmc::new(&mut r).inquiry().unwrap();
        assert_eq!((i.peripheral_type, i.removable), (5, true));
        assert_eq!(
            (i.vendor.as_str(), i.product.as_str()),
            ("HL-D", "DVDRAM G")
        );

        // A short answer is an error, not a panic.
        let mut r = rec(vec![0; 4]);
        let e = Mmc::new(&mut r).read_capacity().unwrap_err();
        assert_eq!(
            e.to_string(),
            "sr9: short answer to READ CAPACITY (4 bytes)"
        );
    }

    #[test]
    fn msf_of_lba() {
        assert_eq!(lba_to_msf(-150), [0, 0, 0]);
        assert_eq!(lba_to_msf(0), [0, 2, 0]);
        assert_eq!(lba_to_msf(300), [0, 6, 0]);
        assert_eq!(lba_to_msf(359_850), [80, 0, 0]);
    }

    #[test]
    fn cue_sheet_for_data_track() {
        let cue = data_cue_sheet(300);
        assert_eq!(cue.len(), 32);
        assert_eq!(&cue[24..32], &[0x41, 0xaa, 0x01, 0x14, 0, 0, 6, 0]);
    }

    #[test]
    fn write_params_page_round_trips() {
        let p = WriteParams {
            write_type: WriteType::Tao,
            buffer_underrun_free: true,
            multi_session: false,
            track_mode: 4,
            data_block_type: 8,
            dvd_incremental: false,
        };
        assert_eq!(WriteParams::from_page(&p.page()), Some(p));
        assert_eq!(p.page()[1], 0x32);
    }

    #[test]
    fn profile_names() {
        assert_eq!(Media::from_profile(0x1a).name(), "DVD+RW");
        assert_eq!(Media::from_profile(0x1a).profile(), 0x1a);
        assert!(Media::from_profile(0x43).is_overwrite());
        assert!(Media::from_profile(0x08).is_read_only());
        assert_eq!(
            Media::from_profile(0x99).name(),
            "unknown disc (profile 0x0099)"
        );
    }
}
