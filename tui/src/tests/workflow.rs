//! The workflows, driven by the bytes a terminal sends, checked by the
//! requests they produce and by what the client's screen shows.

use copyunit_model::Request;

use super::*;
use crate::{Action, Dialog, Options, Pane};

const UP: &[u8] = b"\x1b[A";
const DOWN: &[u8] = b"\x1b[B";
const TAB: &[u8] = b"\t";
const BACKTAB: &[u8] = b"\x1b[Z";
const ENTER: &[u8] = b"\r";
const ESC: &[u8] = b"\x1b";
const CTRL_C: &[u8] = b"\x03";

fn request(actions: Vec<Action>) -> Request {
    match actions.as_slice() {
        [Action::Request(r)] => r.clone(),
        other => panic!("expected one request, got {other:?}"),
    }
}

#[test]
fn copy_in_the_patents_order() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.render(&snap);

    // 1. Choose the image: the Images pane has the focus at start.
    assert_eq!(c.type_keys(ENTER, &snap), []);
    assert_eq!(c.dash.ui().image.as_deref(), Some("debian-12.img"));
    assert_eq!(c.dash.ui().focus, Pane::Drives);
    assert!(c.shows("Drives debian-12.img chosen: select targets with Space or a"));

    // 2. Choose targets. sda (the system disk) cannot be chosen.
    assert_eq!(c.type_keys(b" ", &snap), []);
    assert!(c.shows("sda cannot be a target: system disk"));
    // The cursor moved on to sdb; Space on sdb and sdc.
    c.type_keys(b"  ", &snap);
    assert_eq!(
        c.dash.ui().targets.iter().collect::<Vec<_>>(),
        ["sdb", "sdc"]
    );
    assert!(c.shows("[x] 1-1   sdb"));
    assert!(c.shows("[x] 1-2   sdc"));
    assert!(c.shows("write debian-12.img to 2 drives: Enter to confirm"));

    // 3. The summary names every drive that will be erased.
    assert_eq!(c.type_keys(ENTER, &snap), []);
    assert!(c.shows("Image debian-12.img  2.0 GiB raw"));
    assert!(c.shows("EVERYTHING on these 2 drives will be ERASED:"));
    assert!(c.shows("sdb  SanDisk Ultra  32.0 GiB  slot 1-1"));
    assert!(c.shows("sdc  Kingston DataTraveler  16.0 GiB  slot 1-2"));
    assert!(c.shows("Verify after writing: on"));
    c.type_keys(b"v", &snap);
    assert!(c.shows("Verify after writing: off"));
    c.type_keys(b"v", &snap);

    // 4. Start.
    let req = request(c.type_keys(ENTER, &snap));
    assert_eq!(
        req,
        Request::Copy {
            image: "debian-12.img".into(),
            targets: vec!["sdb".into(), "sdc".into()],
            verify: true,
        }
    );
    // The choice is spent; the Jobs pane has the focus to watch it.
    assert!(c.dash.ui().targets.is_empty() && c.dash.ui().image.is_none());
    assert_eq!(c.dash.ui().focus, Pane::Jobs);
    assert!(c.shows("copy of debian-12.img requested"));
}

#[test]
fn verify_off_is_sent_as_chosen() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(ENTER, &snap);
    c.type_keys(DOWN, &snap); // sdb
    let req = request(c.type_keys(b"\rvy", &snap));
    assert_eq!(
        req,
        Request::Copy {
            image: "debian-12.img".into(),
            targets: vec!["sdb".into()],
            verify: false,
        }
    );
}

#[test]
fn a_selects_every_eligible_drive_and_again_none() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(TAB, &snap);
    c.type_keys(b"a", &snap);
    assert_eq!(
        c.dash.ui().targets.iter().collect::<Vec<_>>(),
        ["sdb", "sdc"]
    );
    c.type_keys(b"a", &snap);
    assert!(c.dash.ui().targets.is_empty());
}

/// Issue 13, defect 2: the dashboard's `a` selected eligible burners too,
/// while `copy IMAGE all` wrote block drives only. Both are now
/// `copyunit_model::targets::all_targets`.
#[test]
fn the_dashboards_a_includes_burners_while_the_commands_all_excludes_them() {
    let mut snap = unit();
    let mut sr1 = drive("sr1", "-", "PLEXTOR DVDR PX-891SA", 4 * GIB);
    sr1.kind = DriveKind::Optical;
    sr1.role = DriveRole::Burner;
    sr1.media = Some(copyunit_model::OpticalMedia {
        media_type: "DVD+R".into(),
        status: "blank".into(),
        capacity_bytes: 4 * GIB,
        free_bytes: 4 * GIB,
        ..Default::default()
    });
    snap.drives.push(sr1);
    let mut c = Client::at(80, 24);
    c.type_keys(TAB, &snap);
    c.type_keys(b"a", &snap);
    let all: Vec<&str> = copyunit_model::targets::all_targets(&snap.drives)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(all, ["sdb", "sdc"]);
    assert_eq!(c.dash.ui().targets.iter().collect::<Vec<_>>(), all);
}

