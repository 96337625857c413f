//! Duplicator mode from the dashboard: `A` asks, Enter turns it on (or,
//! while it is on, off); the header says so while it is on.

use copyunit_model::{Duplicator, Request};
use ratatui::style::{Color, Modifier};

use super::*;
use crate::{Action, Dialog, Options, Pane};

const ENTER: &[u8] = b"\r";

fn request(actions: Vec<Action>) -> Request {
    match actions.as_slice() {
        [Action::Request(r)] => r.clone(),
        other => panic!("expected one request, got {other:?}"),
    }
}

/// `unit()` with the duplicator writing debian-12.img.
fn duplicating() -> Snapshot {
    let mut s = unit();
    s.unit.duplicator = Some(Duplicator {
        image: "debian-12.img".into(),
        verify: true,
        since: T0 + 200,
    });
    s
}

#[test]
fn a_asks_naming_the_image_and_enter_starts_the_duplicator() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    assert!(c.shows("A duplicator"), "the footer lists the key");
    c.type_keys(b"j", &snap); // ubuntu-24.04.iso
    assert_eq!(c.type_keys(b"A", &snap), []);
    assert_eq!(
        c.dash.ui().dialog,
        Some(Dialog::ConfirmDuplicator {
            image: "ubuntu-24.04.iso".into(),
            verify: true
        })
    );
    assert!(c.shows("Start duplicator?"));
    assert!(c.shows("Duplicator: write ubuntu-24.04.iso to every drive inserted from now on,"));
    assert!(c.shows("verify on  (v toggles)  image 5.0 GiB iso"));
    assert!(c.shows("EVERYTHING on each drive inserted will be ERASED."));
    assert!(c.shows("Drives attached now are left alone."));
    assert!(c.shows("A finished drive shows \"done - remove\"."));
    c.type_keys(b"v", &snap);
    assert!(c.shows("verify off  (v toggles)"));
    c.type_keys(b"v", &snap);
    assert_eq!(
        request(c.type_keys(ENTER, &snap)),
        Request::StartDuplicator {
            image: "ubuntu-24.04.iso".into(),
            verify: true
        }
    );
    assert_eq!(c.dash.ui().dialog, None);
    assert!(c.shows("duplicator with ubuntu-24.04.iso requested"));
}

#[test]
fn verify_off_is_sent_as_chosen_and_escape_backs_out() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"A", &snap);
    c.type_keys(b"n", &snap);
    assert_eq!(c.dash.ui().dialog, None);
    assert_eq!(
        request(c.type_keys(b"Avy", &snap)),
        Request::StartDuplicator {
            image: "debian-12.img".into(),
            verify: false
        }
    );
}

#[test]
fn outside_the_images_pane_a_takes_the_chosen_image_or_asks_for_one() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"\t", &snap); // Drives, nothing chosen
    assert_eq!(c.type_keys(b"A", &snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    assert!(c.shows("choose an image first (Images pane), then A"));
    c.type_keys(b"\x1b[Zjj\r", &snap); // back to Images, fw.img.xz, Enter
    assert_eq!(c.dash.ui().focus, Pane::Drives);
    c.type_keys(b"A", &snap);
    assert!(c.shows("Duplicator: write fw.img.xz to every drive inserted"));
}

#[test]
fn a_corrupt_image_is_refused() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    assert_eq!(c.type_keys(b"GA", &snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    assert!(c.shows("image broken.img is flagged corrupt: sidecar sha256 differs"));
}

#[test]
fn an_image_removed_meanwhile_is_not_requested() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"A", &snap);
    let mut gone = snap.clone();
    gone.images.retain(|i| i.name != "debian-12.img");
    assert_eq!(c.type_keys(ENTER, &gone), []);
    assert!(c.shows("not started: image debian-12.img is no longer in the store"));
}

