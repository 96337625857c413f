//! What is drawn on top of the panes: job notices, questions, the help.

use copyunit_model::{Snapshot, format};
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use crate::state::{Dialog, HELP, Ui};
use crate::text;
use crate::theme::Theme;

/// A box of at most `w` x `h` cells centred in `area`.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Draws a bordered box with `lines`, sized to fit them in `within`.
fn popup(
    frame: &mut Frame,
    within: Rect,
    title: &str,
    lines: Vec<Line<'static>>,
    border: Style,
) -> Rect {
    let width = lines
        .iter()
        .map(|l| l.width())
        .max()
        .unwrap_or(0)
        .max(title.len() + 4)
        .saturating_add(4)
        .min(usize::from(within.width.saturating_sub(2)).max(20));
    let area = centered(within, width as u16, lines.len() as u16 + 2);
    let block = Block::bordered()
        .border_style(border)
        .title(Span::styled(format!(" {title} "), border));
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(Wrap { trim: false }),
        area,
    );
    area
}

fn keys(theme: &Theme, pairs: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (k, what) in pairs {
        spans.push(Span::styled(format!(" {k}"), theme.key));
        spans.push(Span::raw(format!(" {what} ")));
    }
    Line::from(spans)
}

/// The oldest unacknowledged notice, at the bottom of the panes.
pub fn notices(frame: &mut Frame, body: Rect, ui: &Ui, theme: &Theme) {
    let Some(n) = ui.notices.front() else {
        return;
    };
    let border = if n.ok { theme.ok } else { theme.error };
    let mut lines: Vec<Line> = n
        .lines
        .iter()
        .map(|l| Line::raw(format!(" {}", text::clean(l))))
        .collect();
    let more = ui.notices.len() - 1;
    let mut hint = vec![("Enter/Esc", "acknowledge")];
    let more_text = format!("({more} more)");
    if more > 0 {
        hint.push(("", more_text.as_str()));
    }
    lines.push(keys(theme, &hint));
    // Keep it in the lower part of the screen, above the footer.
    let height = (lines.len() as u16 + 2).min(body.height);
    let lower = Rect {
        y: body.y + body.height - height,
        height,
        ..body
    };
    popup(frame, lower, &text::clean(&n.title), lines, border);
}

