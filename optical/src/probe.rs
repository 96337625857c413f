//! What drive is this and what disc is in it: for drive discovery.
//!
//! [`probe`] asks INQUIRY and GET CONFIGURATION for the drive's identity and
//! capabilities (which profiles it can write decides Burner vs Source), then
//! reads the disc's type, state and sizes into the model's
//! [`OpticalMedia`]. An empty drive is not an error: `media` is None.

use copyunit_model::{DriveRole, OpticalMedia};

use crate::error::{Error, Result};
use crate::mmc::{
    BLOCK, CapacityKind, Configuration, DiscStatus, Inquiry, Media, MediaEvent, Mmc, TrackRef,
};
use crate::sense::Condition;
use crate::transport::Transport;

/// What the drive can read and write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities {
    pub read_dvd: bool,
    pub read_bd: bool,
    pub write_cd: bool,
    pub write_dvd: bool,
    pub write_bd: bool,
    /// CD Session At Once.
    pub sao: bool,
}

impl Capabilities {
    pub fn from_config(cfg: &Configuration) -> Capabilities {
        let has = |ms: &[Media]| ms.iter().any(|m| cfg.supports_profile(*m));
        Capabilities {
            read_dvd: has(&[Media::DvdRom, Media::DvdR, Media::DvdPlusR, Media::DvdRam]),
            read_bd: has(&[Media::BdRom, Media::BdR, Media::BdRe]),
            write_cd: has(&[Media::CdR, Media::CdRw]),
            write_dvd: has(&[
                Media::DvdR,
                Media::DvdRwSequential,
                Media::DvdRwRestricted,
                Media::DvdRam,
                Media::DvdPlusR,
                Media::DvdPlusRw,
            ]),
            write_bd: has(&[Media::BdR, Media::BdRe]),
            sao: cfg.can_sao(),
        }
    }

    /// The capabilities as the model lists them (`write_dvd`, `sao`, ...).
    pub fn names(&self) -> Vec<String> {
        [
            (self.read_dvd, "read_dvd"),
            (self.read_bd, "read_bd"),
            (self.write_cd, "write_cd"),
            (self.write_dvd, "write_dvd"),
            (self.write_bd, "write_bd"),
            (self.sao, "sao"),
        ]
        .into_iter()
        .filter(|(has, _)| *has)
        .map(|(_, name)| name.to_string())
        .collect()
    }

    pub fn can_write(&self) -> bool {
        self.write_cd || self.write_dvd || self.write_bd
    }

    /// Burner if it can write anything, else the source disc drive.
    pub fn role(&self) -> DriveRole {
        if self.can_write() {
            DriveRole::Burner
        } else {
            DriveRole::Source
        }
    }
}

/// Everything discovery needs about an optical drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveInfo {
    pub inquiry: Inquiry,
    pub capabilities: Capabilities,
    pub role: DriveRole,
    /// The disc, if one is in and readable enough to be identified.
    pub media: Option<OpticalMedia>,
    /// Bytes a rip would read (READ CAPACITY), 0 when nothing is recorded.
    pub readable_bytes: u64,
    /// The drive is spinning up or busy: probe again shortly.
    pub not_ready: bool,
}

/// Has a disc been inserted or removed since the last call? Cheap enough
/// to poll every second or two; probe again on anything but `NoChange`.
pub fn media_event(t: &mut dyn Transport) -> Result<MediaEvent> {
    Mmc::new(t).media_event()
}

/// Probe a drive and its disc.
pub fn probe(t: &mut dyn Transport) -> Result<DriveInfo> {
    let mut mmc = Mmc::new(t);
    let inquiry = mmc.inquiry()?;
    let mut cfg = mmc.get_configuration()?;
    let capabilities = Capabilities::from_config(&cfg);
    let mut info = DriveInfo {
        inquiry,
        capabilities,
        role: capabilities.role(),
        media: None,
        readable_bytes: 0,
        not_ready: false,
    };
    // Consume unit attentions (medium changed, reset) left by a new disc.
    let mut ready = false;
    for _ in 0..4 {
        match mmc.test_unit_ready() {
            Ok(()) => {
                ready = true;
                break;
            }
            Err(e) => match e.condition() {
                Some(Condition::MediumChanged | Condition::Reset | Condition::RemovalRequested) => {
                }
                Some(Condition::NoMedium { .. }) => return Ok(info),
                Some(c) if c.is_retryable() => {
                    info.not_ready = true;
                    return Ok(info);
                }
                _ => return Err(e),
            },
        }
    }
    if !ready {
        info.not_ready = true;
        return Ok(info);
    }
    // The profile may have changed with the disc.
    cfg = mmc.get_configuration()?;
    let media = cfg.media();
    if media == Media::None {
        return Ok(info);
    }
    let (m, readable) = describe_media(&mut mmc, media)?;
    info.media = Some(m);
    info.readable_bytes = readable;
    Ok(info)
}

