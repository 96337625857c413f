//! SCSI sense data: parsing (fixed and descriptor formats) and the
//! conditions a person can act on.
//!
//! A drive answers a failed command with CHECK CONDITION and sense data:
//! a sense key, an additional sense code (ASC) and qualifier (ASCQ), and
//! optionally the LBA concerned and a progress indication. [`Sense::parse`]
//! reads both formats SPC defines; [`Sense::condition`] names what it
//! means for an optical drive (MMC-5 Annex F), and [`Condition::describe`]
//! turns that into a sentence naming the drive ("no disc in sr1").

use std::fmt;

/// Sense keys (SPC-3 table 27) used by the conditions below.
pub mod key {
    pub const NO_SENSE: u8 = 0x0;
    pub const RECOVERED_ERROR: u8 = 0x1;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const HARDWARE_ERROR: u8 = 0x4;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
    pub const DATA_PROTECT: u8 = 0x7;
    pub const ABORTED_COMMAND: u8 = 0xB;
}

/// Decoded sense data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
    /// The INFORMATION field when marked valid: for read/write errors the LBA.
    pub information: Option<u64>,
    /// Progress of a long operation (format, blank), 0..=65535 of 65536.
    pub progress: Option<u16>,
}

impl Sense {
    /// A sense with no information or progress: what the simulator builds.
    pub const fn new(key: u8, asc: u8, ascq: u8) -> Sense {
        Sense {
            key,
            asc,
            ascq,
            information: None,
            progress: None,
        }
    }

    /// Parse fixed (70h/71h) or descriptor (72h/73h) format sense data.
    /// Returns None for empty or unrecognised data.
    pub fn parse(data: &[u8]) -> Option<Sense> {
        let code = data.first()? & 0x7f;
        match code {
            0x70 | 0x71 => {
                if data.len() < 3 {
                    return None;
                }
                let key = data[2] & 0x0f;
                let valid = data[0] & 0x80 != 0;
                let information = if valid && data.len() >= 7 {
                    Some(u64::from(u32::from_be_bytes([
                        data[3], data[4], data[5], data[6],
                    ])))
                } else {
                    None
                };
                let asc = data.get(12).copied().unwrap_or(0);
                let ascq = data.get(13).copied().unwrap_or(0);
                let progress = match (data.get(15), data.get(16), data.get(17)) {
                    (Some(sksv), Some(hi), Some(lo))
                        if sksv & 0x80 != 0 && matches!(key, key::NOT_READY | key::NO_SENSE) =>
                    {
                        Some(u16::from_be_bytes([*hi, *lo]))
                    }
                    _ => None,
                };
                Some(Sense {
                    key,
                    asc,
                    ascq,
                    information,
                    progress,
                })
            }
            0x72 | 0x73 => {
                if data.len() < 4 {
                    return None;
                }
                let mut sense = Sense::new(data[1] & 0x0f, data[2], data[3]);
                let total = data
                    .len()
                    .min(8 + usize::from(data.get(7).copied().unwrap_or(0)));
                let mut at = 8;
                // Descriptors: type, additional length, payload.
                while at + 2 <= total {
                    let kind = data[at];
                    let len = usize::from(data[at + 1]);
                    let body = &data[at..total.min(at + 2 + len)];
                    match kind {
                        0x00 if body.len() >= 12 && body[2] & 0x80 != 0 => {
                            let mut be = [0u8; 8];
                            be.copy_from_slice(&body[4..12]);
                            sense.information = Some(u64::from_be_bytes(be));
                        }
                        0x02 if body.len() >= 7
                            && body[4] & 0x80 != 0
                            && matches!(sense.key, key::NOT_READY | key::NO_SENSE) =>
                        {
                            sense.progress = Some(u16::from_be_bytes([body[5], body[6]]));
                        }
                        _ => {}
                    }
                    at += 2 + len;
                }
                Some(sense)
            }
            _ => None,
        }
    }