#[test]
fn enter_on_drives_without_an_image_asks_for_one() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    assert_eq!(c.type_keys(b"\ta\r", &snap), []);
    assert!(c.shows("choose an image first (Images pane, Enter)"));
    assert_eq!(c.dash.ui().dialog, None);
}

#[test]
fn corrupt_image_cannot_be_chosen() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"G\r", &snap);
    assert_eq!(c.dash.ui().image, None);
    assert!(c.shows("image broken.img is flagged corrupt: sidecar sha256 differs"));
}

#[test]
fn confirmation_refuses_a_drive_that_went_away_meanwhile() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(ENTER, &snap);
    c.type_keys(DOWN, &snap);
    c.type_keys(b" \r", &snap);
    assert!(matches!(
        c.dash.ui().dialog,
        Some(Dialog::ConfirmCopy { .. })
    ));
    let mut gone = snap.clone();
    gone.drives.retain(|d| d.name != "sdb");
    assert_eq!(c.type_keys(b"y", &gone), []);
    assert!(c.shows("not started: drive sdb is gone"));
}

#[test]
fn too_small_target_is_refused() {
    let mut snap = unit();
    snap.drives[2].size = GIB; // sdc: 1 GiB, the image is 2 GiB
    let mut c = Client::at(80, 24);
    c.type_keys(ENTER, &snap);
    c.type_keys(b"jj\r", &snap); // sdc, Enter selects it
    assert!(c.shows("TOO SMALL"));
    assert_eq!(c.type_keys(ENTER, &snap), []);
    assert!(c.shows("not started: image debian-12.img needs 2.0 GiB but drive sdc holds only"));
}

#[test]
fn cancel_a_job_after_confirmation() {
    let snap = busy();
    let mut c = Client::at(80, 24);
    c.type_keys(TAB, &snap);
    c.type_keys(TAB, &snap);
    assert_eq!(c.dash.ui().focus, Pane::Jobs);
    assert_eq!(c.type_keys(b"c", &snap), []);
    assert!(c.shows("Cancel job #7 copy debian-12.img -> sdb, sdc?"));
    // n keeps it running.
    assert_eq!(c.type_keys(b"n", &snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    assert_eq!(
        request(c.type_keys(b"cy", &snap)),
        Request::Cancel { job: 7 }
    );
    // A finished job cannot be cancelled.
    c.type_keys(b"j", &snap);
    assert_eq!(c.type_keys(b"c", &snap), []);
    assert!(c.shows("job #6 has already finished"));
}

#[test]
fn delete_an_image_after_confirmation_and_escape_backs_out() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(DOWN, &snap);
    c.type_keys(b"d", &snap);
    assert!(c.shows("Delete ubuntu-24.04.iso (5.0 GiB) from the store?"));
    // A lone ESC is the Escape key once the input idles (flush_pending).
    assert_eq!(c.dash.handle_input(ESC, &snap), []);
    assert!(c.dash.has_pending_input());
    assert_eq!(c.dash.flush_pending(&snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    // The Delete key asks too.
    c.type_keys(b"\x1b[3~", &snap);
    assert_eq!(
        request(c.type_keys(ENTER, &snap)),
        Request::RemoveImage {
            name: "ubuntu-24.04.iso".into()
        }
    );
}

#[test]
fn wipe_a_drive_quick_or_full() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(TAB, &snap);
    // sda is the system disk: refused.
    assert_eq!(c.type_keys(b"w", &snap), []);
    assert!(c.shows("sda cannot be wiped: system disk"));
    c.type_keys(DOWN, &snap);
    c.type_keys(b"w", &snap);
    assert!(c.shows("Full wipe (zero every byte): off"));
    c.type_keys(b"f", &snap);
    assert!(c.shows("Full wipe (zero every byte): on"));
    assert_eq!(
        request(c.type_keys(b"y", &snap)),
        Request::Wipe {
            drive: "sdb".into(),
            full: true
        }
    );
}

#[test]
fn read_a_drive_into_a_new_image() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"\tj", &snap);
    c.type_keys(b"r", &snap);
    assert!(c.shows("Name: sdb.img"));
    // An existing name is refused in place.
    c.type_keys(&[0x15], &snap); // Ctrl-U clears
    c.type_keys(b"debian-12.img\r", &snap);
    assert!(c.shows("an image named debian-12.img exists already"));
    // Edit: Backspace x3, type, Left/Right work.
    c.type_keys(b"\x7f\x7f\x7fiso", &snap);
    assert!(c.shows("Name: debian-12.iso"));
    c.type_keys(ENTER, &snap);
    assert!(c.shows("into the new image debian-12.iso?"));
    assert_eq!(
        request(c.type_keys(b"y", &snap)),
        Request::Read {
            drive: "sdb".into(),
            name: "debian-12.iso".into()
        }
    );
}

