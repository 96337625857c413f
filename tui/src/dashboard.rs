//! [`Dashboard`]: one terminal's dashboard, from input bytes to output bytes.

use copyunit_model::Snapshot;
use ratatui::Terminal;
use ratatui::layout::Rect;

use crate::backend::{AnsiBackend, ColorMode, enter_bytes, leave_bytes};
use crate::input::{Event, InputParser, KeyEvent};
use crate::state::{Action, Ui};
use crate::theme::Theme;
use crate::views;

/// How a dashboard is set up; one per terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub width: u16,
    pub height: u16,
    pub colors: ColorMode,
    /// Refuse every action politely (the local console, unless configured).
    pub view_only: bool,
    /// Ask the terminal for mouse reports in [`Dashboard::enter_bytes`].
    pub mouse: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            width: 80,
            height: 24,
            colors: ColorMode::default(),
            view_only: false,
            mouse: false,
        }
    }
}

/// One terminal's dashboard: input parser, UI state and the last frame.
pub struct Dashboard {
    opts: Options,
    parser: InputParser,
    ui: Ui,
    theme: Theme,
    terminal: Terminal<AnsiBackend>,
    /// The snapshot the screen shows, to redraw only on change.
    shown: Option<Snapshot>,
    /// UI state or size changed since the last frame.
    dirty: bool,
}

impl std::fmt::Debug for Dashboard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("opts", &self.opts)
            .field("ui", &self.ui)
            .finish_non_exhaustive()
    }
}

impl Dashboard {
    pub fn new(opts: Options) -> Dashboard {
        let backend = AnsiBackend::new(opts.width, opts.height, opts.colors);
        let terminal = Terminal::new(backend).unwrap_or_else(|e| match e {});
        Dashboard {
            opts,
            parser: InputParser::new(),
            ui: Ui::new(opts.view_only),
            theme: Theme::new(opts.colors),
            terminal,
            shown: None,
            dirty: true,
        }
    }

    /// Bytes to send once before the first frame.
    pub fn enter_bytes(&self) -> Vec<u8> {
        enter_bytes(self.opts.mouse)
    }

    /// Bytes to send when leaving, whatever the reason (quit, error, end of
    /// session): they restore the client's terminal.
    pub fn leave_bytes(&self) -> Vec<u8> {
        leave_bytes()
    }

    /// Feeds raw input; returns what the user asked for, in order.
    pub fn handle_input(&mut self, bytes: &[u8], snap: &Snapshot) -> Vec<Action> {
        let events = self.parser.feed(bytes);
        self.handle_events(events, snap)
    }

    /// True while input bytes are held back (a lone ESC, or part of a
    /// sequence): call [`flush_pending`](Self::flush_pending) if no more
    /// input arrives within ~50 ms.
    pub fn has_pending_input(&self) -> bool {
        self.parser.has_pending()
    }

    /// Treats held-back input as complete (a lone ESC is the Escape key).
    pub fn flush_pending(&mut self, snap: &Snapshot) -> Vec<Action> {
        let events = self.parser.flush_pending();
        self.handle_events(events, snap)
    }

    /// Applies one key, as if typed (for callers with their own key source).
    pub fn handle_key(&mut self, key: KeyEvent, snap: &Snapshot) -> Vec<Action> {
        self.handle_events(vec![Event::Key(key)], snap)
    }

    fn handle_events(&mut self, events: Vec<Event>, snap: &Snapshot) -> Vec<Action> {
        if events.is_empty() {
            return Vec::new();
        }
        self.ui.observe(snap);
        let mut actions = Vec::new();
        for ev in events {
            match ev {
                // Ctrl-L: the screen got garbled (output lost, another program
                // wrote to the tty): repaint everything.
                Event::Key(k) if k == KeyEvent::ctrl('l') => self.redraw_all(),
                Event::Key(k) => actions.extend(self.ui.key(k, snap)),
                Event::Mouse(m) => self.ui.mouse(m, snap),
            }
            if actions.contains(&Action::Quit) {
                break;
            }
        }
        self.dirty = true;
        actions
    }

    /// The terminal changed size (pty window-change).
    pub fn resize(&mut self, width: u16, height: u16) {
        if (width, height) == (self.opts.width, self.opts.height) {
            return;
        }
        self.opts.width = width;
        self.opts.height = height;
        self.terminal.backend_mut().resize(width, height);
        // Clears the screen and forgets the last frame: the next is drawn whole.
        let _ = self.terminal.resize(Rect::new(0, 0, width, height));
        self.dirty = true;
    }

    /// Makes the next [`render`](Self::render) clear the screen and send
    /// every cell, for when the client's screen no longer matches what was
    /// sent (output dropped, screen garbled). Ctrl-L does the same.
    pub fn redraw_all(&mut self) {
        // Clears the back buffer and queues a clear-screen.
        let _ = self.terminal.clear();
        self.dirty = true;
    }

    /// Whether [`render`](Self::render) would draw something for `snap`.
    /// Rate limiting (~10 frames/s) is the caller's: call this at most that
    /// often, and render when it says so.
    pub fn needs_redraw(&self, snap: &Snapshot) -> bool {
        self.dirty || self.shown.as_ref() != Some(snap)
    }

    /// Draws `snap` and returns the bytes that bring the client's screen up
    /// to date (only the cells that changed), or None if nothing changed.
    pub fn render(&mut self, snap: &Snapshot) -> Option<Vec<u8>> {
        if !self.needs_redraw(snap) {
            return None;
        }
        if self.shown.as_ref() != Some(snap) {
            self.ui.observe(snap);
            self.shown = Some(snap.clone());
        }
        self.dirty = false;
        let (ui, theme) = (&mut self.ui, &self.theme);
        self.terminal
            .draw(|frame| views::draw(frame, snap, ui, theme))
            .unwrap_or_else(|e| match e {});
        let out = self.terminal.backend_mut().take_output();
        if out.is_empty() { None } else { Some(out) }
    }

    /// Shows `text` on the footer line until the next key, e.g. the unit's
    /// answer to a request ("copy refused: drive sdb is mounted at /media/x").
    pub fn show_message(&mut self, text: impl Into<String>) {
        self.ui.status = Some(crate::text::clean(&text.into()));
        self.dirty = true;
    }

    /// The UI state, for tests and for a caller that wants to show it.
    pub fn ui(&self) -> &Ui {
        &self.ui
    }
}