#[test]
fn while_on_the_header_says_so_and_a_asks_to_stop() {
    let snap = duplicating();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    assert!(
        c.shows(" DUPLICATOR: debian-12.img  every drive inserted gets it, verify on  A stops")
    );
    assert!(c.shows("A stop duplicator"), "the footer says how to stop");
    // From any pane, whatever the cursor is on.
    c.type_keys(b"\tj", &snap);
    assert_eq!(c.type_keys(b"A", &snap), []);
    assert!(c.shows("Stop duplicator?"));
    assert!(c.shows("Stop writing debian-12.img to every drive inserted?"));
    assert!(c.shows("Jobs already running go on (c cancels one)."));
    // n keeps it on.
    assert_eq!(c.type_keys(b"n", &snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    assert_eq!(request(c.type_keys(b"A\r", &snap)), Request::StopDuplicator);
    assert!(c.shows("duplicator stop requested"));
}

#[test]
fn the_indicator_stands_out() {
    let snap = duplicating();
    let mut ui = Ui::new(false);
    ui.observe(&snap);
    let mut term = Terminal::new(TestBackend::new(80, 24)).unwrap_or_else(|e| match e {});
    let theme = Theme::new(ColorMode::Ansi256);
    term.draw(|f| draw(f, &snap, &mut ui, &theme))
        .unwrap_or_else(|e| match e {});
    let buf = term.backend().buffer();
    // " DUPLICATOR: ..." starts at column 1 of the third line.
    let cell = &buf[(2, 2)];
    assert_eq!(cell.symbol(), "D");
    assert_eq!(cell.bg, Color::Yellow);
    assert!(cell.modifier.contains(Modifier::BOLD));
    // In a terminal without colour it is reverse video.
    let theme = Theme::new(ColorMode::Mono);
    term.draw(|f| draw(f, &snap, &mut ui, &theme))
        .unwrap_or_else(|e| match e {});
    assert!(
        term.backend().buffer()[(2, 2)]
            .modifier
            .contains(Modifier::REVERSED)
    );
}

#[test]
fn duplicator_on_at_80x24() {
    let mut snap = duplicating();
    snap.drives[1].done_remove = true;
    check(
        &snap,
        (80, 24),
        |_| {},
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        |  DUPLICATOR: debian-12.img  every drive inserted gets it, verify on  A stops
        | Images 20.0 GiB in 4 images, 40.0 GiB free ────────────────────────────────────
        |  Image                  Size       Format   SHA-256      Added      State
        |  debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        |  fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
        |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
        | Drives ────────────────────────────────────────────────────────────────────────
        |    Slot  Name    Model             Size       Kind    State
        | -  -     sda     Samsung SSD 870   250.0 GiB  sata    system disk
        |[ ] 1-1   sdb     SanDisk Ultra     32.0 GiB   usb     done - remove
        |[ ] 1-2   sdc     Kingston DataTrav 16.0 GiB   usb     ready
        | -  1-3   sdd     Generic Flash     8.0 GiB    usb     mounted at /media/usb
        | Jobs 0 running, 0 finished ────────────────────────────────────────────────────
        | (no jobs yet: choose an image, then drives)
        |
        | Log ───────────────────────────────────────────────────────────────────────────
        | 11:06:40 drive sdb added: SanDisk Ultra 32.0 GiB
        | 11:06:45 drive sdc added: Kingston DataTraveler 16.0 GiB
        | 11:07:40 image debian-12.img uploaded (2.0 GiB)
        |
        | Enter choose image  d delete  A stop duplicator  Tab pane  ? help  q quit
    "#,
    );
}

#[test]
fn the_start_question_at_80x24() {
    check(
        &unit(),
        (80, 24),
        |ui| {
            ui.dialog = Some(Dialog::ConfirmDuplicator {
                image: "debian-12.img".into(),
                verify: true,
            })
        },
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        | Images 20.0 GiB in 4 images, 40.0 GiB free ────────────────────────────────────
        |  Image                  Size       Format   SHA-256      Added      State
        |  debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        |  fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
        |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
        | Dr┌ Start duplicator? ────────────────────────────────────────────────────┐────
        |   │ Duplicator: write debian-12.img to every drive inserted from now on,  │
        | - │ verify on  (v toggles)  image 2.0 GiB raw                             │
        |[ ]│ EVERYTHING on each drive inserted will be ERASED.                     │
        |[ ]│ Drives attached now are left alone.                                   │
        | - │ A finished drive shows "done - remove".                               │
        | Jo│ Enter/y start  Esc/n back                                             │────
        | (n└───────────────────────────────────────────────────────────────────────┘
        |
        | Log ───────────────────────────────────────────────────────────────────────────
        | 11:06:40 drive sdb added: SanDisk Ultra 32.0 GiB
        | 11:06:45 drive sdc added: Kingston DataTraveler 16.0 GiB
        | 11:07:40 image debian-12.img uploaded (2.0 GiB)
        |
        |
        | Enter choose image  d delete  A duplicator  Tab pane  ? help  q quit
    "#,
    );
}

#[test]
fn the_console_refuses_politely_on_and_off() {
    for snap in [unit(), duplicating()] {
        let mut c = Client::new(Options {
            view_only: true,
            ..Options::default()
        });
        c.render(&snap);
        for keys in [&b"A"[..], b"\tA", b"\tA"] {
            assert_eq!(c.type_keys(keys, &snap), [], "keys {keys:?}");
            assert_eq!(c.dash.ui().dialog, None);
            assert!(c.shows("view only: connect with ssh to copy, wipe, read or cancel"));
        }
    }
    // The console still shows the mode.
    let mut c = Client::new(Options {
        view_only: true,
        ..Options::default()
    });
    c.render(&duplicating());
    assert!(c.shows("DUPLICATOR: debian-12.img"));
}

#[test]
fn small_terminals_do_not_panic_with_the_duplicator_on_or_asking() {
    let on = duplicating();
    let mut long = duplicating();
    if let Some(d) = &mut long.unit.duplicator {
        d.image = "a-very-long-image-name-that-does-not-fit-anywhere-at-all.img.xz".into();
    }
    for snap in [&on, &long] {
        for (w, h) in [
            (0, 0),
            (1, 1),
            (2, 1),
            (20, 5),
            (40, 10),
            (59, 15),
            (60, 16),
            (61, 17),
        ] {
            for keys in [&b""[..], b"A", b"\tA", b"?"] {
                let mut dash = crate::Dashboard::new(Options {
                    width: w,
                    height: h,
                    ..Options::default()
                });
                let _ = dash.render(snap);
                let _ = dash.handle_input(keys, snap);
                let _ = dash.render(snap);
                // And the question to turn it on, at the same size.
                let _ = dash.handle_input(b"\x1b", &unit());
                let _ = dash.flush_pending(&unit());
                let _ = dash.handle_input(b"A", &unit());
                let _ = dash.render(&unit());
            }
        }
    }
}