#[test]
fn q_and_ctrl_c_quit_but_q_in_a_question_only_backs_out() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    assert_eq!(c.type_keys(b"q", &snap), [Action::Quit]);
    let mut c = Client::at(80, 24);
    assert_eq!(c.type_keys(CTRL_C, &snap), [Action::Quit]);
    let mut c = Client::at(80, 24);
    c.type_keys(b"d", &snap);
    assert_eq!(c.type_keys(b"q", &snap), []);
    assert_eq!(c.dash.ui().dialog, None);
    // Ctrl-C leaves from anywhere, even a text field.
    c.type_keys(b"\tr", &snap);
    assert_eq!(c.type_keys(CTRL_C, &snap), [Action::Quit]);
}

#[test]
fn keys_after_quit_in_the_same_chunk_are_ignored() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    assert_eq!(c.type_keys(b"q\tcy", &snap), [Action::Quit]);
}

#[test]
fn panes_cycle_with_tab_backtab_and_vi_keys() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(c.dash.ui().focus);
        c.type_keys(TAB, &snap);
    }
    assert_eq!(seen, [Pane::Images, Pane::Drives, Pane::Jobs, Pane::Log]);
    assert_eq!(c.dash.ui().focus, Pane::Images);
    c.type_keys(BACKTAB, &snap);
    assert_eq!(c.dash.ui().focus, Pane::Log);
    c.type_keys(b"l", &snap);
    assert_eq!(c.dash.ui().focus, Pane::Images);
    c.type_keys(b"h", &snap);
    assert_eq!(c.dash.ui().focus, Pane::Log);
}

#[test]
fn cursor_moves_with_arrows_vi_keys_pages_and_ends() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(TAB, &snap);
    let at = |c: &Client| c.dash.ui().drives.index;
    c.type_keys(DOWN, &snap);
    assert_eq!(at(&c), 1);
    c.type_keys(b"j", &snap);
    assert_eq!(at(&c), 2);
    c.type_keys(UP, &snap);
    assert_eq!(at(&c), 1);
    c.type_keys(b"k", &snap);
    assert_eq!(at(&c), 0);
    c.type_keys(b"\x1b[6~", &snap); // PgDn
    assert_eq!(at(&c), 3);
    c.type_keys(b"\x1b[5~", &snap); // PgUp
    assert_eq!(at(&c), 0);
    c.type_keys(b"\x1b[F", &snap); // End
    assert_eq!(at(&c), 3);
    c.type_keys(b"\x1b[1~", &snap); // Home, VT220 form
    assert_eq!(at(&c), 0);
}

#[test]
fn help_lists_every_key_and_closes_with_escape() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"?", &snap);
    for (keys, what) in crate::state::HELP {
        assert!(c.shows(keys) && c.shows(what), "help lacks {keys}: {what}");
    }
    // Keys do nothing else while the help shows.
    assert_eq!(c.type_keys(b"d", &snap), []);
    c.type_keys(ESC, &snap);
    assert!(!c.dash.ui().help);
    assert!(!c.shows("this help"));
}

#[test]
fn view_only_refuses_actions_politely_but_navigates() {
    let snap = busy();
    let mut c = Client::new(Options {
        view_only: true,
        ..Options::default()
    });
    c.render(&snap);
    for keys in [&b"\r"[..], b"d", b"\t ", b"a", b"w", b"r", b"\r", b"\tc"] {
        assert_eq!(c.type_keys(keys, &snap), [], "keys {keys:?}");
        assert_eq!(c.dash.ui().dialog, None);
        assert!(c.shows("view only: connect with ssh to copy, wipe, read or cancel"));
    }
    assert!(c.dash.ui().targets.is_empty());
    assert_eq!(c.dash.ui().focus, Pane::Jobs);
    assert_eq!(c.type_keys(b"q", &snap), [Action::Quit]);
}