pub fn dialog(frame: &mut Frame, area: Rect, snap: &Snapshot, ui: &Ui, theme: &Theme) {
    let Some(dialog) = &ui.dialog else {
        return;
    };
    let drive_line = |name: &str| -> String {
        text::clean(&match snap.drives.iter().find(|d| d.name == name) {
            Some(d) => format!(
                "  {}  {}  {}{}",
                d.name,
                text::drive_model(d),
                text::drive_size(d),
                d.slot
                    .as_ref()
                    .map_or(String::new(), |s| format!("  slot {s}"))
            ),
            None => format!("  {name}  (gone)"),
        })
    };
    let on_off = |b: bool| if b { "on" } else { "off" };
    let (title, lines, border) = match dialog {
        Dialog::ConfirmCopy {
            image,
            targets,
            verify,
        } => {
            let img = snap.images.iter().find(|i| &i.name == image);
            let need = img.and_then(copyunit_model::room::content_bytes);
            let desc = img.map_or_else(String::new, |i| {
                let content = match i.content_size {
                    Some(c) if i.format.is_compressed() => format!(" > {}", format::bytes(c)),
                    _ => String::new(),
                };
                format!("  {} {}{content}", format::bytes(i.size), i.format.as_str())
            });
            let mut lines = vec![
                Line::from(vec![
                    Span::raw(" Image "),
                    Span::styled(text::clean(image), theme.title),
                    Span::raw(desc),
                ]),
                Line::styled(
                    format!(
                        " EVERYTHING on {} will be ERASED:",
                        if targets.len() == 1 {
                            "this drive".to_string()
                        } else {
                            format!("these {} drives", targets.len())
                        }
                    ),
                    theme.error,
                ),
            ];
            // One drive per line when they fit, else names only, wrapped.
            if targets.len() + 8 <= usize::from(area.height) {
                for t in targets {
                    let small = snap
                        .drives
                        .iter()
                        .find(|d| &d.name == t)
                        .is_some_and(|d| copyunit_model::room::fits(image, need, d).is_err());
                    let mut spans = vec![Span::raw(drive_line(t))];
                    if small {
                        spans.push(Span::styled("  TOO SMALL", theme.error));
                    }
                    lines.push(Line::from(spans));
                }
            } else {
                lines.push(Line::raw(format!("  {}", text::clean(&targets.join(" ")))));
            }
            lines.push(Line::from(vec![
                Span::raw(" Verify after writing: "),
                Span::styled(on_off(*verify), theme.title),
                Span::styled("  (v toggles)", theme.greyed),
            ]));
            lines.push(keys(theme, &[("Enter/y", "start"), ("Esc/n", "back")]));
            ("Start copy?", lines, theme.warn)
        }
        Dialog::ConfirmCancel { job } => {
            let title = snap
                .jobs
                .iter()
                .find(|j| j.id == *job)
                .map_or_else(|| format!("#{job}"), |j| text::clean(&text::job_title(j)));
            (
                "Cancel job?",
                vec![
                    Line::raw(format!(" Cancel job {title}?")),
                    Line::raw(" Drives being written are left incomplete."),
                    keys(
                        theme,
                        &[("Enter/y", "cancel the job"), ("Esc/n", "keep it running")],
                    ),
                ],
                theme.warn,
            )
        }
        Dialog::ConfirmRemove { image } => {
            let size = snap
                .images
                .iter()
                .find(|i| &i.name == image)
                .map_or_else(String::new, |i| format!(" ({})", format::bytes(i.size)));
            (
                "Delete image?",
                vec![
                    Line::raw(format!(
                        " Delete {}{size} from the store?",
                        text::clean(image)
                    )),
                    Line::raw(" This cannot be undone."),
                    keys(theme, &[("Enter/y", "delete"), ("Esc/n", "back")]),
                ],
                theme.warn,
            )
        }
        Dialog::ConfirmWipe { drive, full } => (
            "Wipe drive?",
            vec![
                Line::raw(" Wipe this drive?"),
                Line::raw(drive_line(drive)),
                Line::styled(" EVERYTHING on it will be ERASED.", theme.error),
                Line::from(vec![
                    Span::raw(" Full wipe (zero every byte): "),
                    Span::styled(on_off(*full), theme.title),
                    Span::styled(
                        "  (f toggles; off: signatures and tables only)",
                        theme.greyed,
                    ),
                ]),
                keys(theme, &[("Enter/y", "wipe"), ("Esc/n", "back")]),
            ],
            theme.warn,
        ),
        Dialog::ReadName {
            drive,
            editor,
            error,
        } => {
            let mut lines = vec![
                Line::raw(" Read this drive into a new image:"),
                Line::raw(drive_line(drive)),
                Line::from(vec![
                    Span::raw(" Name: "),
                    Span::styled(text::clean(&editor.value()), theme.title),
                ]),
            ];
            if let Some(e) = error {
                lines.push(Line::styled(format!(" {}", text::clean(e)), theme.error));
            }
            lines.push(keys(theme, &[("Enter", "next"), ("Esc", "back")]));
            let area = popup(frame, area, "Read drive", lines, theme.warn);
            // The terminal's own cursor marks the insertion point.
            let x = area.x + 8 + editor.text[..editor.cursor].len() as u16;
            if x < area.right().saturating_sub(1) && area.height > 4 {
                frame.set_cursor_position(Position { x, y: area.y + 3 });
            }
            return;
        }
        Dialog::ConfirmDuplicator { image, verify } => {
            let desc = snap
                .images
                .iter()
                .find(|i| &i.name == image)
                .map_or_else(String::new, |i| {
                    format!("{} {}", format::bytes(i.size), i.format.as_str())
                });
            (
                "Start duplicator?",
                vec![
                    Line::from(vec![
                        Span::raw(" Duplicator: write "),
                        Span::styled(text::clean(image), theme.title),
                        Span::raw(" to every drive inserted from now on,"),
                    ]),
                    Line::from(vec![
                        Span::raw(" verify "),
                        Span::styled(on_off(*verify), theme.title),
                        Span::styled("  (v toggles)", theme.greyed),
                        Span::styled(format!("  image {desc}"), theme.greyed),
                    ]),
                    Line::styled(
                        " EVERYTHING on each drive inserted will be ERASED.",
                        theme.error,
                    ),
                    Line::raw(" Drives attached now are left alone."),
                    Line::raw(" A finished drive shows \"done - remove\"."),
                    keys(theme, &[("Enter/y", "start"), ("Esc/n", "back")]),
                ],
                theme.warn,
            )
        }
        Dialog::ConfirmStopDuplicator { image } => (
            "Stop duplicator?",
            vec![
                Line::raw(format!(
                    " Stop writing {} to every drive inserted?",
                    text::clean(image)
                )),
                Line::raw(" Jobs already running go on (c cancels one)."),
                keys(theme, &[("Enter/y", "stop"), ("Esc/n", "keep it on")]),
            ],
            theme.warn,
        ),
        Dialog::ConfirmRead { drive, name } => (
            "Read drive?",
            vec![
                Line::raw(" Read this drive:"),
                Line::raw(drive_line(drive)),
                Line::raw(format!(" into the new image {}?", text::clean(name))),
                keys(theme, &[("Enter/y", "start"), ("Esc/n", "back")]),
            ],
            theme.warn,
        ),
    };
    popup(frame, area, title, lines, border);
}

pub fn help(frame: &mut Frame, area: Rect, theme: &Theme) {
    let width = HELP.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut lines: Vec<Line> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<width$}"), theme.key),
                Span::raw(*what),
            ])
        })
        .collect();
    lines.push(Line::styled(
        " The copy: choose an image, select drives, confirm, watch.",
        theme.greyed,
    ));
    lines.push(keys(theme, &[("Esc ? q", "close")]));
    popup(frame, area, "Keys", lines, theme.title_focused);
}
