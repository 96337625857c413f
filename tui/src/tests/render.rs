//! The bytes the dashboard sends: diffed frames that a real terminal
//! emulator turns back into exactly the screen the views drew.

use super::*;
use crate::{ColorMode, Options};

/// The views' own screen (TestBackend) for the same state.
fn expected_screen(c: &Client, snap: &Snapshot) -> Vec<String> {
    let mut ui = Ui::new(false);
    ui.observe(snap);
    ui.focus = c.dash.ui().focus;
    let (rows, cols) = c.vt.screen().size();
    screen(snap, &mut ui, (cols.get(), rows.get()))
}

#[test]
fn the_client_sees_what_the_views_drew() {
    for (w, h) in [(80, 24), (120, 40), (200, 60), (40, 10)] {
        let snap = busy();
        let mut c = Client::at(w, h);
        assert!(c.render(&snap).is_some());
        assert_eq!(c.screen(), expected_screen(&c, &snap), "at {w}x{h}");
    }
}

#[test]
fn an_unchanged_snapshot_is_not_redrawn() {
    let snap = busy();
    let mut c = Client::at(80, 24);
    assert!(c.dash.needs_redraw(&snap));
    assert!(c.render(&snap).is_some());
    assert!(!c.dash.needs_redraw(&snap));
    assert_eq!(c.render(&snap), None);
    // An equal copy is no change either.
    assert_eq!(c.render(&snap.clone()), None);
}

#[test]
fn progress_sends_only_the_cells_that_changed() {
    let mut snap = busy();
    let mut c = Client::at(200, 60);
    let first = c.render(&snap).map_or(0, |b| b.len());
    snap.jobs[0].targets[0].bytes_done += 256 * MIB; // sdb 50% -> 62%
    let second = c.render(&snap).map_or(0, |b| b.len());
    assert!(second > 0);
    assert!(
        second * 20 < first,
        "a progress step sent {second} bytes, the full frame {first}"
    );
    assert_eq!(c.screen(), expected_screen(&c, &snap));
}

#[test]
fn a_key_that_changes_nothing_visible_sends_nothing() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    // Up at the top of the list: state unchanged, frame identical.
    c.dash.handle_input(b"k", &snap);
    assert!(c.dash.needs_redraw(&snap));
    assert_eq!(c.render(&snap), None);
}

#[test]
fn resize_redraws_the_whole_screen_at_the_new_size() {
    let snap = busy();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    for (w, h) in [(120, 40), (60, 16), (30, 8), (100, 30)] {
        c.dash.resize(w, h);
        let (rows, cols) = (
            std::num::NonZeroU16::new(h).unwrap_or(std::num::NonZeroU16::MIN),
            std::num::NonZeroU16::new(w).unwrap_or(std::num::NonZeroU16::MIN),
        );
        // The terminal reflows on its own; whatever it kept must be cleared.
        c.vt.screen_mut().set_size(rows, cols);
        assert!(c.render(&snap).is_some(), "nothing drawn at {w}x{h}");
        assert_eq!(c.screen(), expected_screen(&c, &snap), "at {w}x{h}");
    }
}

#[test]
fn degenerate_sizes_do_not_panic() {
    let snap = busy();
    for (w, h) in [(0, 0), (1, 1), (0, 24), (80, 0), (2, 1)] {
        let mut dash = crate::Dashboard::new(Options {
            width: w,
            height: h,
            ..Options::default()
        });
        let _ = dash.render(&snap);
        let _ = dash.handle_input(b"\t jk\r?\x1b[<0;1;1M", &snap);
        let _ = dash.render(&snap);
        dash.resize(0, 0);
        let _ = dash.render(&snap);
        dash.resize(80, 24);
        assert!(dash.render(&snap).is_some());
    }
}

