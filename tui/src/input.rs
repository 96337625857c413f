//! Raw terminal input bytes -> key and mouse events.
//!
//! Bytes arrive from an SSH channel (or a tty) in arbitrary chunks: an escape
//! sequence or a UTF-8 character may be split across two reads. [`InputParser`]
//! keeps the unfinished tail and completes it with the next chunk.
//!
//! A lone ESC byte is ambiguous: it is the Escape key, or the start of a
//! sequence whose rest has not arrived yet. The parser holds it back; the
//! caller calls [`InputParser::flush_pending`] once no input has arrived for a
//! short while (~50 ms is what most terminal programs use), which turns what is
//! held into keys (ESC -> Escape, `ESC [` -> Alt-`[`, ...).
//!
//! Understood: printable UTF-8, Enter (CR, LF, CR LF), Tab, BackTab, Escape,
//! Backspace (DEL and ^H), Ctrl-letters, Alt-keys (ESC prefix), arrows, Home,
//! End, Insert, Delete, PgUp, PgDn in their CSI and SS3 forms (xterm, VT220,
//! rxvt, Linux console), F1-F12, xterm modifier parameters (`CSI 1;5A`),
//! kitty's `CSI code;mods u`, SGR mouse (`CSI < b;x;y M/m`) and X10 mouse.
//! Unknown sequences are dropped whole so their bytes never turn into keys.

/// Longest escape sequence kept while waiting for its end; longer ones are
/// garbage (or hostile) and are dropped so the buffer stays bounded.
const MAX_SEQUENCE: usize = 64;

/// A key, without modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCode {
    /// A printable character (for Ctrl-C this is `'c'` with [`Modifiers::CTRL`]).
    Char(char),
    Enter,
    Tab,
    BackTab,
    Esc,
    Backspace,
    Up,
    Down,
    Left,
    Right,
    Home,
    End,
    PageUp,
    PageDown,
    Insert,
    Delete,
    /// F1 to F12 (and beyond, where a terminal sends them).
    F(u8),
}

/// Modifier keys held with a key, as a small bit set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Modifiers(u8);

impl Modifiers {
    pub const NONE: Modifiers = Modifiers(0);
    pub const SHIFT: Modifiers = Modifiers(1);
    pub const ALT: Modifiers = Modifiers(2);
    pub const CTRL: Modifiers = Modifiers(4);

    pub fn contains(self, other: Modifiers) -> bool {
        self.0 & other.0 == other.0
    }

    /// xterm's modifier parameter: 1 + bits (shift 1, alt 2, ctrl 4, meta 8).
    fn from_xterm(param: u32) -> Modifiers {
        let bits = param.saturating_sub(1);
        let mut m = (bits & 0b111) as u8;
        if bits & 8 != 0 {
            // Meta is Alt for our purposes.
            m |= Modifiers::ALT.0;
        }
        Modifiers(m)
    }
}

impl std::ops::BitOr for Modifiers {
    type Output = Modifiers;
    fn bitor(self, rhs: Modifiers) -> Modifiers {
        Modifiers(self.0 | rhs.0)
    }
}

/// A key press.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyEvent {
    pub code: KeyCode,
    pub mods: Modifiers,
}

impl KeyEvent {
    pub fn new(code: KeyCode, mods: Modifiers) -> KeyEvent {
        KeyEvent { code, mods }
    }

    pub fn plain(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, Modifiers::NONE)
    }

    /// Ctrl plus a letter, e.g. `KeyEvent::ctrl('c')`.
    pub fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), Modifiers::CTRL)
    }

    fn with(mut self, mods: Modifiers) -> KeyEvent {
        self.mods = self.mods | mods;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MouseButton {
    Left,
    Middle,
    Right,
    WheelUp,
    WheelDown,
    /// Motion with no button held, or a button we do not name.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MouseKind {
    Press,
    Release,
    Drag,
}

/// A mouse report; `x` and `y` are zero-based cell coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MouseEvent {
    pub kind: MouseKind,
    pub button: MouseButton,
    pub x: u16,
    pub y: u16,
    pub mods: Modifiers,
}

/// What the terminal sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    Key(KeyEvent),
    Mouse(MouseEvent),
}

/// Incremental parser; one per terminal (SSH session).
#[derive(Debug, Default)]
pub struct InputParser {
    /// Bytes of an unfinished sequence or character.
    pending: Vec<u8>,
    /// The last byte consumed was CR: a following LF belongs to the same Enter.
    after_cr: bool,
}

