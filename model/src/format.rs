//! Human-readable renderings shared by the dashboard and the text commands,
//! so both say "1.5 GiB" and "3m 20s" the same way.

use crate::{Drive, DriveKind, OpticalMedia};

/// What a drive holds, as lists show it: its size, or for an optical
/// drive its disc ("DVD+R blank, 4.4 GiB free").
pub fn drive_size(d: &Drive) -> String {
    match (&d.media, d.kind) {
        (Some(m), _) => media(m),
        (None, DriveKind::Optical) => "no disc".into(),
        (None, _) if d.size == 0 => "no media".into(),
        _ => bytes(d.size),
    }
}

/// A disc: type, state, and the room left or the data it holds
/// ("CD-RW complete, 600.0 MiB").
pub fn media(m: &OpticalMedia) -> String {
    match disc_size(m) {
        Some(size) => format!("{}, {size}", disc_state(m)),
        None => disc_state(m),
    }
}

/// Type and state of a disc: "DVD+R blank".
pub fn disc_state(m: &OpticalMedia) -> String {
    format!("{} {}", m.media_type, m.status)
}

/// The room left on a disc ("4.4 GiB free"), else the data it holds.
pub fn disc_size(m: &OpticalMedia) -> Option<String> {
    if m.free_bytes > 0 {
        Some(format!("{} free", bytes(m.free_bytes)))
    } else if m.capacity_bytes > 0 {
        Some(bytes(m.capacity_bytes))
    } else {
        None
    }
}

/// Binary units, one decimal: `512 B`, `1.5 KiB`, `7.9 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A transfer rate: `85.3 MiB/s`.
pub fn rate(bytes_per_sec: u64) -> String {
    format!("{}/s", bytes(bytes_per_sec))
}

/// A duration, two most significant units: `45s`, `3m 20s`, `2h 05m`, `3d 4h`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m:02}m")
    } else if m > 0 {
        format!("{m}m {s:02}s")
    } else {
        format!("{s}s")
    }
}

/// Percent done, clamped to 0..=100; None when the total is unknown or zero.
pub fn percent(done: u64, total: Option<u64>) -> Option<u8> {
    match total {
        Some(t) if t > 0 => Some(((done.min(t) as u128 * 100) / t as u128) as u8),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_reads_like_a_person_writes_it() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(8 * 1024 * 1024 * 1024), "8.0 GiB");
    }

    #[test]
    fn durations_keep_two_units() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(200), "3m 20s");
        assert_eq!(duration(7500), "2h 05m");
        assert_eq!(duration(3 * 86400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn percent_is_clamped_and_unknown_without_total() {
        assert_eq!(percent(50, Some(200)), Some(25));
        assert_eq!(percent(300, Some(200)), Some(100));
        assert_eq!(percent(1, None), None);
        assert_eq!(percent(1, Some(0)), None);
    }
}