    /// Encode as fixed format (what REQUEST SENSE with DESC=0 returns).
    pub fn to_fixed(&self) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[0] = 0x70;
        out[2] = self.key & 0x0f;
        if let Some(info) = self.information {
            out[0] |= 0x80;
            // Fixed format carries 32 bits; LBAs of optical media fit.
            out[3..7].copy_from_slice(&(info as u32).to_be_bytes());
        }
        out[7] = 10;
        out[12] = self.asc;
        out[13] = self.ascq;
        if let Some(p) = self.progress {
            out[15] = 0x80;
            out[16..18].copy_from_slice(&p.to_be_bytes());
        }
        out
    }

    /// Attach the LBA concerned.
    pub fn with_information(mut self, lba: u64) -> Sense {
        self.information = Some(lba);
        self
    }

    /// Attach a progress indication.
    pub fn with_progress(mut self, progress: u16) -> Sense {
        self.progress = Some(progress);
        self
    }

    /// What this sense means for an optical drive.
    pub fn condition(&self) -> Condition {
        use Condition as C;
        let lba = self.information;
        match (self.key, self.asc, self.ascq) {
            (key::NO_SENSE, 0, 0) | (key::RECOVERED_ERROR, _, _) => C::Recovered,
            (key::NOT_READY, 0x3a, q) => C::NoMedium {
                tray_open: match q {
                    0x01 => Some(false),
                    0x02 => Some(true),
                    _ => None,
                },
            },
            (key::NOT_READY, 0x04, 0x01) => C::BecomingReady,
            (key::NOT_READY, 0x04, 0x08) => C::LongWriteInProgress,
            (key::NOT_READY, 0x04, 0x04) | (key::NOT_READY, 0x04, 0x07) => C::OperationInProgress {
                progress: self.progress,
            },
            (_, 0x30, 0x10) => C::NotFormatted,
            (key::NOT_READY, 0x30, _) => C::IncompatibleMedium,
            (key::UNIT_ATTENTION, 0x28, _) => C::MediumChanged,
            (key::UNIT_ATTENTION, 0x29, _) => C::Reset,
            (key::UNIT_ATTENTION, 0x5a, 0x01) => C::RemovalRequested,
            (key::MEDIUM_ERROR, 0x0c, _) | (key::MEDIUM_ERROR, 0x03, _) => C::WriteError { lba },
            (key::MEDIUM_ERROR, 0x11, _)
            | (key::MEDIUM_ERROR, 0x15, _)
            | (key::MEDIUM_ERROR, 0x02, _) => C::ReadError { lba },
            (key::MEDIUM_ERROR, 0x73, _) => C::PowerCalibration,
            (key::MEDIUM_ERROR, 0x31, _) => C::FormatCorrupted,
            (key::DATA_PROTECT, 0x27, _) => C::WriteProtected,
            (key::ILLEGAL_REQUEST, 0x21, 0x02) => C::InvalidWriteAddress { lba },
            (key::ILLEGAL_REQUEST, 0x21, _) => C::LbaOutOfRange { lba },
            (key::ILLEGAL_REQUEST, 0x20, _) => C::UnsupportedCommand,
            (key::ILLEGAL_REQUEST, 0x24, _) => C::InvalidField,
            (key::ILLEGAL_REQUEST, 0x26, _) => C::InvalidParameter,
            (key::ILLEGAL_REQUEST, 0x2c, _) => C::SequenceError,
            (key::ILLEGAL_REQUEST, 0x30, _) => C::IncompatibleMedium,
            (key::ILLEGAL_REQUEST, 0x64, _) => C::IllegalModeForTrack,
            (key::ILLEGAL_REQUEST, 0x72, _) => C::SessionFixation,
            (key::ILLEGAL_REQUEST, _, _) => C::IllegalRequest,
            (key::HARDWARE_ERROR, _, _) => C::Hardware,
            (key::ABORTED_COMMAND, _, _) => C::Aborted,
            _ => C::Other,
        }
    }
}

impl fmt::Display for Sense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:02X}/{:02X}", self.key, self.asc, self.ascq)
    }
}