#[test]
fn a_notice_shows_when_a_job_finishes_until_acknowledged() {
    let running = busy();
    let mut c = Client::at(80, 24);
    c.render(&running);
    assert!(c.dash.ui().notices.is_empty());
    let mut done = running.clone();
    done.jobs[0].state = JobState::Done;
    done.jobs[0].finished = Some(T0 + 400);
    for t in &mut done.jobs[0].targets {
        t.phase = Phase::Done;
        t.bytes_done = 2 * GIB;
    }
    done.drives[1].job = None;
    done.drives[2].job = None;
    c.render(&done);
    assert!(c.shows("Job #7 copy debian-12.img -> sdb, sdc DONE"));
    assert!(c.shows("written and verified in 5m 00s"));
    assert!(c.shows("sdb: done"));
    // The same snapshot again is no news.
    c.render(&done);
    assert_eq!(c.dash.ui().notices.len(), 1);
    c.type_keys(ENTER, &done);
    assert!(c.dash.ui().notices.is_empty());
    assert!(!c.shows("written and verified"));
}

#[test]
fn a_job_seen_only_finished_is_news_after_the_first_snapshot() {
    let first = unit();
    let mut c = Client::at(80, 24);
    c.render(&first);
    let mut later = busy();
    later.jobs.retain(|j| j.id == 6); // failed, never seen running
    c.render(&later);
    assert!(c.shows("Job #6 copy debian-12.img -> sdd FAILED"));
    assert!(c.shows("sdd: failed: I/O error at 104857600"));
    // But jobs already finished in the very first snapshot are history.
    let mut fresh = Client::at(80, 24);
    fresh.render(&later);
    assert!(fresh.dash.ui().notices.is_empty());
}

#[test]
fn selection_forgets_a_drive_that_became_ineligible() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.type_keys(b"\ta", &snap);
    let mut mounted = snap.clone();
    mounted.drives[1].eligible = false;
    mounted.drives[1].reason = Some("mounted at /media/x".into());
    c.render(&mounted);
    assert_eq!(c.dash.ui().targets.iter().collect::<Vec<_>>(), ["sdc"]);
}

#[test]
fn mouse_click_focuses_and_selects_wheel_scrolls() {
    let snap = unit();
    let mut c = Client::new(Options {
        mouse: true,
        ..Options::default()
    });
    c.render(&snap);
    // Row of sdc in the Drives pane, found on the screen.
    let y = c
        .screen()
        .iter()
        .position(|l| l.contains("sdc"))
        .unwrap_or(0) as u16;
    c.type_keys(format!("\x1b[<0;10;{}M", y + 1).as_bytes(), &snap);
    assert_eq!(c.dash.ui().focus, Pane::Drives);
    assert_eq!(c.dash.ui().drives.index, 2);
    c.type_keys(format!("\x1b[<65;10;{}M", y + 1).as_bytes(), &snap);
    assert_eq!(c.dash.ui().drives.index, 3);
}

#[test]
fn the_log_scrolls_back_and_follows_again() {
    let mut snap = unit();
    for i in 0..40 {
        snap.events.push(ev(
            T0 + 100 + i,
            EventKind::Info,
            &format!("event number {i}"),
        ));
    }
    let mut c = Client::at(80, 24);
    c.render(&snap);
    assert!(c.shows("event number 39"));
    c.type_keys(BACKTAB, &snap); // Log
    c.type_keys(b"\x1b[5~\x1b[5~\x1b[5~\x1b[5~", &snap); // PgUp x4: 40 back
    assert!(c.shows("40 back (Down to follow)"));
    assert!(!c.shows("event number 39"));
    c.type_keys(b"G", &snap);
    assert!(c.shows("event number 39"));
}

