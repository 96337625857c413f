//! Whether an image fits a drive or a disc: the one rule the dashboard,
//! unitd and the burn preflight all apply, so an image that passes the
//! first check cannot fail the last.

use crate::{Drive, DriveKind, Image, format};

/// Bytes in a data block of an optical disc.
pub const DISC_BLOCK: u64 = 2048;
/// The shortest CD track, in blocks (4 s at 75 blocks a second).
pub const CD_MIN_TRACK_BLOCKS: u64 = 300;
/// DVD and BD are written in whole 32 KiB packets (ECC blocks).
pub const DVD_PACKET_BLOCKS: u64 = 16;

/// A CD (of any kind), by the media type a probe reports ("CD-R", "CD-RW").
pub fn is_cd(media_type: &str) -> bool {
    media_type.starts_with("CD")
}

/// Blocks an image of `size` bytes takes on a disc: whole blocks; a CD
/// track at least 300 blocks; DVD and BD whole 16-block packets.
/// Saturates instead of overflowing.
pub fn disc_blocks(cd: bool, size: u64) -> u64 {
    let blocks = size.div_ceil(DISC_BLOCK);
    if cd {
        blocks.max(CD_MIN_TRACK_BLOCKS)
    } else {
        blocks
            .div_ceil(DVD_PACKET_BLOCKS)
            .saturating_mul(DVD_PACKET_BLOCKS)
    }
}

/// [`disc_blocks`] in bytes.
pub fn disc_bytes(cd: bool, size: u64) -> u64 {
    disc_blocks(cd, size).saturating_mul(DISC_BLOCK)
}

/// Why an image does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Misfit {
    /// A compressed image without a recorded decoded size, to a burner
    /// (a burn is planned by its size before it starts).
    UnknownSize {
        image: String,
        drive: String,
    },
    DriveTooSmall {
        image: String,
        drive: String,
        need: u64,
        have: u64,
    },
    NoDisc {
        drive: String,
    },
    DiscTooSmall {
        image: String,
        drive: String,
        /// Padded as the burner writes it.
        need: u64,
        free: u64,
    },
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::UnknownSize { image, drive } => write!(
                f,
                "image {image} is compressed without a recorded size, and burner {drive} needs \
                 the size before it starts: upload it uncompressed"
            ),
            Misfit::DriveTooSmall {
                image,
                drive,
                need,
                have,
            } => write!(
                f,
                "image {image} needs {} but drive {drive} holds only {}: refusing to write",
                format::bytes(*need),
                format::bytes(*have)
            ),
            Misfit::NoDisc { drive } => write!(f, "no disc in {drive}"),
            Misfit::DiscTooSmall {
                image,
                drive,
                need,
                free,
            } => write!(
                f,
                "{image} needs {} on a disc but the disc in {drive} has only {} free: refusing \
                 to burn",
                format::bytes(*need),
                format::bytes(*free)
            ),
        }
    }
}

impl std::error::Error for Misfit {}

/// Bytes an image holds once decoded, when known: the recorded decoded
/// size, or the file's size for an image that is not compressed.
pub fn content_bytes(img: &Image) -> Option<u64> {
    img.content_size
        .or((!img.format.is_compressed()).then_some(img.size))
}

/// Whether `content` bytes (None: not known before reading) named `image`
/// fit drive `d`: a block drive's size, or the free room of the disc in a
/// burner after padding. A block drive with an unknown content size fits
/// here; the writer stops at its end.
pub fn fits(image: &str, content: Option<u64>, d: &Drive) -> Result<(), Misfit> {
    if d.kind == DriveKind::Optical {
        let Some(m) = &d.media else {
            return Err(Misfit::NoDisc {
                drive: d.name.clone(),
            });
        };
        let Some(size) = content else {
            return Err(Misfit::UnknownSize {
                image: image.into(),
                drive: d.name.clone(),
            });
        };
        let need = disc_bytes(is_cd(&m.media_type), size);
        if need > m.free_bytes {
            return Err(Misfit::DiscTooSmall {
                image: image.into(),
                drive: d.name.clone(),
                need,
                free: m.free_bytes,
            });
        }
        return Ok(());
    }
    match content {
        Some(need) if need > d.size => Err(Misfit::DriveTooSmall {
            image: image.into(),
            drive: d.name.clone(),
            need,
            have: d.size,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::OpticalMedia;

    fn burner(media: &str, free: u64) -> Drive {
        Drive {
            name: "sr1".into(),
            kind: DriveKind::Optical,
            media: Some(OpticalMedia {
                media_type: media.into(),
                free_bytes: free,
                ..OpticalMedia::default()
            }),
            ..Drive::default()
        }
    }

    #[test]
    fn a_tiny_image_on_a_cd_takes_a_whole_minimum_track() {
        // 100 KiB is 50 blocks, but a CD track is at least 300 (600 KiB).
        assert_eq!(disc_bytes(true, 100 << 10), 300 * 2048);
        assert!(fits("x.iso", Some(100 << 10), &burner("CD-R", 300 * 2048)).is_ok());
        assert!(matches!(
            fits("x.iso", Some(100 << 10), &burner("CD-R", 200 * 2048)),
            Err(Misfit::DiscTooSmall { need, .. }) if need == 300 * 2048
        ));
        // The same room on a DVD: 50 blocks pad to 64.
        assert_eq!(disc_bytes(false, 100 << 10), 64 * 2048);
        assert!(fits("x.iso", Some(100 << 10), &burner("DVD+R", 200 * 2048)).is_ok());
    }

    #[test]
    fn block_drives_and_unknown_sizes() {
        let d = Drive {
            name: "sdb".into(),
            size: 1000,
            ..Drive::default()
        };
        assert!(fits("a", Some(1000), &d).is_ok());
        assert!(fits("a", Some(1001), &d).is_err());
        assert!(fits("a", None, &d).is_ok());
        assert!(matches!(
            fits("a", None, &burner("CD-R", 1 << 30)),
            Err(Misfit::UnknownSize { .. })
        ));
        let mut empty = burner("CD-R", 0);
        empty.media = None;
        assert!(matches!(
            fits("a", Some(1), &empty),
            Err(Misfit::NoDisc { .. })
        ));
        assert_eq!(disc_blocks(false, u64::MAX), u64::MAX / 2048 + 1);
    }
}