/// Outcome of trying to parse at the start of a byte slice.
enum Step {
    /// An event and how many bytes it used.
    Event(Event, usize),
    /// Bytes to skip without an event (unknown or ignored sequence).
    Skip(usize),
    /// The slice ends inside a sequence: wait for more bytes.
    Incomplete,
}

impl InputParser {
    pub fn new() -> InputParser {
        InputParser::default()
    }

    /// Feeds a chunk of input and returns the events it completes.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        self.pending.extend_from_slice(bytes);
        let buf = std::mem::take(&mut self.pending);
        let mut at = 0;
        while at < buf.len() {
            match self.step(&buf[at..], false) {
                Step::Event(ev, used) => {
                    out.push(ev);
                    at += used;
                }
                Step::Skip(used) => at += used,
                Step::Incomplete => {
                    if buf.len() - at > MAX_SEQUENCE {
                        // Never completes sensibly: drop the introducer and go on.
                        at += 1;
                        continue;
                    }
                    break;
                }
            }
        }
        self.pending = buf[at..].to_vec();
        out
    }

    /// True while bytes are held back waiting for the rest of a sequence;
    /// the caller should then call [`flush_pending`](Self::flush_pending)
    /// after a short idle period.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Interprets the held-back bytes as if no more input will follow: a lone
    /// ESC becomes the Escape key, `ESC x` becomes Alt-x, a truncated UTF-8
    /// character is dropped.
    pub fn flush_pending(&mut self) -> Vec<Event> {
        let buf = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        let mut at = 0;
        while at < buf.len() {
            match self.step(&buf[at..], true) {
                Step::Event(ev, used) => {
                    out.push(ev);
                    at += used;
                }
                Step::Skip(used) => at += used,
                // `final_` makes every step complete; this arm is defensive.
                Step::Incomplete => break,
            }
        }
        out
    }

    fn step(&mut self, b: &[u8], final_: bool) -> Step {
        let after_cr = std::mem::replace(&mut self.after_cr, false);
        let key = |code| Step::Event(Event::Key(KeyEvent::plain(code)), 1);
        match b[0] {
            0x1b => escape(b, final_),
            b'\r' => {
                self.after_cr = true;
                key(KeyCode::Enter)
            }
            b'\n' if after_cr => Step::Skip(1),
            b'\n' => key(KeyCode::Enter),
            b'\t' => key(KeyCode::Tab),
            0x7f | 0x08 => key(KeyCode::Backspace),
            0x00 => Step::Event(Event::Key(KeyEvent::ctrl(' ')), 1),
            c @ 0x01..=0x1a => Step::Event(Event::Key(KeyEvent::ctrl((b'a' + c - 1) as char)), 1),
            c @ 0x1c..=0x1f => {
                Step::Event(Event::Key(KeyEvent::ctrl((b'\\' + c - 0x1c) as char)), 1)
            }
            _ => utf8_char(b, final_),
        }
    }
}

/// One UTF-8 character at the start of `b`.
fn utf8_char(b: &[u8], final_: bool) -> Step {
    let len = match b[0] {
        0x00..=0x7f => 1,
        0xc2..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf4 => 4,
        // Continuation byte or invalid lead: skip it.
        _ => return Step::Skip(1),
    };
    if b.len() < len {
        // A truncated character may still be invalid; check what we have.
        if b[1..].iter().any(|&c| c & 0xc0 != 0x80) {
            return Step::Skip(1);
        }
        return if final_ {
            Step::Skip(b.len())
        } else {
            Step::Incomplete
        };
    }
    match std::str::from_utf8(&b[..len]) {
        Ok(s) => match s.chars().next() {
            Some(c) => Step::Event(Event::Key(KeyEvent::plain(KeyCode::Char(c))), len),
            None => Step::Skip(len),
        },
        Err(_) => Step::Skip(1),
    }
}