/// What a sense means, in the terms of optical discs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// Not an error (NO SENSE, RECOVERED ERROR).
    Recovered,
    /// 02/3A: no disc; the tray state when the drive says.
    NoMedium {
        tray_open: Option<bool>,
    },
    /// 02/04/01: spinning up after a disc was inserted.
    BecomingReady,
    /// 02/04/08: the drive's buffer is full; retry shortly.
    LongWriteInProgress,
    /// 02/04/04 or 02/04/07: format or blank running.
    OperationInProgress {
        progress: Option<u16>,
    },
    /// 06/28: the disc was changed (or inserted) since the last command.
    MediumChanged,
    /// 06/29: power on or bus reset.
    Reset,
    /// 06/5A/01: someone pressed the eject button.
    RemovalRequested,
    /// 03/0C: the disc refused the data.
    WriteError {
        lba: Option<u64>,
    },
    /// 03/11: unrecoverable read error.
    ReadError {
        lba: Option<u64>,
    },
    /// 03/73: power calibration area full or failed (disc worn out).
    PowerCalibration,
    /// 03/31: the disc's format is corrupted.
    FormatCorrupted,
    /// 07/27: write protected.
    WriteProtected,
    /// 05/21/02: not the next writable address (or disc closed).
    InvalidWriteAddress {
        lba: Option<u64>,
    },
    /// 05/21: beyond the end of the disc.
    LbaOutOfRange {
        lba: Option<u64>,
    },
    /// 05/20: the drive does not know this command.
    UnsupportedCommand,
    /// 05/24: a field of the command is not supported.
    InvalidField,
    /// 05/26: a parameter (e.g. mode page value) is not supported.
    InvalidParameter,
    /// 05/2C: commands issued in the wrong order.
    SequenceError,
    /// 30/10: the disc must be formatted before writing.
    NotFormatted,
    /// 05/30 or 02/30: the disc cannot be used for this.
    IncompatibleMedium,
    /// 05/64: illegal mode for this track.
    IllegalModeForTrack,
    /// 05/72: session fixation error.
    SessionFixation,
    /// Another ILLEGAL REQUEST.
    IllegalRequest,
    /// Sense key 4.
    Hardware,
    /// Sense key B.
    Aborted,
    Other,
}