/// A tiny deterministic generator, for input no person would type.
fn noise(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

#[test]
fn random_input_never_panics_or_grows_without_bound() {
    let snap = busy();
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    let alphabet =
        b"\x1b[O;<~0123456789ABCDHFPQRSZMmu \r\n\t\x7fjkhlqaycdwrvfg?\x03\xc3\xa9\xe2\x82";
    for round in 0..200 {
        let mut c = Client::at(80, 24);
        c.render(&snap);
        for _ in 0..20 {
            let len = (noise(&mut seed) % 12) as usize;
            let chunk: Vec<u8> = (0..len)
                .map(|_| {
                    let r = noise(&mut seed);
                    if r.is_multiple_of(4) {
                        (r >> 8) as u8
                    } else {
                        alphabet[(r >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            // Whatever comes out must be well-formed; quitting ends the round.
            let actions = c.dash.handle_input(&chunk, &snap);
            let _ = c.render(&snap);
            if actions.contains(&Action::Quit) {
                break;
            }
        }
        let _ = c.dash.flush_pending(&snap);
        assert!(!c.dash.has_pending_input(), "round {round}");
    }
}

#[test]
fn the_units_answer_shows_on_the_footer_until_the_next_key() {
    let snap = unit();
    let mut c = Client::at(80, 24);
    c.render(&snap);
    c.dash
        .show_message("copy refused: drive sdb is mounted at /media/x");
    c.render(&snap);
    assert!(c.shows("copy refused: drive sdb is mounted at /media/x"));
    c.type_keys(b"j", &snap);
    assert!(!c.shows("copy refused"));
}

#[test]
fn discs_show_their_media_and_only_rewritable_ones_can_be_wiped() {
    let burner = |name: &str, media: copyunit_model::OpticalMedia| {
        let mut d = drive(name, "-", "PLEXTOR DVDR PX-891SA", 0);
        d.kind = DriveKind::Optical;
        d.role = DriveRole::Burner;
        d.media = Some(media);
        d
    };
    let mut cdrw = burner(
        "sr1",
        copyunit_model::OpticalMedia {
            media_type: "CD-RW".into(),
            status: "complete".into(),
            erasable: true,
            capacity_bytes: 600 * MIB,
            free_bytes: 0,
        },
    );
    cdrw.eligible = false;
    cdrw.reason = Some("the disc in sr1 holds data: `wipe sr1` blanks it".into());
    let dvd = burner(
        "sr2",
        copyunit_model::OpticalMedia {
            media_type: "DVD+R".into(),
            status: "blank".into(),
            erasable: false,
            capacity_bytes: 4482 * MIB,
            free_bytes: 4482 * MIB,
        },
    );
    let mut snap = unit();
    snap.drives.extend([cdrw, dvd]);
    let mut c = Client::at(120, 30);
    c.type_keys(TAB, &snap);
    assert!(c.shows("CD-RW complete · PLEXTOR"));
    assert!(c.shows("DVD+R blank · PLEXTOR"));
    assert!(c.shows("4.4 GiB"));

    // The CD-RW is no copy target, yet wiping is what it needs.
    for _ in 0..4 {
        c.type_keys(DOWN, &snap);
    }
    c.type_keys(b"w", &snap);
    assert!(c.shows("Wipe this drive?"));
    assert_eq!(
        request(c.type_keys(b"y", &snap)),
        Request::Wipe {
            drive: "sr1".into(),
            full: false
        }
    );
    // A write-once disc cannot be wiped (the request moved the focus to
    // the jobs).
    c.type_keys(BACKTAB, &snap);
    c.type_keys(DOWN, &snap);
    assert_eq!(c.type_keys(b"w", &snap), []);
    assert!(c.shows("sr2 cannot be wiped: the DVD+R is not rewritable"));
}

#[test]
fn a_burn_shows_each_burners_phase_drive_buffer_rate_and_eta() {
    let mut snap = unit();
    let mut writing = target("sr1", Phase::Write, 1200 * MIB, 4 * GIB);
    writing.buffer_fill = Some(87);
    let mut closing = target("sr2", Phase::Close, 0, 4 * GIB);
    closing.buffer_fill = Some(0);
    snap.jobs.push(Job {
        id: 9,
        kind: JobKind::Burn,
        source: "ubuntu-24.04.iso".into(),
        verify: true,
        state: JobState::Running,
        created: T0 + 200,
        finished: None,
        targets: vec![writing, closing, target("sr3", Phase::Verify, GIB, 4 * GIB)],
        error: None,
    });
    let mut c = Client::at(120, 40);
    c.render(&snap);
    let screen = c.screen().join("\n");
    let row = |drive: &str| {
        screen
            .lines()
            .find(|l| l.trim_start().starts_with(drive) && l.contains('%'))
            .unwrap_or_else(|| panic!("no progress row for {drive}:\n{screen}"))
            .to_string()
    };
    let sr1 = row("sr1");
    assert!(sr1.contains("write buf 87%"), "{sr1}");
    assert!(sr1.contains("40.0 MiB/s") && sr1.contains("ETA"), "{sr1}");
    assert!(row("sr2").contains("close buf 0%"), "{screen}");
    assert!(row("sr3").contains("verify"), "{screen}");
    assert!(screen.contains("ubuntu-24.04.iso"), "{screen}");
}
