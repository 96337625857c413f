//! Drawing: the whole dashboard as a function of a snapshot and the UI state.
//!
//! Layout, top to bottom: header (unit identity and warnings), Images,
//! Drives, Jobs, Log, and a one-line footer (status or key hints). Overlays
//! (notices, dialogs, help) are drawn last, on top.

mod header;
mod overlays;
mod panes;

use copyunit_model::Snapshot;
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::state::{Pane, Ui};
use crate::theme::Theme;

/// The smallest terminal the layout fits in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

/// Draws everything into `frame`.
pub fn draw(frame: &mut Frame, snap: &Snapshot, ui: &mut Ui, theme: &Theme) {
    let area = frame.area();
    ui.hits.clear();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        too_small(frame, area);
        return;
    }
    let header_h = header::height(snap);
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(header_h),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    header::draw(frame, head, snap, theme);

    let heights = pane_heights(body.height, snap);
    let [images, drives, jobs, log] = Layout::vertical(heights.map(Constraint::Length)).areas(body);
    panes::images(frame, images, snap, ui, theme);
    panes::drives(frame, drives, snap, ui, theme);
    panes::jobs(frame, jobs, snap, ui, theme);
    panes::log(frame, log, snap, ui, theme);
    footer(frame, foot, snap, ui, theme);

    overlays::notices(frame, body, ui, theme);
    overlays::dialog(frame, area, snap, ui, theme);
    if ui.help {
        overlays::help(frame, area, theme);
    }
}

fn too_small(frame: &mut Frame, area: Rect) {
    let msg = format!("terminal too small: need {MIN_WIDTH}x{MIN_HEIGHT}");
    let y = area.height.saturating_sub(2) / 2;
    let rest = Rect {
        y: area.y + y,
        height: area.height - y,
        ..area
    };
    frame.render_widget(
        Paragraph::new(msg)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        rest,
    );
}

/// Heights of Images, Drives, Jobs and Log: each gets its minimum, then
/// lines are handed out one at a time to panes that want more, and the Log
/// takes what is left.
fn pane_heights(avail: u16, snap: &Snapshot) -> [u16; 4] {
    // A pane is a title line, a column header (not Jobs) and its rows.
    let want = [
        (snap.images.len() + snap.uploads.len() + snap.partials.len()).max(1) + 2,
        snap.drives.len().max(1) + 2,
        panes::job_rows(snap).max(1) + 1,
        usize::MAX,
    ];
    let mut h = [3usize, 3, 3, 2];
    let mut left = usize::from(avail).saturating_sub(h.iter().sum());
    while left > 0 {
        let before = left;
        for i in 0..3 {
            if left > 0 && h[i] < want[i] {
                h[i] += 1;
                left -= 1;
            }
        }
        if left == before {
            break;
        }
    }
    h[3] += left;
    h.map(|v| u16::try_from(v).unwrap_or(u16::MAX))
}

fn footer(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &Ui, theme: &Theme) {
    if let Some(status) = &ui.status {
        frame.render_widget(Line::styled(format!(" {status}"), theme.warn), area);
        return;
    }
    let hints: &[(&str, &str)] = match ui.focus {
        // Nothing to act on: say so, and how to move around.
        _ if ui.view_only => &[("view only:", "ssh to act"), ("\u{2191}\u{2193}", "move")],
        Pane::Images if snap.unit.duplicator.is_some() => &[
            ("Enter", "choose image"),
            ("d", "delete"),
            ("A", "stop duplicator"),
        ],
        Pane::Images => &[
            ("Enter", "choose image"),
            ("d", "delete"),
            ("A", "duplicator"),
        ],
        Pane::Drives => &[
            ("Space", "toggle"),
            ("a", "all"),
            ("Enter", "copy"),
            ("w", "wipe"),
            ("r", "read"),
        ],
        Pane::Jobs => &[("c", "cancel job")],
        Pane::Log => &[("↑↓", "scroll")],
    };
    let mut spans = vec![Span::raw(" ")];
    let common: [(&str, &str); 3] = [("Tab", "pane"), ("?", "help"), ("q", "quit")];
    for (k, what) in hints.iter().chain(common.iter()) {
        spans.push(Span::styled(*k, theme.key));
        spans.push(Span::raw(format!(" {what}  ")));
    }
    frame.render_widget(Line::from(spans), area);
}
