//! A ratatui backend that writes ANSI escape sequences into a byte buffer.
//!
//! The dashboard runs over an SSH channel (or a tty the caller owns), so it
//! never touches a file descriptor: each frame's diff is appended to a
//! `Vec<u8>` the caller takes and sends. Colours are degraded here, in one
//! place, to what the client's terminal understands ([`ColorMode`]).

use std::convert::Infallible;
use std::fmt::Write as _;

use ratatui::backend::{Backend, ClearType, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::style::{Color, Modifier};

/// How many colours the client's terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// 24-bit colour (`COLORTERM=truecolor`).
    TrueColor,
    /// xterm's 256-colour palette (`TERM=*-256color`).
    #[default]
    Ansi256,
    /// The 16 basic colours (`TERM=linux`, `xterm`, ...).
    Ansi16,
    /// No colour at all: bold, dim and reverse video only (`TERM=vt100`, `dumb`).
    Mono,
}

impl ColorMode {
    /// Picks a mode from the client's `TERM` (from the pty request) and
    /// `COLORTERM` (if the client sent it; most SSH clients do not).
    pub fn from_term(term: &str, colorterm: Option<&str>) -> ColorMode {
        let colorterm = colorterm.unwrap_or("").to_ascii_lowercase();
        if colorterm.contains("truecolor") || colorterm.contains("24bit") {
            return ColorMode::TrueColor;
        }
        let term = term.to_ascii_lowercase();
        if term.contains("direct") || term.contains("truecolor") {
            ColorMode::TrueColor
        } else if term.contains("256") {
            ColorMode::Ansi256
        } else if term.is_empty()
            || term == "dumb"
            || term.starts_with("vt1")
            || term.starts_with("vt2")
        {
            ColorMode::Mono
        } else {
            ColorMode::Ansi16
        }
    }
}

/// Bytes that switch the client's terminal to the dashboard: alternate
/// screen, hidden cursor, no auto-wrap, cleared; with `mouse`, SGR mouse
/// reports for clicks and the wheel.
pub fn enter_bytes(mouse: bool) -> Vec<u8> {
    let mut s = String::from("\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[0m\x1b[H\x1b[2J");
    if mouse {
        s.push_str("\x1b[?1000h\x1b[?1006h");
    }
    s.into_bytes()
}

/// Bytes that undo [`enter_bytes`] whatever it enabled: mouse off, colours
/// reset, cursor shown, auto-wrap back on, main screen restored.
pub fn leave_bytes() -> Vec<u8> {
    b"\x1b[?1006l\x1b[?1000l\x1b[0m\x1b[?25h\x1b[?7h\x1b[?1049l".to_vec()
}

/// The style last sent to the terminal, to send only changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pen {
    fg: Color,
    bg: Color,
    modifier: Modifier,
}

impl Pen {
    const RESET: Pen = Pen {
        fg: Color::Reset,
        bg: Color::Reset,
        modifier: Modifier::empty(),
    };
}

/// Writes frames as ANSI into [`AnsiBackend::take_output`].
#[derive(Debug)]
pub struct AnsiBackend {
    out: String,
    size: Size,
    colors: ColorMode,
    /// Where the terminal's cursor is, when we know.
    cursor: Option<Position>,
    /// Whether the cursor is shown, when we know.
    cursor_visible: Option<bool>,
    pen: Pen,
}

