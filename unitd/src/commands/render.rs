//! Text renderings of the model for the exec commands: aligned tables a
//! person can read and `awk` can split.

use copyunit_model::format::{bytes, duration};
use copyunit_model::format::{percent, rate};
use copyunit_model::{
    Drive, Duplicator, Event, Image, ImageState, Job, JobState, Partial, Phase, UnitInfo,
};

use crate::ssh::auth::KeyInfo;

/// Left-aligned columns separated by two spaces; the last column unpadded.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len() - 1;
        let mut s = String::new();
        for (i, c) in cells.into_iter().enumerate() {
            if i == last {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

pub fn status(info: &UnitInfo, images: &[Image]) -> String {
    let s = &info.store;
    let mut out = format!("unit        {} (copyunit {})\n", info.name, info.version);
    let addrs = if info.addresses.is_empty() {
        "none".to_string()
    } else {
        info.addresses.join(", ")
    };
    out += &format!("address     {addrs} (ssh port {})\n", info.port);
    out += &format!("host key    {}\n", info.host_key_fingerprint);
    out += &format!(
        "store       {}: {} free of {}, {} in {} image(s){}\n",
        s.path,
        bytes(s.free_bytes),
        bytes(s.total_bytes),
        bytes(s.images_bytes),
        images.len(),
        if s.volatile {
            " - IN RAM: lost at power-off"
        } else {
            ""
        }
    );
    if s.partial_bytes > 0 {
        out += &format!(
            "            {} held by interrupted uploads (`images` lists them; `rm NAME` frees it)\n",
            bytes(s.partial_bytes)
        );
    }
    if s.full {
        out += "            FULL: uploads fail until space is freed with `rm NAME`\n";
    }
    out += &format!("uptime      {}\n", duration(info.uptime_secs));
    if info.pairing {
        out += "keys        none installed: pairing code login is on (see the unit's console)\n";
    }
    out += &format!("duplicator  {}\n", duplicator(info.duplicator.as_ref()));
    out
}

/// Duplicator mode in a sentence (after the word "duplicator").
pub fn duplicator(dup: Option<&Duplicator>) -> String {
    match dup {
        Some(d) => format!(
            "on: every drive inserted gets {} (verify {}, on for {})",
            d.image,
            if d.verify { "on" } else { "off" },
            duration(crate::unit::now().saturating_sub(d.since))
        ),
        None => "off (`copy IMAGE --auto` turns it on)".into(),
    }
}

/// The images, then (in their own section) the interrupted uploads.
pub fn images_and_partials(images: &[Image], partials: &[Partial]) -> String {
    let mut out = self::images(images);
    if !partials.is_empty() {
        let now = crate::unit::now();
        let rows: Vec<Vec<String>> = partials
            .iter()
            .map(|p| {
                vec![
                    p.name.clone(),
                    bytes(p.bytes),
                    format!("{} ago", duration(now.saturating_sub(p.since))),
                ]
            })
            .collect();
        out += "\ninterrupted uploads (not images: resume with `reput` or `put -a`, or `rm NAME` to free the space)\n";
        out += &table(&["NAME", "HELD", "SINCE"], &rows);
    }
    out
}

pub fn images(images: &[Image]) -> String {
    if images.is_empty() {
        return "no images in the store (upload with sftp, scp or `ssh admin@unit upload NAME < FILE`)\n".into();
    }
    let rows: Vec<Vec<String>> = images
        .iter()
        .map(|i| {
            vec![
                i.name.clone(),
                bytes(i.size),
                i.format.as_str().to_string(),
                i.sha256.chars().take(16).collect(),
                match &i.state {
                    ImageState::Ok if i.bmap => "ok, bmap".into(),
                    ImageState::Ok => "ok".into(),
                    ImageState::Corrupt(why) => format!("CORRUPT: {why}"),
                },
            ]
        })
        .collect();
    table(&["NAME", "SIZE", "FORMAT", "SHA256", "STATE"], &rows)
}

pub fn drives(drives: &[Drive]) -> String {
    if drives.is_empty() {
        return "no drives found\n".into();
    }
    let targets = drives.iter().filter(|d| d.eligible).count();
    let rows: Vec<Vec<String>> = drives
        .iter()
        .map(|d| {
            let state = if let Some(j) = d.job {
                format!("busy: job {j}")
            } else if d.done_remove {
                "done - remove".into()
            } else if d.eligible {
                "ready".into()
            } else {
                format!("not writable: {}", d.reason.as_deref().unwrap_or("unknown"))
            };
            vec![
                d.name.clone(),
                d.slot.clone().unwrap_or_else(|| "-".into()),
                format!("{:?}", d.kind).to_lowercase(),
                format!("{:?}", d.role).to_lowercase(),
                copyunit_model::format::drive_size(d),
                model_of(d),
                state,
            ]
        })
        .collect();
    let mut out = table(
        &["NAME", "SLOT", "KIND", "ROLE", "SIZE", "MODEL", "STATE"],
        &rows,
    );
    out += &format!("{} drive(s), {targets} writable now\n", drives.len());
    out
}

/// Vendor and model; for a burner also what it writes ("writes CD DVD BD").
fn model_of(d: &Drive) -> String {
    let mut s = [d.vendor.as_deref(), d.model.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let writes: Vec<&str> = d
        .capabilities
        .iter()
        .filter_map(|c| c.strip_prefix("write_"))
        .collect();
    if !writes.is_empty() {
        s += &format!(" (writes {})", writes.join(" ").to_uppercase());
    }
    s
}

pub fn jobs(jobs: &[Job]) -> String {
    if jobs.is_empty() {
        return "no jobs yet\n".into();
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .rev()
        .map(|j| {
            vec![
                j.id.to_string(),
                format!("{:?}", j.kind).to_lowercase(),
                j.source.clone(),
                j.targets
                    .iter()
                    .map(|t| t.drive.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                state(j),
            ]
        })
        .collect();
    table(&["ID", "KIND", "SOURCE", "DRIVES", "STATE"], &rows)
}

fn state(j: &Job) -> String {
    match j.state {
        JobState::Running => progress_line(j),
        JobState::Done => format!(
            "done{}",
            match j.finished {
                Some(f) => format!(" in {}", duration(f.saturating_sub(j.created))),
                None => String::new(),
            }
        ),
        s => format!("{s:?}").to_lowercase(),
    }
}

/// One line of progress for a running job: each drive's phase and percent.
pub fn progress_line(j: &Job) -> String {
    let parts: Vec<String> = j
        .targets
        .iter()
        .map(|t| {
            let pct = percent(t.bytes_done, t.bytes_total)
                .map(|p| format!(" {p}%"))
                .unwrap_or_default();
            let speed = if t.rate_bps > 0 && !t.phase.is_final() {
                format!(" {}", rate(t.rate_bps))
            } else {
                String::new()
            };
            let eta = t
                .eta_secs
                .filter(|_| !t.phase.is_final())
                .map(|e| format!(" eta {}", duration(e)))
                .unwrap_or_default();
            format!(
                "{} {}{pct}{speed}{eta}",
                t.drive,
                format!("{:?}", t.phase).to_lowercase()
            )
        })
        .collect();
    format!("job {}: {}", j.id, parts.join(" | "))
}

pub fn job(j: &Job) -> String {
    let kind = format!("{:?}", j.kind).to_lowercase();
    let st = format!("{:?}", j.state).to_lowercase();
    let mut out = format!("job {} ({kind} {}): {st}\n", j.id, j.source);
    if matches!(
        j.kind,
        copyunit_model::JobKind::Copy | copyunit_model::JobKind::Burn
    ) {
        out += &format!("verify {}\n", if j.verify { "on" } else { "off" });
    }
    let done = match (j.kind, j.verify) {
        (copyunit_model::JobKind::Copy, true) => "written and verified",
        (copyunit_model::JobKind::Copy, false) => "written (not verified)",
        (copyunit_model::JobKind::Wipe, _) => "wiped",
        (copyunit_model::JobKind::Read, _) => "read into the store",
        (copyunit_model::JobKind::Burn, true) => "burned and verified",
        (copyunit_model::JobKind::Burn, false) => "burned (not verified)",
    };
    let rows: Vec<Vec<String>> = j
        .targets
        .iter()
        .map(|t| {
            vec![
                t.drive.clone(),
                format!("{:?}", t.phase).to_lowercase(),
                match t.bytes_total {
                    Some(total) => format!("{} / {}", bytes(t.bytes_done), bytes(total)),
                    None if t.bytes_done > 0 => bytes(t.bytes_done),
                    None => "-".into(),
                },
                match t.phase {
                    Phase::Done if t.skipped => "already held the image: not written".into(),
                    Phase::Done => done.into(),
                    _ => t.error.clone().unwrap_or_default(),
                },
            ]
        })
        .collect();
    out += &table(&["DRIVE", "PHASE", "BYTES", "RESULT"], &rows);
    if let Some(e) = &j.error {
        out += &format!("error: {e}\n");
    }
    out
}

pub fn keys(keys: &[KeyInfo]) -> String {
    if keys.is_empty() {
        return "no keys installed: add one with `ssh admin@unit keys add < ~/.ssh/id_ed25519.pub`\n".into();
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.fingerprint.clone(),
                k.algorithm.clone(),
                k.line.to_string(),
                if k.options.is_empty() {
                    "-".into()
                } else {
                    k.options.clone()
                },
                k.comment.clone(),
            ]
        })
        .collect();
    table(
        &["FINGERPRINT", "TYPE", "LINE", "OPTIONS", "COMMENT"],
        &rows,
    )
}

pub fn events(events: &[Event]) -> String {
    let now = crate::unit::now();
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                format!("{} ago", duration(now.saturating_sub(e.at))),
                e.message.clone(),
            ]
        })
        .collect();
    table(&["WHEN", "EVENT"], &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_do_not_pad_the_last_column() {
        let t = table(&["A", "LONGER"], &[vec!["wide cell".into(), "x".into()]]);
        assert_eq!(t, "A          LONGER\nwide cell  x\n");
    }
}