/// A sequence starting with ESC.
fn escape(b: &[u8], final_: bool) -> Step {
    let Some(&next) = b.get(1) else {
        return if final_ {
            Step::Event(Event::Key(KeyEvent::plain(KeyCode::Esc)), 1)
        } else {
            Step::Incomplete
        };
    };
    match next {
        b'[' => match csi(b) {
            Step::Incomplete if final_ => alt_char('[', 2),
            s => s,
        },
        b'O' => match b.get(2) {
            Some(&c) => match ss3_key(c) {
                Some(code) => Step::Event(Event::Key(KeyEvent::plain(code)), 3),
                None => Step::Skip(3),
            },
            None if final_ => alt_char('O', 2),
            None => Step::Incomplete,
        },
        // ESC ESC: the first is a key of its own.
        0x1b => Step::Event(Event::Key(KeyEvent::plain(KeyCode::Esc)), 1),
        0x7f | 0x08 => Step::Event(
            Event::Key(KeyEvent::new(KeyCode::Backspace, Modifiers::ALT)),
            2,
        ),
        b'\r' => Step::Event(Event::Key(KeyEvent::new(KeyCode::Enter, Modifiers::ALT)), 2),
        // ESC then another control key: Escape, then that key on its own.
        0x00..=0x1f => Step::Event(Event::Key(KeyEvent::plain(KeyCode::Esc)), 1),
        _ => match utf8_char(&b[1..], final_) {
            Step::Event(Event::Key(k), used) => {
                Step::Event(Event::Key(k.with(Modifiers::ALT)), used + 1)
            }
            Step::Incomplete => Step::Incomplete,
            _ => Step::Event(Event::Key(KeyEvent::plain(KeyCode::Esc)), 1),
        },
    }
}

fn alt_char(c: char, used: usize) -> Step {
    Step::Event(
        Event::Key(KeyEvent::new(KeyCode::Char(c), Modifiers::ALT)),
        used,
    )
}

fn ss3_key(c: u8) -> Option<KeyCode> {
    Some(match c {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'M' => KeyCode::Enter,
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'R' => KeyCode::F(3),
        b'S' => KeyCode::F(4),
        _ => return None,
    })
}

/// `ESC [ ...`: a control sequence. `b` starts with ESC.
fn csi(b: &[u8]) -> Step {
    // Linux console F1-F5: ESC [ [ A..E.
    if b.get(2) == Some(&b'[') {
        return match b.get(3) {
            None => Step::Incomplete,
            Some(&c @ b'A'..=b'E') => {
                Step::Event(Event::Key(KeyEvent::plain(KeyCode::F(c - b'A' + 1))), 4)
            }
            Some(_) => Step::Skip(4),
        };
    }
    // Parameter bytes 0x30-0x3F, intermediates 0x20-0x2F, then a final 0x40-0x7E.
    let mut i = 2;
    while i < b.len() && (0x20..=0x3f).contains(&b[i]) {
        i += 1;
    }
    let Some(&fin) = b.get(i) else {
        return Step::Incomplete;
    };
    if !(0x40..=0x7e).contains(&fin) {
        // Not a valid sequence: drop what we scanned, keep the odd byte.
        return Step::Skip(i);
    }
    let len = i + 1;
    let params = &b[2..i];
    if params.first() == Some(&b'<') {
        return match sgr_mouse(&params[1..], fin) {
            Some(m) => Step::Event(Event::Mouse(m), len),
            None => Step::Skip(len),
        };
    }
    if fin == b'M' && params.is_empty() {
        // X10 mouse: three raw bytes follow.
        if b.len() < len + 3 {
            return Step::Incomplete;
        }
        return match x10_mouse(&b[len..len + 3]) {
            Some(m) => Step::Event(Event::Mouse(m), len + 3),
            None => Step::Skip(len + 3),
        };
    }
    if params.iter().any(|c| !(c.is_ascii_digit() || *c == b';')) {
        // Private or intermediate forms we do not use (e.g. DECRPM replies).
        return Step::Skip(len);
    }
    let nums: Vec<u32> = params
        .split(|&c| c == b';')
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    let first = nums.first().copied().unwrap_or(0);
    let mods = nums
        .get(1)
        .map_or(Modifiers::NONE, |&m| Modifiers::from_xterm(m));
    let code = match fin {
        b'A' => KeyCode::Up,
        b'B' => KeyCode::Down,
        b'C' => KeyCode::Right,
        b'D' => KeyCode::Left,
        b'H' => KeyCode::Home,
        b'F' => KeyCode::End,
        b'Z' => KeyCode::BackTab,
        // `CSI row;col R` is a cursor position report, not F3: only
        // `CSI 1;mods P..S` are keys.
        b'P'..=b'S' if first > 1 => return Step::Skip(len),
        b'P' => KeyCode::F(1),
        b'Q' => KeyCode::F(2),
        b'R' => KeyCode::F(3),
        b'S' => KeyCode::F(4),
        b'~' => match tilde_key(first) {
            Some(code) => code,
            None => return Step::Skip(len),
        },
        b'u' => match kitty_key(first) {
            Some(code) => code,
            None => return Step::Skip(len),
        },
        // Focus reports, cursor position reports and the like.
        _ => return Step::Skip(len),
    };
    Step::Event(Event::Key(KeyEvent::new(code, mods)), len)
}

