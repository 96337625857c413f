//! The four panes: Images, Drives, Jobs and the event Log.

use copyunit_model::{EventKind, ImageState, Job, JobState, Snapshot, format};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState};

use crate::state::{self, Hit, Pane, Ui, not_selectable};
use crate::text;
use crate::theme::Theme;

/// A table cell showing text that may come from a client or a device.
fn cell(s: impl AsRef<str>) -> Cell<'static> {
    Cell::from(Line::raw(text::clean(s.as_ref())))
}

/// Width of the bar part of a progress bar in tables.
const BAR: usize = 8;

/// A pane's frame: one title line with a rule, and the area below it.
fn frame_pane(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    extra: String,
    focused: bool,
    theme: &Theme,
) -> Rect {
    let style = if focused {
        theme.title_focused
    } else {
        theme.title
    };
    let mut spans = vec![Span::styled(format!(" {title} "), style)];
    if !extra.is_empty() {
        spans.push(Span::styled(format!("{extra} "), theme.greyed));
    }
    let block = Block::new()
        .borders(Borders::TOP)
        .border_style(theme.greyed)
        .title(Line::from(spans));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    inner
}

/// Renders `table` in `inner` with the cursor on `selected`, and records
/// which item each visible row shows (`row_item` maps a row to an item).
#[allow(clippy::too_many_arguments)]
fn table_with_cursor(
    frame: &mut Frame,
    inner: Rect,
    table: Table,
    state: &mut TableState,
    selected: Option<usize>,
    focused: bool,
    theme: &Theme,
    pane: Pane,
    row_item: &[Option<usize>],
) -> Hit {
    let table = table.column_spacing(1).row_highlight_style(if focused {
        theme.cursor
    } else {
        Style::new()
    });
    state.select(selected);
    frame.render_stateful_widget(table, inner, state);
    // Rows start below the column header.
    let body = Rect {
        y: inner.y.saturating_add(1),
        height: inner.height.saturating_sub(1),
        ..inner
    };
    let items = (0..usize::from(body.height))
        .map(|i| row_item.get(state.offset() + i).copied().flatten())
        .collect();
    Hit {
        pane,
        area: body,
        items,
    }
}