fn describe_media(mmc: &mut Mmc<'_>, media: Media) -> Result<(OpticalMedia, u64)> {
    let block = BLOCK as u64;
    let readable = match mmc.read_capacity() {
        // What a rip reads: the ISO volume when there is one.
        Ok(c) if c.last_lba > 0 => crate::rip::iso_volume_blocks(mmc, c.last_lba.saturating_add(1))
            .map_or(c.bytes(), |b| u64::from(b) * block),
        Ok(_) => 0,
        Err(Error::Drive { .. }) => 0,
        Err(e) => return Err(e),
    };
    let disc = mmc.read_disc_information().ok();
    let erasable = disc.is_some_and(|d| d.erasable);
    let mut out = OpticalMedia {
        media_type: media.name(),
        status: String::new(),
        erasable,
        capacity_bytes: readable,
        free_bytes: 0,
    };
    if media.is_overwrite() {
        let caps = mmc.read_format_capacities()?;
        let mut formatted = caps.current_kind == CapacityKind::Formatted;
        if media == Media::DvdPlusRw {
            formatted = disc.is_some_and(|d| d.bg_format != 0);
        }
        out.status = if formatted {
            "formatted"
        } else {
            "unformatted"
        }
        .into();
        out.erasable = true;
        out.capacity_bytes = u64::from(caps.current_blocks) * block;
        // Everything can be overwritten.
        out.free_bytes = out.capacity_bytes;
        return Ok((out, readable));
    }
    let status = disc.map_or(DiscStatus::Complete, |d| d.status);
    out.status = match status {
        DiscStatus::Blank => "blank",
        DiscStatus::Appendable => "appendable",
        DiscStatus::Complete | DiscStatus::Other => "complete",
    }
    .into();
    if !media.is_read_only()
        && status != DiscStatus::Complete
        && let Ok(t) = mmc.read_track_information(TrackRef::Invisible)
    {
        let nwa = u64::from(t.next_writable.unwrap_or(t.start));
        out.free_bytes = u64::from(t.free_blocks) * block;
        out.capacity_bytes = (nwa + u64::from(t.free_blocks)) * block;
    }
    Ok((out, readable))
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use super::*;
    use crate::rip::{DiscReader, RipOptions};
    use crate::transport::{DataDir, Reply, Status};

    /// A drive that answers GOOD with these data replies, in order, and
    /// then is gone.
    struct Script(VecDeque<Vec<u8>>);

    impl Transport for Script {
        fn device(&self) -> &str {
            "sr9"
        }
        fn execute(
            &mut self,
            command: &'static str,
            _cdb: &[u8],
            data: DataDir<'_>,
            _timeout: Duration,
        ) -> Result<Reply> {
            let gone = || Error::Io {
                device: "sr9".into(),
                command,
                source: std::io::Error::other("script ended"),
            };
            let transferred = match data {
                DataDir::FromDevice(buf) => {
                    let reply = self.0.pop_front().ok_or_else(gone)?;
                    let n = reply.len().min(buf.len());
                    buf[..n].copy_from_slice(&reply[..n]);
                    n
                }
                DataDir::ToDevice(buf) => buf.len(),
                DataDir::None => 0,
            };
            Ok(Reply {
                status: Status::Good,
                transferred,
            })
        }
    }

    /// GET CONFIGURATION of a CD-ROM drive holding a pressed CD.
    fn cd_rom_config() -> Vec<u8> {
        let mut c = vec![0, 0, 0, 12, 0, 0, 0, 0x08];
        c.extend([0, 0, 0x03, 4, 0, 0x08, 1, 0]);
        c
    }

    // Found writing the mmc fuzz target: a drive whose READ CAPACITY says the
    // last LBA is 0xFFFFFFFF overflowed `last_lba + 1` (a panic with
    // overflow checks) in probe and when opening the disc as a source.
    #[test]
    fn fuzz_mmc_capacity_at_the_last_lba_of_all_is_no_panic() {
        let mut inquiry = vec![0x05, 0x80, 5, 0x32, 31, 0, 0, 0];
        inquiry.extend(b"VENDOR  PRODUCT         1.00");
        let capacity = vec![0xff, 0xff, 0xff, 0xff, 0, 0, 0x08, 0];
        let mut drive = Script(
            [inquiry, cd_rom_config(), cd_rom_config(), capacity.clone()]
                .into_iter()
                .collect(),
        );
        let info = probe(&mut drive).unwrap();
        assert_eq!(info.readable_bytes, (1 << 32) * 2048);

        let mut drive = Script([capacity].into_iter().collect());
        let opts = RipOptions {
            timing: crate::burn::Timing::immediate(),
            ..RipOptions::default()
        };
        let reader = DiscReader::open(&mut drive, opts).unwrap();
        assert_eq!(reader.size(), u64::from(u32::MAX) * 2048);
    }
}