#[test]
fn leaving_restores_the_terminal() {
    let snap = unit();
    let mut c = Client::new(Options {
        mouse: true,
        ..Options::default()
    });
    assert!(c.vt.screen().alternate_screen());
    assert!(c.vt.screen().hide_cursor());
    assert_ne!(
        c.vt.screen().mouse_protocol_mode(),
        vt100::MouseProtocolMode::None
    );
    c.render(&snap);
    // Even from inside the read-name field, which shows the cursor.
    c.type_keys(b"\tjr", &snap);
    assert!(!c.vt.screen().hide_cursor(), "{}", c.screen().join("\n"));
    c.vt.process(&c.dash.leave_bytes());
    let s = c.vt.screen();
    assert!(!s.alternate_screen());
    assert!(!s.hide_cursor());
    assert_eq!(s.mouse_protocol_mode(), vt100::MouseProtocolMode::None);
    assert_eq!(
        (s.fgcolor(), s.bgcolor(), s.bold(), s.inverse()),
        (vt100::Color::Default, vt100::Color::Default, false, false)
    );
}

#[test]
fn colours_follow_the_terminal() {
    let snap = busy();
    let frame = |colors| {
        let mut dash = crate::Dashboard::new(Options {
            colors,
            ..Options::default()
        });
        String::from_utf8(dash.render(&snap).unwrap_or_default()).unwrap_or_default()
    };
    let mono = frame(ColorMode::Mono);
    let ansi16 = frame(ColorMode::Ansi16);
    // Mono: attributes only (reset, bold, dim, underline, reverse).
    let sgr_params = |s: &str| -> Vec<String> {
        s.split("\x1b[")
            .skip(1)
            .filter_map(|seq| seq.split_once('m').map(|(p, _)| p.to_string()))
            .filter(|p| p.chars().all(|c| c.is_ascii_digit() || c == ';'))
            .collect()
    };
    for p in sgr_params(&mono) {
        assert!(
            p.split(';')
                .all(|n| matches!(n, "0" | "1" | "2" | "4" | "7")),
            "colour in mono: {p}"
        );
    }
    assert!(sgr_params(&ansi16).iter().any(|p| p.contains("36")));
    assert!(!ansi16.contains("38;5") && !ansi16.contains("38;2"));
}

#[test]
fn ctrl_l_repaints_a_garbled_screen() {
    let snap = busy();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    // Something else scribbled on the terminal.
    c.vt.process(b"\x1b[5;5Hgarbage\x1b[20;1Hmore garbage");
    assert_ne!(c.screen(), expected_screen(&c, &snap));
    c.type_keys(b"\x0c", &snap);
    assert_eq!(c.screen(), expected_screen(&c, &snap));
}

#[test]
fn names_from_clients_cannot_inject_terminal_sequences() {
    // An image name is whatever an SFTP client chose; a drive model is
    // whatever the device reports. Neither may reach the terminal as control.
    let mut snap = unit();
    snap.images[0].name = "evil\x1b]0;owned\x07\x1b[2J\u{9b}31m\r\n.img".into();
    snap.drives[1].model = Some("bad\x1b[?1049lmodel\x08\x7f".into());
    snap.events
        .push(ev(T0 + 90, EventKind::Info, "event\x1bc\x1b[3J"));
    let mut c = Client::at(120, 40);
    let out = c.render(&snap).unwrap_or_default();
    let text = String::from_utf8_lossy(&out);
    for bad in [
        "\x1b]",
        "\x07",
        "\u{9b}",
        "\x1b[2J",
        "\x1b[?1049l",
        "\x1bc",
        "\x08",
        "\x7f",
        "\r",
        "\n",
    ] {
        assert!(!text.contains(bad), "output contains {bad:?}");
    }
    assert!(c.vt.screen().alternate_screen());
    assert!(
        c.shows("evil?]0;owned??[2J?31m??.img"),
        "{}",
        c.screen().join("\n")
    );
    assert!(c.shows("bad?[?1049lmodel??"));
    assert!(c.shows("event?c?[3J"));
}

#[test]
fn a_dashboard_can_move_to_another_thread() {
    // unitd keeps one per SSH session inside a tokio task.
    fn assert_send<T: Send + 'static>() {}
    assert_send::<crate::Dashboard>();
}
