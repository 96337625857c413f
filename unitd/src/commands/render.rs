//! Text renderings of the model for the exec commands: aligned tables a
//! person can read and `awk` can split.

use copyunit_model::format::{bytes, duration};
use copyunit_model::{Event, Image, ImageState, UnitInfo};

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
    let mut out = format!("unit      {} (copyunit {})\n", info.name, info.version);
    let addrs = if info.addresses.is_empty() {
        "none".to_string()
    } else {
        info.addresses.join(", ")
    };
    out += &format!("address   {addrs} (ssh port {})\n", info.port);
    out += &format!("host key  {}\n", info.host_key_fingerprint);
    out += &format!(
        "store     {}: {} free of {}, {} in {} image(s){}\n",
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
    out += &format!("uptime    {}\n", duration(info.uptime_secs));
    if info.pairing {
        out += "keys      none installed: pairing code login is on (see the unit's console)\n";
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
                k.comment.clone(),
            ]
        })
        .collect();
    table(&["FINGERPRINT", "TYPE", "COMMENT"], &rows)
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
