//! Which drives a request means: the one definition of `all` (the
//! command's word and the dashboard's `a` key), and what identifies a
//! drive between the moment a job is planned and the moment it is opened.
//!
//! Pure functions over [`Drive`]s as a snapshot lists them; unitd resolves
//! the names they return (kernel name, slot, serial) against the drives
//! found right then.

use serde::{Deserialize, Serialize};

use crate::{Drive, DriveKind, DriveRole};

/// The word for "every drive that may be written now".
pub const ALL: &str = "all";

/// Why a list of target names cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetError {
    /// No target named.
    NoneNamed,
    /// `all` named, but no block drive may be written now.
    NoneEligible,
    /// `all` is not accepted here (wiping).
    AllRefused { what: &'static str },
}

impl std::fmt::Display for TargetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TargetError::NoneNamed => write!(f, "name at least one drive (or `all`)"),
            TargetError::NoneEligible => write!(
                f,
                "no eligible drive to write (insert one, or see `drives`); disc burners are \
                 written only when named"
            ),
            TargetError::AllRefused { what } => write!(
                f,
                "{what} takes one drive by name, not `all` (name the drive to erase, as wipefs \
                 and dd do)"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// A drive `all` includes: a block drive (not a disc burner, not the
/// source drive) that is eligible, has a medium, is in no job and is not
/// waiting to be pulled. Disc burners are never part of `all`: a blank disc
/// is spent by a burn, so it is written only when named.
pub fn in_all(d: &Drive) -> bool {
    d.eligible
        && d.role == DriveRole::Target
        && d.kind != DriveKind::Optical
        && d.size > 0
        && d.job.is_none()
        && !d.done_remove
}

/// The drives `all` means now, in the order listed.
pub fn all_targets(drives: &[Drive]) -> impl Iterator<Item = &Drive> {
    drives.iter().filter(|d| in_all(d))
}

/// Expands the target names of a copy: `all` becomes every drive of
/// [`all_targets`]; every other name is kept as given (a burner named next to
/// `all` is written too). Duplicates are dropped, first place kept.
pub fn expand_copy_targets(names: &[String], drives: &[Drive]) -> Result<Vec<String>, TargetError> {
    if names.is_empty() {
        return Err(TargetError::NoneNamed);
    }
    let mut out: Vec<String> = Vec::new();
    let mut push = |n: &str| {
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    };
    for n in names {
        if n == ALL {
            let all: Vec<&Drive> = all_targets(drives).collect();
            if all.is_empty() {
                return Err(TargetError::NoneEligible);
            }
            all.iter().for_each(|d| push(&d.name));
        } else {
            push(n);
        }
    }
    Ok(out)
}

/// The one drive a wipe erases: `all` is refused. Erasing is not undone by
/// writing again, so like `wipefs`, `blkdiscard` and `dd` a wipe names its
/// device.
pub fn wipe_target(name: &str) -> Result<&str, TargetError> {
    match name.trim() {
        "" => Err(TargetError::NoneNamed),
        ALL => Err(TargetError::AllRefused { what: "wipe" }),
        n => Ok(n),
    }
}

/// What makes a drive the one that was checked when a job was planned: a
/// stick pulled and another inserted under the same kernel name has another
/// diskseq (and usually serial and size). Carried from validation to the
/// open, where a difference refuses the write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriveIdentity {
    pub name: String,
    pub diskseq: Option<u64>,
    pub serial: Option<String>,
    pub size: u64,
}

impl DriveIdentity {
    pub fn of(d: &Drive) -> DriveIdentity {
        DriveIdentity {
            name: d.name.clone(),
            diskseq: d.diskseq,
            serial: d.serial.clone(),
            size: d.size,
        }
    }

    /// How `now` differs from this identity, as words for a person; None
    /// when it is the same drive.
    pub fn differences(&self, now: &DriveIdentity) -> Option<String> {
        let mut what = Vec::new();
        if self.name != now.name {
            what.push(format!("it is now {}, was {}", now.name, self.name));
        }
        if self.diskseq != now.diskseq {
            what.push(format!(
                "diskseq {} became {}",
                opt(&self.diskseq),
                opt(&now.diskseq)
            ));
        }
        if self.serial != now.serial {
            what.push(format!(
                "serial {} became {}",
                opt(&self.serial),
                opt(&now.serial)
            ));
        }
        if self.size != now.size {
            what.push(format!(
                "size {} became {}",
                crate::format::bytes(self.size),
                crate::format::bytes(now.size)
            ));
        }
        (!what.is_empty()).then(|| what.join(", "))
    }
}

fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive(name: &str, kind: DriveKind, role: DriveRole, eligible: bool) -> Drive {
        Drive {
            name: name.into(),
            kind,
            role,
            eligible,
            size: 1 << 30,
            ..Drive::default()
        }
    }

    fn unit() -> Vec<Drive> {
        let mut busy = drive("sdd", DriveKind::Usb, DriveRole::Target, true);
        busy.job = Some(3);
        vec![
            drive("sda", DriveKind::Sata, DriveRole::System, false),
            drive("sdb", DriveKind::Usb, DriveRole::Target, true),
            drive("sdc", DriveKind::Usb, DriveRole::Target, true),
            busy,
            drive("sr0", DriveKind::Optical, DriveRole::Source, false),
            drive("sr1", DriveKind::Optical, DriveRole::Burner, true),
        ]
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn copy_to_all_and_a_named_burner_writes_the_burner_too() {
        assert_eq!(
            expand_copy_targets(&names(&["all", "sr1"]), &unit()),
            Ok(names(&["sdb", "sdc", "sr1"]))
        );
        assert_eq!(
            expand_copy_targets(&names(&["sr1", "all", "sdb"]), &unit()),
            Ok(names(&["sr1", "sdb", "sdc"]))
        );
    }

    #[test]
    fn all_is_block_drives_only_never_busy_system_or_burners() {
        let drives = unit();
        let all: Vec<&str> = all_targets(&drives).map(|d| d.name.as_str()).collect();
        assert_eq!(all, ["sdb", "sdc"]);
        let none = vec![drive("sr1", DriveKind::Optical, DriveRole::Burner, true)];
        assert_eq!(
            expand_copy_targets(&names(&["all"]), &none),
            Err(TargetError::NoneEligible)
        );
        assert_eq!(
            expand_copy_targets(&[], &unit()),
            Err(TargetError::NoneNamed)
        );
    }

    #[test]
    fn wipe_all_is_refused() {
        assert_eq!(
            wipe_target("all"),
            Err(TargetError::AllRefused { what: "wipe" })
        );
        assert_eq!(wipe_target("sdb"), Ok("sdb"));
        assert!(
            wipe_target("all")
                .unwrap_err()
                .to_string()
                .contains("by name")
        );
    }

    #[test]
    fn a_drive_swapped_under_its_name_is_another_drive() {
        let mut d = drive("sdb", DriveKind::Usb, DriveRole::Target, true);
        d.diskseq = Some(5);
        d.serial = Some("A1".into());
        let planned = DriveIdentity::of(&d);
        assert_eq!(planned.differences(&DriveIdentity::of(&d)), None);
        d.diskseq = Some(7);
        d.serial = Some("B2".into());
        assert_eq!(
            planned.differences(&DriveIdentity::of(&d)).as_deref(),
            Some("diskseq 5 became 7, serial A1 became B2")
        );
    }
}
