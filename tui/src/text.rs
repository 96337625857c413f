//! Small text helpers the views share: progress bars, clock times, names.

use copyunit_model::{Drive, DriveKind, Job, JobKind, JobState, Phase, format};

/// `s` for display: control characters (which a name from an SFTP client
/// or a device's model string may contain) become `?`, so nothing a client
/// chose can move the cursor, split a row or hide part of a name.
pub fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// A progress bar `width` cells wide followed by the percentage, e.g.
/// `█████░░░░░  50%`; without a known total, the bar is empty and `  ?`.
pub fn bar(percent: Option<u8>, width: usize) -> String {
    let Some(p) = percent else {
        return format!("{}    ?", "░".repeat(width));
    };
    let p = usize::from(p.min(100));
    let full = p * width / 100;
    format!("{}{} {p:>3}%", "█".repeat(full), "░".repeat(width - full))
}

/// `HH:MM:SS` (UTC) of a Unix time.
pub fn clock(at: u64) -> String {
    let s = at % 86400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `YYYY-MM-DD HH:MM` (UTC) of a Unix time.
pub fn date_time(at: u64) -> String {
    let (y, m, d) = civil_from_days((at / 86400) as i64);
    let s = at % 86400;
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", s / 3600, s / 60 % 60)
}

/// Days since 1970-01-01 -> (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

pub fn kind(k: DriveKind) -> &'static str {
    match k {
        DriveKind::Usb => "usb",
        DriveKind::Mmc => "mmc",
        DriveKind::Sata => "sata",
        DriveKind::Nvme => "nvme",
        DriveKind::Optical => "optical",
        DriveKind::Loop => "loop",
        DriveKind::Virtio => "virtio",
        DriveKind::Other => "other",
    }
}

/// Vendor and model as one label, or `-`.
pub fn drive_model(d: &Drive) -> String {
    let parts: Vec<&str> = [d.vendor.as_deref(), d.model.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    // The disc first: a narrow column still shows what is in the drive.
    if let Some(media) = &d.media {
        let disc = format::disc_state(media);
        if parts.is_empty() {
            return disc;
        }
        return format!("{disc} · {}", parts.join(" "));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(" ")
    }
}

pub fn drive_size(d: &Drive) -> String {
    // A disc: the room left on it (the model column says "blank"), else
    // what it holds; the column is narrow.
    match &d.media {
        Some(m) if m.free_bytes > 0 => format::bytes(m.free_bytes),
        Some(m) if m.capacity_bytes > 0 => format::bytes(m.capacity_bytes),
        Some(_) => "-".into(),
        None => format::drive_size(d),
    }
}

pub fn phase(p: Phase) -> &'static str {
    match p {
        Phase::Prepare => "prepare",
        Phase::Write => "write",
        Phase::Sync => "sync",
        Phase::Close => "close",
        Phase::Verify => "verify",
        Phase::Done => "done",
        Phase::Failed => "failed",
        Phase::Cancelled => "cancelled",
    }
}

pub fn job_state(s: JobState) -> &'static str {
    match s {
        JobState::Running => "running",
        JobState::Done => "DONE",
        JobState::Failed => "FAILED",
        JobState::Cancelled => "cancelled",
        JobState::Interrupted => "interrupted",
    }
}

pub fn job_kind(k: JobKind) -> &'static str {
    match k {
        JobKind::Copy => "copy",
        JobKind::Wipe => "wipe",
        JobKind::Read => "read",
        JobKind::Burn => "burn",
    }
}

/// `#3 copy debian.img -> sdb, sdc` (or `-> 5 drives` when long).
pub fn job_title(j: &Job) -> String {
    let drives: Vec<&str> = j.targets.iter().map(|t| t.drive.as_str()).collect();
    let to = if drives.len() <= 3 {
        drives.join(", ")
    } else {
        format!("{} drives", drives.len())
    };
    match j.kind {
        JobKind::Read => format!("#{} read {} -> image", j.id, j.source),
        JobKind::Wipe => format!("#{} wipe {to}", j.id),
        _ => format!("#{} {} {} -> {to}", j.id, job_kind(j.kind), j.source),
    }
}

/// Overall progress of a job: (done, total if every target's is known).
pub fn job_progress(j: &Job) -> (u64, Option<u64>) {
    let done = j.targets.iter().map(|t| t.bytes_done).sum();
    let total = j.targets.iter().map(|t| t.bytes_total).sum::<Option<u64>>();
    (done, total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(clean("a\x1b[2Jb\r\n\u{9b}c"), "a?[2Jb???c");
        assert_eq!(clean("plain-name.img"), "plain-name.img");
    }

    #[test]
    fn bars() {
        assert_eq!(bar(Some(0), 4), "░░░░   0%");
        assert_eq!(bar(Some(50), 4), "██░░  50%");
        assert_eq!(bar(Some(100), 4), "████ 100%");
        assert_eq!(bar(None, 4), "░░░░    ?");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(date_time(0), "1970-01-01 00:00");
        assert_eq!(date_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(date_time(1_795_000_000), "2026-11-18 11:06");
        assert_eq!(clock(1_795_000_000), "11:06:40");
    }
}