/// `CSI n ~` keys (VT220 and rxvt numbering).
fn tilde_key(n: u32) -> Option<KeyCode> {
    Some(match n {
        1 | 7 => KeyCode::Home,
        2 => KeyCode::Insert,
        3 => KeyCode::Delete,
        4 | 8 => KeyCode::End,
        5 => KeyCode::PageUp,
        6 => KeyCode::PageDown,
        11..=15 => KeyCode::F((n - 10) as u8),
        17..=21 => KeyCode::F((n - 11) as u8),
        23 | 24 => KeyCode::F((n - 12) as u8),
        _ => return None,
    })
}

/// kitty's `CSI codepoint ; mods u`.
fn kitty_key(n: u32) -> Option<KeyCode> {
    Some(match n {
        9 => KeyCode::Tab,
        13 => KeyCode::Enter,
        27 => KeyCode::Esc,
        127 => KeyCode::Backspace,
        _ => KeyCode::Char(char::from_u32(n).filter(|c| !c.is_control())?),
    })
}

fn mouse_button(cb: u32) -> (MouseButton, Modifiers, bool) {
    let mut mods = Modifiers::NONE;
    if cb & 4 != 0 {
        mods = mods | Modifiers::SHIFT;
    }
    if cb & 8 != 0 {
        mods = mods | Modifiers::ALT;
    }
    if cb & 16 != 0 {
        mods = mods | Modifiers::CTRL;
    }
    let motion = cb & 32 != 0;
    let button = match (cb & 64 != 0, cb & 3) {
        (false, 0) => MouseButton::Left,
        (false, 1) => MouseButton::Middle,
        (false, 2) => MouseButton::Right,
        (true, 0) => MouseButton::WheelUp,
        (true, 1) => MouseButton::WheelDown,
        _ => MouseButton::Other,
    };
    (button, mods, motion)
}

fn sgr_mouse(params: &[u8], fin: u8) -> Option<MouseEvent> {
    let s = std::str::from_utf8(params).ok()?;
    let mut it = s.split(';').map(|p| p.parse::<u32>().ok());
    let (cb, x, y) = (it.next()??, it.next()??, it.next()??);
    let (button, mods, motion) = mouse_button(cb);
    let kind = match (fin, motion) {
        (b'm', _) => MouseKind::Release,
        (b'M', true) => MouseKind::Drag,
        (b'M', false) => MouseKind::Press,
        _ => return None,
    };
    Some(MouseEvent {
        kind,
        button,
        x: u16::try_from(x.checked_sub(1)?).ok()?,
        y: u16::try_from(y.checked_sub(1)?).ok()?,
        mods,
    })
}