impl AnsiBackend {
    pub fn new(width: u16, height: u16, colors: ColorMode) -> AnsiBackend {
        AnsiBackend {
            out: String::new(),
            size: Size::new(width, height),
            colors,
            cursor: None,
            cursor_visible: Some(false),
            pen: Pen::RESET,
        }
    }

    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = Size::new(width, height);
        self.cursor = None;
    }

    /// The bytes written since the last call.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out).into_bytes()
    }

    fn move_to(&mut self, x: u16, y: u16) {
        if self.cursor != Some(Position { x, y }) {
            let _ = write!(self.out, "\x1b[{};{}H", y + 1, x + 1);
            self.cursor = Some(Position { x, y });
        }
    }

    fn set_pen(&mut self, pen: Pen) {
        if pen == self.pen {
            return;
        }
        // Start from a reset: simpler than removing single attributes and
        // only a few bytes more.
        self.out.push_str("\x1b[0");
        for (m, code) in [
            (Modifier::BOLD, "1"),
            (Modifier::DIM, "2"),
            (Modifier::ITALIC, "3"),
            (Modifier::UNDERLINED, "4"),
            (Modifier::SLOW_BLINK, "5"),
            (Modifier::RAPID_BLINK, "6"),
            (Modifier::REVERSED, "7"),
            (Modifier::HIDDEN, "8"),
            (Modifier::CROSSED_OUT, "9"),
        ] {
            if pen.modifier.contains(m) {
                self.out.push(';');
                self.out.push_str(code);
            }
        }
        push_color(&mut self.out, self.colors, pen.fg, false);
        push_color(&mut self.out, self.colors, pen.bg, true);
        self.out.push('m');
        self.pen = pen;
    }
}

impl Backend for AnsiBackend {
    type Error = Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Infallible>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        for (x, y, cell) in content {
            self.move_to(x, y);
            self.set_pen(Pen {
                fg: cell.fg,
                bg: cell.bg,
                modifier: cell.modifier,
            });
            let sym = cell.symbol();
            // Control characters would move the real cursor: never send them.
            if sym.chars().any(char::is_control) {
                self.out.push(' ');
            } else {
                self.out.push_str(sym);
            }
            // Only plain ASCII has a width we are sure of; after anything
            // else the next cell is addressed explicitly.
            self.cursor = if sym.len() == 1 && sym.is_ascii() {
                Some(Position { x: x + 1, y })
            } else {
                None
            };
        }
        Ok(())
    }

    fn hide_cursor(&mut self) -> Result<(), Infallible> {
        if self.cursor_visible != Some(false) {
            self.out.push_str("\x1b[?25l");
            self.cursor_visible = Some(false);
        }
        Ok(())
    }

    fn show_cursor(&mut self) -> Result<(), Infallible> {
        if self.cursor_visible != Some(true) {
            self.out.push_str("\x1b[?25h");
            self.cursor_visible = Some(true);
        }
        Ok(())
    }

    fn get_cursor_position(&mut self) -> Result<Position, Infallible> {
        // Never query the client (it may answer late or never): say what we know.
        Ok(self.cursor.unwrap_or_default())
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Infallible> {
        let p = position.into();
        self.move_to(p.x, p.y);
        Ok(())
    }

    fn clear(&mut self) -> Result<(), Infallible> {
        self.set_pen(Pen::RESET);
        self.out.push_str("\x1b[2J");
        Ok(())
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Infallible> {
        self.set_pen(Pen::RESET);
        self.out.push_str(match clear_type {
            ClearType::All => "\x1b[2J",
            ClearType::AfterCursor => "\x1b[J",
            ClearType::BeforeCursor => "\x1b[1J",
            ClearType::CurrentLine => "\x1b[2K",
            ClearType::UntilNewLine => "\x1b[K",
        });
        Ok(())
    }

    fn size(&self) -> Result<Size, Infallible> {
        Ok(self.size)
    }

    fn window_size(&mut self) -> Result<WindowSize, Infallible> {
        Ok(WindowSize {
            columns_rows: self.size,
            pixels: Size::new(0, 0),
        })
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        // Leave the terminal with default colours between frames, so nothing
        // else written to it (or a disconnect) inherits our pen.
        self.set_pen(Pen::RESET);
        Ok(())
    }
}

/// Appends `;<colour parameters>` for `color` as foreground or background.
fn push_color(out: &mut String, mode: ColorMode, color: Color, bg: bool) {
    let base = if bg { 40 } else { 30 };
    let basic = |out: &mut String, idx: u8| {
        // 0-7 normal, 8-15 bright.
        let code = if idx < 8 {
            base + u16::from(idx)
        } else {
            base + 60 + u16::from(idx - 8)
        };
        let _ = write!(out, ";{code}");
    };
    if mode == ColorMode::Mono {
        return;
    }
    match color {
        Color::Reset => {}
        Color::Black => basic(out, 0),
        Color::Red => basic(out, 1),
        Color::Green => basic(out, 2),
        Color::Yellow => basic(out, 3),
        Color::Blue => basic(out, 4),
        Color::Magenta => basic(out, 5),
        Color::Cyan => basic(out, 6),
        Color::Gray => basic(out, 7),
        Color::DarkGray => basic(out, 8),
        Color::LightRed => basic(out, 9),
        Color::LightGreen => basic(out, 10),
        Color::LightYellow => basic(out, 11),
        Color::LightBlue => basic(out, 12),
        Color::LightMagenta => basic(out, 13),
        Color::LightCyan => basic(out, 14),
        Color::White => basic(out, 15),
        Color::Indexed(i) => match mode {
            ColorMode::TrueColor | ColorMode::Ansi256 => {
                let _ = write!(out, ";{};5;{i}", base + 8);
            }
            _ => basic(out, nearest_basic(indexed_rgb(i))),
        },
        Color::Rgb(r, g, b) => match mode {
            ColorMode::TrueColor => {
                let _ = write!(out, ";{};2;{r};{g};{b}", base + 8);
            }
            ColorMode::Ansi256 => {
                let _ = write!(out, ";{};5;{}", base + 8, nearest_256(r, g, b));
            }
            _ => basic(out, nearest_basic((r, g, b))),
        },
    }
}

/// Levels of xterm's 6x6x6 colour cube.
const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// xterm's default RGB for the 16 basic colours.
const BASIC_RGB: [(u8, u8, u8); 16] = [
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
];

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    d(a.0, b.0).pow(2) + d(a.1, b.1).pow(2) + d(a.2, b.2).pow(2)
}