fn header_row<const N: usize>(names: [&'static str; N], theme: &Theme) -> Row<'static> {
    Row::new(names).style(theme.column_header)
}

pub fn images(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &mut Ui, theme: &Theme) {
    let focused = ui.focus == Pane::Images;
    let store = &snap.unit.store;
    let mut extra = format!(
        "{} in {}, {} free",
        format::bytes(store.images_bytes),
        plural(snap.images.len(), "image"),
        format::bytes(store.free_bytes)
    );
    if !snap.uploads.is_empty() {
        extra.push_str(&format!(
            ", {} arriving",
            plural(snap.uploads.len(), "upload")
        ));
    }
    if !snap.partials.is_empty() {
        extra.push_str(&format!(
            ", {} held by {}",
            format::bytes(store.partial_bytes),
            plural(snap.partials.len(), "interrupted upload")
        ));
    }
    if store.full {
        extra.push_str(", STORE FULL");
    }
    let inner = frame_pane(frame, area, "Images", extra, focused, theme);

    let mut rows = Vec::new();
    let mut row_item = Vec::new();
    for (i, img) in snap.images.iter().enumerate() {
        let chosen = ui.image.as_deref() == Some(img.name.as_str());
        let (state, style) = match &img.state {
            ImageState::Corrupt(why) => (format!("CORRUPT: {}", text::clean(why)), theme.error),
            ImageState::Ok if img.expected_sha256.as_deref() == Some(img.sha256.as_str()) => {
                ("ok, sum matches".to_string(), theme.ok)
            }
            ImageState::Ok => ("ok".to_string(), Style::new()),
        };
        let size = format::bytes(img.size);
        let format = if img.bmap {
            format!("{}+bmap", img.format.as_str())
        } else {
            img.format.as_str().to_string()
        };
        rows.push(Row::new([
            Cell::from(if chosen { "»" } else { " " }).style(theme.selected),
            cell(&img.name).style(if chosen { theme.selected } else { Style::new() }),
            Cell::from(size),
            Cell::from(format),
            cell(img.sha256.chars().take(12).collect::<String>()),
            Cell::from(text::date_time(img.added)[..10].to_string()),
            Cell::from(state).style(style),
        ]));
        row_item.push(Some(i));
    }
    for up in &snap.uploads {
        let pct = format::percent(up.bytes, up.expected);
        rows.push(
            Row::new([
                Cell::from("↑"),
                cell(&up.name),
                Cell::from(format::bytes(up.bytes)),
                Cell::from("upload"),
                Cell::from(text::bar(pct, 7)),
                Cell::from(
                    up.expected
                        .map_or(String::new(), |e| format!("of {}", format::bytes(e))),
                ),
                Cell::from(format!("arriving {}", format::rate(up.rate_bps))),
            ])
            .style(theme.bar),
        );
        row_item.push(None);
    }
    // Interrupted uploads: shown for the space they hold, never chosen
    // (the cursor skips them, like uploads); `rm NAME` clears one.
    for p in &snap.partials {
        rows.push(
            Row::new([
                Cell::from("…"),
                cell(&p.name),
                Cell::from(format::bytes(p.bytes)),
                Cell::from("partial"),
                Cell::from(""),
                Cell::from(text::date_time(p.since)[..10].to_string()),
                Cell::from("interrupted: resume it, or `rm` it"),
            ])
            .style(theme.greyed),
        );
        row_item.push(None);
    }
    if rows.is_empty() {
        rows.push(Row::new(["", "(no images: upload one with sftp or scp)"]).style(theme.greyed));
    }
    let table = Table::new(
        rows,
        [
            Constraint::Length(1),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Length(10),
            Constraint::Fill(1),
        ],
    )
    .header(header_row(
        ["", "Image", "Size", "Format", "SHA-256", "Added", "State"],
        theme,
    ));
    let selected = state::cursor_image(snap, &mut ui.images).map(|_| ui.images.index);
    let hit = table_with_cursor(
        frame,
        inner,
        table,
        &mut ui.tables.images,
        selected,
        focused,
        theme,
        Pane::Images,
        &row_item,
    );
    ui.hits.push(hit);
}

pub fn drives(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &mut Ui, theme: &Theme) {
    let focused = ui.focus == Pane::Drives;
    let extra = match (&ui.image, ui.targets.len()) {
        (Some(img), 0) => format!(
            "{} chosen: select targets with Space or a",
            text::clean(img)
        ),
        (Some(img), n) => format!(
            "write {} to {}: Enter to confirm",
            text::clean(img),
            plural(n, "drive")
        ),
        (None, 0) => String::new(),
        (None, n) => format!("{} selected: choose an image", plural(n, "drive")),
    };
    let inner = frame_pane(frame, area, "Drives", extra, focused, theme);

    let mut rows = Vec::new();
    for d in &snap.drives {
        let blocked = not_selectable(d);
        let mark = if ui.targets.contains(&d.name) {
            "[x]"
        } else if d.job.is_none() && d.eligible {
            "[ ]"
        } else {
            " - "
        };
        let target = d.job.and_then(|id| {
            let job = snap.jobs.iter().find(|j| j.id == id)?;
            job.targets
                .iter()
                .find(|t| t.drive == d.name)
                .map(|t| (job, t))
        });
        let (state, state_style) = if let Some((job, t)) = target {
            (
                format!(
                    "{:<9} {}",
                    format!("{} #{}", text::phase(t.phase), job.id),
                    text::bar(format::percent(t.bytes_done, t.bytes_total), BAR)
                ),
                theme.bar,
            )
        } else if let Some(id) = d.job {
            (format!("busy #{id}"), theme.bar)
        } else if d.done_remove {
            ("done - remove".to_string(), theme.ok)
        } else if let Some(why) = &blocked {
            (text::clean(why), theme.greyed)
        } else {
            ("ready".to_string(), theme.ok)
        };
        let row_style = if d.eligible || d.job.is_some() {
            Style::new()
        } else {
            theme.greyed
        };
        rows.push(
            Row::new([
                Cell::from(mark).style(theme.selected),
                cell(d.slot.as_deref().unwrap_or("-")),
                cell(&d.name),
                cell(text::drive_model(d)),
                Cell::from(text::drive_size(d)),
                Cell::from(text::kind(d.kind)),
                Cell::from(state).style(state_style),
            ])
            .style(row_style),
        );
    }
    if rows.is_empty() {
        rows.push(Row::new(["", "", "(no drives: plug one in)"]).style(theme.greyed));
    }
    let row_item: Vec<Option<usize>> = (0..snap.drives.len()).map(Some).collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(3),
            Constraint::Length(5),
            Constraint::Length(7),
            Constraint::Fill(2),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Fill(3),
        ],
    )
    .header(header_row(
        ["", "Slot", "Name", "Model", "Size", "Kind", "State"],
        theme,
    ));
    let selected = state::cursor_drive(snap, &mut ui.drives).map(|_| ui.drives.index);
    let hit = table_with_cursor(
        frame,
        inner,
        table,
        &mut ui.tables.drives,
        selected,
        focused,
        theme,
        Pane::Drives,
        &row_item,
    );
    ui.hits.push(hit);
}

