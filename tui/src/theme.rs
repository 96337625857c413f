//! Styles of the dashboard, chosen once per terminal colour mode.
//!
//! Only the 16 named colours are used, so they degrade cleanly; in
//! [`ColorMode::Mono`] every meaning is carried by bold, dim, underline or
//! reverse video instead, since the backend sends no colour at all there.

use ratatui::style::{Color, Modifier, Style};

use crate::backend::ColorMode;

#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub title: Style,
    pub title_focused: Style,
    pub header_label: Style,
    pub column_header: Style,
    /// The row under the cursor.
    pub cursor: Style,
    /// Ineligible drives, finished things, secondary text.
    pub greyed: Style,
    pub selected: Style,
    pub ok: Style,
    pub warn: Style,
    pub error: Style,
    pub bar: Style,
    pub key: Style,
    /// A mode that changes what the unit does by itself (the duplicator).
    pub banner: Style,
}

impl Theme {
    pub fn new(mode: ColorMode) -> Theme {
        let mono = mode == ColorMode::Mono;
        let if_mono = |m: Modifier| if mono { m } else { Modifier::empty() };
        Theme {
            title: Style::new().add_modifier(Modifier::BOLD),
            title_focused: Style::new()
                .fg(Color::Cyan)
                .add_modifier(Modifier::BOLD | if_mono(Modifier::UNDERLINED)),
            header_label: Style::new().fg(Color::Cyan),
            column_header: Style::new()
                .fg(Color::Gray)
                .add_modifier(Modifier::UNDERLINED),
            cursor: Style::new().add_modifier(Modifier::REVERSED),
            greyed: Style::new()
                .fg(Color::DarkGray)
                .add_modifier(if_mono(Modifier::DIM)),
            selected: Style::new()
                .fg(Color::LightGreen)
                .add_modifier(Modifier::BOLD),
            ok: Style::new().fg(Color::Green),
            warn: Style::new()
                .fg(Color::Yellow)
                .add_modifier(if_mono(Modifier::BOLD)),
            error: Style::new()
                .fg(Color::LightRed)
                .add_modifier(Modifier::BOLD),
            bar: Style::new().fg(Color::Cyan),
            key: Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            banner: Style::new()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD | if_mono(Modifier::REVERSED)),
        }
    }
}