impl Condition {
    /// The same command may succeed if simply sent again after a short wait.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Condition::LongWriteInProgress
                | Condition::BecomingReady
                | Condition::OperationInProgress { .. }
                | Condition::MediumChanged
                | Condition::Reset
                | Condition::RemovalRequested
        )
    }

    /// A sentence naming the drive, e.g. "no disc in sr1".
    pub fn describe(self, device: &str, command: &str, sense: &Sense) -> String {
        use Condition as C;
        let at = |lba: Option<u64>| lba.map(|l| format!(" at LBA {l}")).unwrap_or_default();
        match self {
            C::Recovered => format!("{device}: {command} reported a recovered error ({sense})"),
            C::NoMedium {
                tray_open: Some(true),
            } => format!("no disc in {device} (tray open)"),
            C::NoMedium { .. } => format!("no disc in {device}"),
            C::BecomingReady => format!("{device} is becoming ready (disc spinning up): try again"),
            C::LongWriteInProgress => format!("{device} is busy: long write in progress"),
            C::OperationInProgress { progress } => match progress {
                Some(p) => format!(
                    "{device} is busy formatting or blanking ({}% done)",
                    u32::from(p) * 100 / 65536
                ),
                None => format!("{device} is busy formatting or blanking"),
            },
            C::MediumChanged => format!("the disc in {device} was changed"),
            C::Reset => format!("{device} was reset (power loss or bus reset)"),
            C::RemovalRequested => format!("the eject button of {device} was pressed"),
            C::WriteError { lba } => format!("write error on the disc in {device}{}", at(lba)),
            C::ReadError { lba } => format!("unreadable sector on the disc in {device}{}", at(lba)),
            C::PowerCalibration => format!(
                "{device} cannot calibrate its laser on this disc (power calibration area full or bad disc)"
            ),
            C::FormatCorrupted => {
                format!("the format of the disc in {device} is corrupted: format it again")
            }
            C::WriteProtected => format!("the disc in {device} is write protected"),
            C::InvalidWriteAddress { lba } => format!(
                "{device} refused to write{}: not the next writable address, or the disc is finalized",
                at(lba)
            ),
            C::LbaOutOfRange { lba } => format!(
                "{device}: {command}{} is beyond the end of the disc",
                at(lba)
            ),
            C::UnsupportedCommand => format!("{device} does not support {command}"),
            C::InvalidField => {
                format!("{device} rejected {command}: invalid field in command ({sense})")
            }
            C::InvalidParameter => {
                format!("{device} rejected the parameters of {command} ({sense})")
            }
            C::SequenceError => format!("{device} rejected {command}: command sequence error"),
            C::NotFormatted => format!("the disc in {device} is not formatted: format it first"),
            C::IncompatibleMedium => {
                format!("the disc in {device} cannot be used for {command} (incompatible medium)")
            }
            C::IllegalModeForTrack => {
                format!("{device} rejected {command}: illegal mode for this track")
            }
            C::SessionFixation => {
                format!("{device} failed to close the session (session fixation error)")
            }
            C::IllegalRequest => format!("{device} rejected {command}: illegal request ({sense})"),
            C::Hardware => format!("{device} reports a hardware error during {command} ({sense})"),
            C::Aborted => format!("{device} aborted {command} ({sense})"),
            C::Other => format!("{device}: {command} failed ({sense})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_format_with_lba_and_progress_round_trips() {
        let s = Sense::new(3, 0x0c, 0).with_information(1234);
        let parsed = Sense::parse(&s.to_fixed()).unwrap();
        assert_eq!(parsed, s);
        assert_eq!(
            parsed.condition(),
            Condition::WriteError { lba: Some(1234) }
        );
        let p = Sense::new(2, 4, 7).with_progress(32768);
        assert_eq!(Sense::parse(&p.to_fixed()).unwrap().progress, Some(32768));
        assert_eq!(
            Condition::OperationInProgress {
                progress: Some(32768)
            }
            .describe("sr0", "BLANK", &p),
            "sr0 is busy formatting or blanking (50% done)"
        );
    }

    #[test]
    fn descriptor_format_is_parsed() {
        // 72h, key 3, 11/00; information descriptor with LBA 77; sense-key-specific.
        let mut d = vec![0x72, 0x03, 0x11, 0x00, 0, 0, 0, 20];
        d.extend_from_slice(&[0x00, 0x0a, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 77]);
        d.extend_from_slice(&[0x02, 0x06, 0, 0, 0x80, 0x12, 0x34, 0]);
        let s = Sense::parse(&d).unwrap();
        assert_eq!((s.key, s.asc, s.ascq), (3, 0x11, 0));
        assert_eq!(s.information, Some(77));
        assert_eq!(
            s.progress, None,
            "progress only means something with NOT READY"
        );
        assert_eq!(s.condition(), Condition::ReadError { lba: Some(77) });
        let busy = [
            0x72, 0x02, 0x04, 0x07, 0, 0, 0, 8, 0x02, 0x06, 0, 0, 0x80, 0x40, 0x00, 0,
        ];
        assert_eq!(Sense::parse(&busy).unwrap().progress, Some(0x4000));
    }

    #[test]
    fn conditions_read_like_advice() {
        let no = Sense::new(2, 0x3a, 0);
        assert_eq!(
            no.condition().describe("sr1", "TEST UNIT READY", &no),
            "no disc in sr1"
        );
        let lw = Sense::new(2, 4, 8);
        assert!(lw.condition().is_retryable());
        assert_eq!(
            lw.condition().describe("sr1", "WRITE(10)", &lw),
            "sr1 is busy: long write in progress"
        );
        assert!(Sense::new(6, 0x28, 0).condition().is_retryable());
        assert!(!Sense::new(3, 0x0c, 0).condition().is_retryable());
        assert_eq!(Sense::parse(&[]), None);
        assert_eq!(Sense::parse(&[0x00, 1, 2]), None);
        assert_eq!(Sense::parse(&[0x70]), None);
    }
}