/// Rows a job takes: its own, plus one per target while it runs, or one per
/// failed target once finished.
fn rows_of(job: &Job) -> usize {
    1 + if job.state.is_finished() {
        job.targets.iter().filter(|t| t.error.is_some()).count()
    } else {
        job.targets.len()
    }
}

pub fn job_rows(snap: &Snapshot) -> usize {
    snap.jobs.iter().map(rows_of).sum()
}

pub fn jobs(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &mut Ui, theme: &Theme) {
    let focused = ui.focus == Pane::Jobs;
    let ordered = state::ordered_jobs(snap);
    let running = ordered.iter().filter(|j| !j.state.is_finished()).count();
    let extra = format!("{running} running, {} finished", ordered.len() - running);
    let inner = frame_pane(frame, area, "Jobs", extra, focused, theme);

    // A job's line, then its targets' lines in fixed columns.
    let mut lines = Vec::new();
    let mut row_item = Vec::new();
    let mut job_line = Vec::new();
    for (i, job) in ordered.iter().enumerate() {
        job_line.push(lines.len());
        row_item.push(Some(i));
        let (done, total) = text::job_progress(job);
        let state_style = match job.state {
            JobState::Running => theme.bar,
            JobState::Done => theme.ok,
            JobState::Failed | JobState::Interrupted => theme.error,
            JobState::Cancelled => theme.warn,
        };
        let summary = if job.state.is_finished() {
            let took = job
                .finished
                .map(|f| format!("took {}", format::duration(f.saturating_sub(job.created))))
                .unwrap_or_default();
            let verified = if job.verify && job.state == JobState::Done {
                ", verified"
            } else {
                ""
            };
            match &job.error {
                Some(e) => format!("{took}: {}", text::clean(e)),
                None => format!("{took}{verified}"),
            }
        } else {
            let rate: u64 = job.targets.iter().map(|t| t.rate_bps).sum();
            let eta = job.targets.iter().filter_map(|t| t.eta_secs).max();
            let mut s = format!(
                "{}  {}  {}",
                if job.verify {
                    "verify on"
                } else {
                    "verify off"
                },
                bytes_of(done, total),
                format::rate(rate)
            );
            if let Some(eta) = eta {
                s.push_str(&format!("  ETA {}", format::duration(eta)));
            }
            s
        };
        let title_style = if job.state.is_finished() {
            theme.greyed
        } else {
            theme.title
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(" {}  ", text::clean(&text::job_title(job))),
                title_style,
            ),
            Span::styled(text::job_state(job.state), state_style),
            Span::styled(format!("  {summary}"), theme.greyed),
        ]));
        for t in &job.targets {
            if job.state.is_finished() && t.error.is_none() {
                continue;
            }
            let mut phase = text::phase(t.phase).to_string();
            if let Some(fill) = t.buffer_fill {
                phase.push_str(&format!(" buf {fill}%"));
            }
            let rate = if t.phase.is_final() {
                String::new()
            } else {
                format::rate(t.rate_bps)
            };
            let mut spans = vec![
                Span::raw(format!("   {:<8} {:<9} ", text::clean(&t.drive), phase)),
                Span::styled(
                    text::bar(format::percent(t.bytes_done, t.bytes_total), BAR),
                    theme.bar,
                ),
                Span::raw(format!(
                    " {:>17} {:>11}  ",
                    bytes_of(t.bytes_done, t.bytes_total),
                    rate
                )),
            ];
            match (&t.error, t.eta_secs) {
                (Some(e), _) => spans.push(Span::styled(text::clean(e), theme.error)),
                (None, Some(eta)) if !t.phase.is_final() => {
                    spans.push(Span::raw(format!("ETA {}", format::duration(eta))))
                }
                _ => {}
            }
            lines.push(Line::from(spans));
            row_item.push(None);
        }
    }
    if lines.is_empty() {
        lines.push(Line::styled(
            " (no jobs yet: choose an image, then drives)",
            theme.greyed,
        ));
    }

    // Scroll so the cursor's job line (and, when it fits, its targets) shows.
    let selected = ui
        .jobs
        .resolve(&state::job_keys(snap))
        .and_then(|i| job_line.get(i).copied());
    let height = usize::from(inner.height);
    let mut offset = ui.tables.jobs.offset().min(lines.len().saturating_sub(1));
    if let Some(sel) = selected {
        let sel_end = job_line
            .iter()
            .find(|&&l| l > sel)
            .copied()
            .unwrap_or(lines.len());
        if sel < offset {
            offset = sel;
        } else if sel_end > offset + height {
            offset = sel_end.saturating_sub(height).min(sel);
        }
        if focused {
            lines[sel] = lines[sel].clone().patch_style(theme.cursor);
        }
    }
    *ui.tables.jobs.offset_mut() = offset;
    let shown: Vec<Line> = lines.into_iter().skip(offset).take(height).collect();
    frame.render_widget(Paragraph::new(shown), inner);
    let items = (0..height)
        .map(|i| row_item.get(offset + i).copied().flatten())
        .collect();
    ui.hits.push(Hit {
        pane: Pane::Jobs,
        area: inner,
        items,
    });
}