fn x10_mouse(b: &[u8]) -> Option<MouseEvent> {
    let cb = u32::from(b[0].checked_sub(32)?);
    let (button, mods, motion) = mouse_button(cb);
    let (kind, button) = if cb & 3 == 3 && cb & 64 == 0 {
        // X10 cannot say which button was released.
        (MouseKind::Release, MouseButton::Other)
    } else if motion {
        (MouseKind::Drag, button)
    } else {
        (MouseKind::Press, button)
    };
    Some(MouseEvent {
        kind,
        button,
        x: u16::from(b[1].checked_sub(33)?),
        y: u16::from(b[2].checked_sub(33)?),
        mods,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(code: KeyCode) -> Event {
        Event::Key(KeyEvent::plain(code))
    }
    fn km(code: KeyCode, mods: Modifiers) -> Event {
        Event::Key(KeyEvent::new(code, mods))
    }
    fn ch(c: char) -> Event {
        k(KeyCode::Char(c))
    }

    /// Parses `input` whole, then again split at every possible point into
    /// two chunks and one byte at a time: all must give `expected`.
    #[track_caller]
    fn check(input: &[u8], expected: &[Event]) {
        let mut p = InputParser::new();
        let mut got = p.feed(input);
        got.extend(p.flush_pending());
        assert_eq!(got, expected, "whole input {input:?}");

        for split in 1..input.len() {
            let mut p = InputParser::new();
            let mut got = p.feed(&input[..split]);
            got.extend(p.feed(&input[split..]));
            got.extend(p.flush_pending());
            assert_eq!(got, expected, "input {input:?} split at {split}");
        }

        let mut p = InputParser::new();
        let mut got = Vec::new();
        for b in input {
            got.extend(p.feed(std::slice::from_ref(b)));
        }
        got.extend(p.flush_pending());
        assert_eq!(got, expected, "input {input:?} byte by byte");
    }

    #[test]
    fn printable_ascii_and_utf8() {
        check(b"aZ ?", &[ch('a'), ch('Z'), ch(' '), ch('?')]);
        check("é€😀".as_bytes(), &[ch('é'), ch('€'), ch('😀')]);
    }

    #[test]
    fn invalid_utf8_is_skipped_not_fatal() {
        check(b"\xff\x80a\xc3(", &[ch('a'), ch('(')]);
    }

    #[test]
    fn enter_tab_backspace() {
        check(b"\r", &[k(KeyCode::Enter)]);
        check(b"\n", &[k(KeyCode::Enter)]);
        check(b"\r\n", &[k(KeyCode::Enter)]);
        check(b"\r\r", &[k(KeyCode::Enter), k(KeyCode::Enter)]);
        check(b"\t", &[k(KeyCode::Tab)]);
        check(b"\x7f\x08", &[k(KeyCode::Backspace), k(KeyCode::Backspace)]);
    }

    #[test]
    fn ctrl_letters() {
        check(b"\x03", &[Event::Key(KeyEvent::ctrl('c'))]);
        check(
            b"\x01\x1a",
            &[
                Event::Key(KeyEvent::ctrl('a')),
                Event::Key(KeyEvent::ctrl('z')),
            ],
        );
        check(b"\x00", &[Event::Key(KeyEvent::ctrl(' '))]);
    }

    #[test]
    fn lone_escape_waits_for_flush() {
        let mut p = InputParser::new();
        assert_eq!(p.feed(b"\x1b"), []);
        assert!(p.has_pending());
        assert_eq!(p.flush_pending(), [k(KeyCode::Esc)]);
        assert!(!p.has_pending());
        check(b"\x1b", &[k(KeyCode::Esc)]);
        check(b"\x1b\x1b", &[k(KeyCode::Esc), k(KeyCode::Esc)]);
        check(
            b"\x1b\x03",
            &[k(KeyCode::Esc), Event::Key(KeyEvent::ctrl('c'))],
        );
    }

    #[test]
    fn alt_prefix() {
        check(b"\x1bx", &[km(KeyCode::Char('x'), Modifiers::ALT)]);
        check(
            "\x1bé".as_bytes(),
            &[km(KeyCode::Char('é'), Modifiers::ALT)],
        );
        check(b"\x1b\x7f", &[km(KeyCode::Backspace, Modifiers::ALT)]);
        // An unfinished introducer flushed on idle is Alt plus that character.
        check(b"\x1b[", &[km(KeyCode::Char('['), Modifiers::ALT)]);
        check(b"\x1bO", &[km(KeyCode::Char('O'), Modifiers::ALT)]);
    }

    #[test]
    fn arrows_in_csi_and_ss3_forms() {
        let arrows = [
            k(KeyCode::Up),
            k(KeyCode::Down),
            k(KeyCode::Right),
            k(KeyCode::Left),
        ];
        check(b"\x1b[A\x1b[B\x1b[C\x1b[D", &arrows);
        check(b"\x1bOA\x1bOB\x1bOC\x1bOD", &arrows);
    }

    #[test]
    fn modified_arrows() {
        check(b"\x1b[1;5A", &[km(KeyCode::Up, Modifiers::CTRL)]);
        check(b"\x1b[1;2B", &[km(KeyCode::Down, Modifiers::SHIFT)]);
        check(b"\x1b[1;3C", &[km(KeyCode::Right, Modifiers::ALT)]);
        check(
            b"\x1b[1;6D",
            &[km(KeyCode::Left, Modifiers::CTRL | Modifiers::SHIFT)],
        );
    }

    #[test]
    fn home_and_end_in_every_common_form() {
        let he = [k(KeyCode::Home), k(KeyCode::End)];
        check(b"\x1b[H\x1b[F", &he); // xterm
        check(b"\x1bOH\x1bOF", &he); // xterm application mode
        check(b"\x1b[1~\x1b[4~", &he); // VT220, Linux console, tmux
        check(b"\x1b[7~\x1b[8~", &he); // rxvt
    }

    #[test]
    fn paging_insert_delete() {
        check(
            b"\x1b[5~\x1b[6~\x1b[2~\x1b[3~",
            &[
                k(KeyCode::PageUp),
                k(KeyCode::PageDown),
                k(KeyCode::Insert),
                k(KeyCode::Delete),
            ],
        );
        check(b"\x1b[3;5~", &[km(KeyCode::Delete, Modifiers::CTRL)]);
    }

    #[test]
    fn backtab() {
        check(b"\x1b[Z", &[k(KeyCode::BackTab)]);
    }

    #[test]
    fn function_keys() {
        let f = |n| k(KeyCode::F(n));
        // xterm F1-F4 (SS3), then F5-F12 (CSI ~).
        check(b"\x1bOP\x1bOQ\x1bOR\x1bOS", &[f(1), f(2), f(3), f(4)]);
        check(
            b"\x1b[15~\x1b[17~\x1b[18~\x1b[19~\x1b[20~\x1b[21~\x1b[23~\x1b[24~",
            &[f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12)],
        );
        // VT220 / rxvt F1-F4.
        check(
            b"\x1b[11~\x1b[12~\x1b[13~\x1b[14~",
            &[f(1), f(2), f(3), f(4)],
        );
        // Linux console F1-F5.
        check(
            b"\x1b[[A\x1b[[B\x1b[[C\x1b[[D\x1b[[E",
            &[f(1), f(2), f(3), f(4), f(5)],
        );
        // Modified F-keys: xterm Shift-F1, Ctrl-F5.
        check(b"\x1b[1;2P", &[km(KeyCode::F(1), Modifiers::SHIFT)]);
        check(b"\x1b[15;5~", &[km(KeyCode::F(5), Modifiers::CTRL)]);
    }

    #[test]
    fn keypad_enter_in_application_mode() {
        check(b"\x1bOM", &[k(KeyCode::Enter)]);
    }

    #[test]
    fn kitty_keyboard_protocol() {
        check(b"\x1b[99;5u", &[km(KeyCode::Char('c'), Modifiers::CTRL)]);
        check(b"\x1b[27u", &[k(KeyCode::Esc)]);
    }

    #[test]
    fn sgr_mouse() {
        let m = |kind, button, x, y| {
            Event::Mouse(MouseEvent {
                kind,
                button,
                x,
                y,
                mods: Modifiers::NONE,
            })
        };
        check(
            b"\x1b[<0;10;5M",
            &[m(MouseKind::Press, MouseButton::Left, 9, 4)],
        );
        check(
            b"\x1b[<0;10;5m",
            &[m(MouseKind::Release, MouseButton::Left, 9, 4)],
        );
        check(
            b"\x1b[<64;1;1M",
            &[m(MouseKind::Press, MouseButton::WheelUp, 0, 0)],
        );
        check(
            b"\x1b[<65;200;60M",
            &[m(MouseKind::Press, MouseButton::WheelDown, 199, 59)],
        );
        check(
            b"\x1b[<32;3;4M",
            &[m(MouseKind::Drag, MouseButton::Left, 2, 3)],
        );
    }

    #[test]
    fn x10_mouse() {
        check(
            b"\x1b[M !\"",
            &[Event::Mouse(MouseEvent {
                kind: MouseKind::Press,
                button: MouseButton::Left,
                x: 0,
                y: 1,
                mods: Modifiers::NONE,
            })],
        );
    }

    #[test]
    fn unknown_sequences_vanish_whole() {
        // Focus in/out, a cursor position report, a DEC private reply.
        check(b"\x1b[I\x1b[O\x1b[12;40R\x1b[?1;2ca", &[ch('a')]);
        check(b"\x1b[99~b", &[ch('b')]);
        check(b"\x1bO9c", &[ch('c')]);
    }

    #[test]
    fn keys_mixed_with_sequences() {
        check(
            b"j\x1b[Bk \x1b[6~q",
            &[
                ch('j'),
                k(KeyCode::Down),
                ch('k'),
                ch(' '),
                k(KeyCode::PageDown),
                ch('q'),
            ],
        );
    }

    #[test]
    fn endless_sequence_is_bounded() {
        let mut p = InputParser::new();
        let mut input = b"\x1b[".to_vec();
        input.extend(std::iter::repeat_n(b'1', 1000));
        let got = p.feed(&input);
        assert!(
            p.pending.len() <= MAX_SEQUENCE + 1,
            "pending {}",
            p.pending.len()
        );
        // The digits after the dropped introducer come through as keys; what
        // matters is that nothing grows without bound.
        assert!(got.iter().all(|e| *e == ch('1') || *e == ch('[')));
    }
}