fn indexed_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => BASIC_RGB[usize::from(i)],
        16..=231 => {
            let i = i - 16;
            (
                CUBE[usize::from(i / 36)],
                CUBE[usize::from(i / 6 % 6)],
                CUBE[usize::from(i % 6)],
            )
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

fn nearest_basic(rgb: (u8, u8, u8)) -> u8 {
    (0u8..16)
        .min_by_key(|&i| dist(rgb, BASIC_RGB[usize::from(i)]))
        .unwrap_or(7)
}

fn nearest_256(r: u8, g: u8, b: u8) -> u8 {
    let level = |v: u8| {
        (0..6)
            .min_by_key(|&i| (i32::from(CUBE[i]) - i32::from(v)).unsigned_abs())
            .unwrap_or(0) as u8
    };
    let (lr, lg, lb) = (level(r), level(g), level(b));
    let cube = 16 + 36 * lr + 6 * lg + lb;
    let avg = ((u16::from(r) + u16::from(g) + u16::from(b)) / 3) as u8;
    let gray = 232 + (avg.saturating_sub(3) / 10).min(23);
    if dist((r, g, b), indexed_rgb(gray)) < dist((r, g, b), indexed_rgb(cube)) {
        gray
    } else {
        cube
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::style::{Style, Stylize};
    use ratatui::text::Line;

    #[test]
    fn colour_mode_follows_term() {
        assert_eq!(
            ColorMode::from_term("xterm-256color", Some("truecolor")),
            ColorMode::TrueColor
        );
        assert_eq!(
            ColorMode::from_term("xterm-256color", None),
            ColorMode::Ansi256
        );
        assert_eq!(
            ColorMode::from_term("tmux-256color", Some("")),
            ColorMode::Ansi256
        );
        assert_eq!(ColorMode::from_term("linux", None), ColorMode::Ansi16);
        assert_eq!(ColorMode::from_term("xterm", None), ColorMode::Ansi16);
        assert_eq!(ColorMode::from_term("vt100", None), ColorMode::Mono);
        assert_eq!(ColorMode::from_term("dumb", None), ColorMode::Mono);
        assert_eq!(ColorMode::from_term("", None), ColorMode::Mono);
    }

    fn sgr(mode: ColorMode, color: Color) -> String {
        let mut s = String::new();
        push_color(&mut s, mode, color, false);
        s
    }

    #[test]
    fn colours_degrade_to_what_the_terminal_has() {
        let orange = Color::Rgb(255, 135, 0);
        assert_eq!(sgr(ColorMode::TrueColor, orange), ";38;2;255;135;0");
        assert_eq!(sgr(ColorMode::Ansi256, orange), ";38;5;208");
        assert_eq!(sgr(ColorMode::Ansi16, orange), ";33"); // yellow
        assert_eq!(sgr(ColorMode::Mono, orange), "");
        assert_eq!(
            sgr(ColorMode::Ansi256, Color::Rgb(128, 128, 128)),
            ";38;5;244"
        );
        assert_eq!(sgr(ColorMode::Ansi16, Color::Indexed(196)), ";91");
        assert_eq!(sgr(ColorMode::Ansi16, Color::Green), ";32");
        assert_eq!(sgr(ColorMode::Ansi16, Color::DarkGray), ";90");
    }

    fn draw(term: &mut Terminal<AnsiBackend>, lines: &[Line<'static>]) -> String {
        term.draw(|f| {
            for (i, l) in lines.iter().enumerate() {
                let mut area = f.area();
                area.y += i as u16;
                area.height = 1;
                f.render_widget(l.clone(), area);
            }
        })
        .unwrap_or_else(|e| match e {});
        String::from_utf8(term.backend_mut().take_output()).unwrap_or_default()
    }

    #[test]
    fn frames_are_diffed_and_cursor_moves_only_when_needed() {
        let mut term = Terminal::new(AnsiBackend::new(10, 2, ColorMode::Ansi16))
            .unwrap_or_else(|e| match e {});
        let first = draw(&mut term, &[Line::from("ab"), Line::from("c")]);
        // Blank cells equal the initial (cleared) screen: only 3 cells are sent.
        assert_eq!(first, "\x1b[1;1Hab\x1b[2;1Hc");
        assert_eq!(draw(&mut term, &[Line::from("ab"), Line::from("c")]), "");
        let styled = draw(&mut term, &[Line::from("ax".red().bold()), Line::from("c")]);
        assert_eq!(styled, "\x1b[1;1H\x1b[0;1;31max\x1b[0m");
    }

    #[test]
    fn mono_keeps_reverse_video_but_no_colour() {
        let mut term =
            Terminal::new(AnsiBackend::new(4, 1, ColorMode::Mono)).unwrap_or_else(|e| match e {});
        let out = draw(
            &mut term,
            &[Line::styled("ok", Style::new().reversed().fg(Color::Green))],
        );
        // A styled line styles its whole row.
        assert_eq!(out, "\x1b[1;1H\x1b[0;7mok  \x1b[0m");
    }

    #[test]
    fn enter_and_leave_are_symmetric() {
        let enter = String::from_utf8(enter_bytes(true)).unwrap_or_default();
        let leave = String::from_utf8(leave_bytes()).unwrap_or_default();
        for (on, off) in [
            ("\x1b[?1049h", "\x1b[?1049l"),
            ("\x1b[?25l", "\x1b[?25h"),
            ("\x1b[?7l", "\x1b[?7h"),
            ("\x1b[?1000h", "\x1b[?1000l"),
            ("\x1b[?1006h", "\x1b[?1006l"),
        ] {
            assert!(
                enter.contains(on) && leave.contains(off),
                "{on:?} / {off:?}"
            );
        }
        assert!(
            !String::from_utf8(enter_bytes(false))
                .unwrap_or_default()
                .contains("1000h")
        );
    }
}