/// `1.0/2.0 GiB`, or `100.0 MiB/2.0 GiB` when the units differ.
fn bytes_of(done: u64, total: Option<u64>) -> String {
    let Some(t) = total else {
        return format::bytes(done);
    };
    let (d, t) = (format::bytes(done), format::bytes(t));
    match (d.split_once(' '), t.split_once(' ')) {
        (Some((dn, du)), Some((_, tu))) if du == tu => format!("{dn}/{t}"),
        _ => format!("{d}/{t}"),
    }
}

pub fn log(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &mut Ui, theme: &Theme) {
    let focused = ui.focus == Pane::Log;
    let scroll = ui.log_scroll.min(snap.events.len().saturating_sub(1));
    let extra = if scroll > 0 {
        format!("{scroll} back (Down to follow)")
    } else {
        String::new()
    };
    let inner = frame_pane(frame, area, "Log", extra, focused, theme);
    let visible = usize::from(inner.height);
    let end = snap.events.len() - scroll.min(snap.events.len());
    let start = end.saturating_sub(visible);
    let lines: Vec<Line> = snap.events[start..end]
        .iter()
        .map(|e| {
            let style = match e.kind {
                EventKind::JobDone | EventKind::UploadDone => theme.ok,
                EventKind::JobFailed => theme.error,
                EventKind::Warning => theme.warn,
                EventKind::DriveRemoved | EventKind::ImageRemoved => theme.greyed,
                _ => Style::new(),
            };
            Line::from(vec![
                Span::styled(format!(" {} ", text::clock(e.at)), theme.greyed),
                Span::styled(text::clean(&e.message), style),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
    ui.hits.push(Hit {
        pane: Pane::Log,
        area: inner,
        items: Vec::new(),
    });
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}
