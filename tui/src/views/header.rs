//! The header: who this unit is, how to reach it, and what to worry about.

use copyunit_model::{Snapshot, format};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::text;
use crate::theme::Theme;

/// Two lines, plus one when the duplicator is on or there is a warning.
pub fn height(snap: &Snapshot) -> u16 {
    if snap.unit.duplicator.is_none() && warnings(snap).is_empty() {
        2
    } else {
        3
    }
}

fn warnings(snap: &Snapshot) -> Vec<String> {
    let mut w = Vec::new();
    match (&snap.unit.pairing_code, snap.unit.pairing) {
        (Some(code), true) => w.push(format!(
            "PAIRING CODE {code}: no admin key yet; log in with it and run `keys add`"
        )),
        (None, true) => {
            w.push("PAIRING: no admin key installed yet, the pairing code is accepted".into())
        }
        _ => {}
    }
    if snap.unit.store.volatile {
        w.push("image store is in RAM: images are lost at power-off".into());
    }
    w
}

/// `ssh admin@10.0.0.5` (with `-p` when not on port 22).
fn ssh_command(snap: &Snapshot) -> String {
    let u = &snap.unit;
    let Some(first) = u.addresses.first() else {
        return "no network address".to_string();
    };
    let port = if u.port == 0 || u.port == 22 {
        String::new()
    } else {
        format!("-p {} ", u.port)
    };
    let host = if first.contains(':') {
        format!("[{first}]")
    } else {
        first.clone()
    };
    let mut s = format!("ssh {port}admin@{host}");
    if u.addresses.len() > 1 {
        s.push_str(&format!(" (also {})", u.addresses[1..].join(", ")));
    }
    s
}

pub fn draw(frame: &mut Frame, area: Rect, snap: &Snapshot, theme: &Theme) {
    let u = &snap.unit;
    let name = if u.name.is_empty() {
        "copyunit"
    } else {
        u.name.as_str()
    };
    let store = &u.store;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!(" {} ", text::clean(name)), theme.title_focused),
            Span::raw(format!(" {}", text::clean(&ssh_command(snap)))),
            Span::styled("  up ", theme.header_label),
            Span::raw(format::duration(u.uptime_secs)),
            Span::styled("  store ", theme.header_label),
            Span::raw(format!(
                "{} free / {}",
                format::bytes(store.free_bytes),
                format::bytes(store.total_bytes)
            )),
        ]),
        Line::from(vec![
            Span::styled(" host key ", theme.header_label),
            Span::raw(if u.host_key_fingerprint.is_empty() {
                "-".to_string()
            } else {
                text::clean(&u.host_key_fingerprint)
            }),
            Span::styled(format!("  copyunit {}", u.version), theme.greyed),
        ]),
    ];
    let w = warnings(snap);
    if u.duplicator.is_some() || !w.is_empty() {
        let mut spans = vec![Span::raw(" ")];
        // First: it decides what happens to the next drive plugged in.
        if let Some(dup) = &u.duplicator {
            spans.push(Span::styled(
                format!(" DUPLICATOR: {} ", text::clean(&dup.image)),
                theme.banner,
            ));
            spans.push(Span::raw(format!(
                " every drive inserted gets it, verify {}",
                if dup.verify { "on" } else { "off" }
            )));
            spans.push(Span::styled("  A", theme.key));
            spans.push(Span::raw(" stops"));
        }
        for (i, msg) in w.into_iter().enumerate() {
            if i > 0 || u.duplicator.is_some() {
                spans.push(Span::raw("  "));
            }
            spans.push(Span::styled(format!("! {msg}"), theme.warn));
        }
        lines.push(Line::from(spans));
    }
    frame.render_widget(Paragraph::new(lines), area);
}
