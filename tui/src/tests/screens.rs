//! The views at 80x24, 120x40 and 40x10, read as text.

use super::*;
use crate::state::Dialog;

#[test]
fn idle_unit_at_80x24() {
    check(
        &unit(),
        (80, 24),
        |_| {},
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        | Images 20.0 GiB in 4 images, 40.0 GiB free ────────────────────────────────────
        |  Image                  Size       Format   SHA-256      Added      State
        |  debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        |  fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
        |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
        | Drives ────────────────────────────────────────────────────────────────────────
        |    Slot  Name    Model             Size       Kind    State
        | -  -     sda     Samsung SSD 870   250.0 GiB  sata    system disk
        |[ ] 1-1   sdb     SanDisk Ultra     32.0 GiB   usb     ready
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
        |
        | Enter choose image  d delete  A duplicator  Tab pane  ? help  q quit
    "#,
    );
}

#[test]
fn busy_unit_at_80x24() {
    check(
        &busy(),
        (80, 24),
        |_| {},
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        | Images 20.0 GiB in 4 images, 40.0 GiB free, 1 upload arriving ─────────────────
        |  Image                  Size       Format   SHA-256      Added      State
        |  debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        |  fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
        |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
        |↑ arch.iso               300.0 MiB  upload   █░░░░░░  25% of 1.2 GiB arriving 25
        | Drives ────────────────────────────────────────────────────────────────────────
        |    Slot  Name    Model             Size       Kind    State
        | -  -     sda     Samsung SSD 870   250.0 GiB  sata    system disk
        | -  1-1   sdb     SanDisk Ultra     32.0 GiB   usb     write #7  ████░░░░  50%
        | -  1-2   sdc     Kingston DataTrav 16.0 GiB   usb     verify #7 ██████░░  75%
        | -  1-3   sdd     Generic Flash     8.0 GiB    usb     mounted at /media/usb
        | Jobs 1 running, 1 finished ────────────────────────────────────────────────────
        | #7 copy debian-12.img -> sdb, sdc  running  verify on  2.5/4.0 GiB  80.0 MiB/s
        |   sdb      write     ████░░░░  50%       1.0/2.0 GiB  40.0 MiB/s  ETA 25s
        |   sdc      verify    ██████░░  75%       1.5/2.0 GiB  40.0 MiB/s  ETA 12s
        | #6 copy debian-12.img -> sdd  FAILED  took 1m 00s
        |   sdd      failed    ░░░░░░░░   4% 100.0 MiB/2.0 GiB              I/O error at
        | Log ───────────────────────────────────────────────────────────────────────────
        | 11:07:40 image debian-12.img uploaded (2.0 GiB)
        | Enter choose image  d delete  A duplicator  Tab pane  ? help  q quit
    "#,
    );
}

#[test]
fn busy_unit_at_120x40() {
    check(
        &busy(),
        (120, 40),
        |_| {},
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        | Images 20.0 GiB in 4 images, 40.0 GiB free, 1 upload arriving ─────────────────────────────────────────────────────────
        |  Image                                             Size       Format   SHA-256      Added      State
        |  debian-12.img                                     2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24.04.iso                                  5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        |  fw.img.xz                                         300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
        |  broken.img                                        1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: sidecar sha256
        |↑ arch.iso                                          300.0 MiB  upload   █░░░░░░  25% of 1.2 GiB arriving 25.0 MiB/s
        | Drives ────────────────────────────────────────────────────────────────────────────────────────────────────────────────
        |    Slot  Name    Model                             Size       Kind    State
        | -  -     sda     Samsung SSD 870                   250.0 GiB  sata    system disk
        | -  1-1   sdb     SanDisk Ultra                     32.0 GiB   usb     write #7  ████░░░░  50%
        | -  1-2   sdc     Kingston DataTraveler             16.0 GiB   usb     verify #7 ██████░░  75%
        | -  1-3   sdd     Generic Flash                     8.0 GiB    usb     mounted at /media/usb
        | Jobs 1 running, 1 finished ────────────────────────────────────────────────────────────────────────────────────────────
        | #7 copy debian-12.img -> sdb, sdc  running  verify on  2.5/4.0 GiB  80.0 MiB/s  ETA 25s
        |   sdb      write     ████░░░░  50%       1.0/2.0 GiB  40.0 MiB/s  ETA 25s
        |   sdc      verify    ██████░░  75%       1.5/2.0 GiB  40.0 MiB/s  ETA 12s
        | #6 copy debian-12.img -> sdd  FAILED  took 1m 00s
        |   sdd      failed    ░░░░░░░░   4% 100.0 MiB/2.0 GiB              I/O error at 104857600
        | Log ───────────────────────────────────────────────────────────────────────────────────────────────────────────────────
        | 11:06:40 drive sdb added: SanDisk Ultra 32.0 GiB
        | 11:06:45 drive sdc added: Kingston DataTraveler 16.0 GiB
        | 11:07:40 image debian-12.img uploaded (2.0 GiB)
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        | Enter choose image  d delete  A duplicator  Tab pane  ? help  q quit
    "#,
    );
}

#[test]
fn a_small_terminal_gets_a_message_not_a_mess() {
    check(
        &busy(),
        (40, 10),
        |_| {},
        r#"
        |
        |
        |
        |
        |     terminal too small: need 60x16
        |
        |
        |
        |
        |
    "#,
    );
    check(
        &busy(),
        (59, 24),
        |_| {},
        r#"
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |              terminal too small: need 60x16
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
        |
    "#,
    );
    check(
        &busy(),
        (1, 1),
        |_| {},
        r#"
        |t
    "#,
    );
    check(&busy(), (0, 0), |_| {}, "");
}

#[test]
fn the_smallest_layout_still_shows_every_pane() {
    check(
        &busy(),
        (60, 16),
        |_| {},
        r#"
        | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k
        | Images 20.0 GiB in 4 images, 40.0 GiB free, 1 upload arrivi
        |  Image     Size       Format   SHA-256      Added      Stat
        |  debian-12 2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
        |  ubuntu-24 5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
        | Drives ────────────────────────────────────────────────────
        |    Slot  Name    Model     Size       Kind    State
        | -  -     sda     Samsung S 250.0 GiB  sata    system disk
        | -  1-1   sdb     SanDisk U 32.0 GiB   usb     write #7  ███
        | Jobs 1 running, 1 finished ────────────────────────────────
        | #7 copy debian-12.img -> sdb, sdc  running  verify on  2.5/
        |   sdb      write     ████░░░░  50%       1.0/2.0 GiB  40.0
        | Log ───────────────────────────────────────────────────────
        | 11:07:40 image debian-12.img uploaded (2.0 GiB)
        | Enter choose image  d delete  A duplicator  Tab pane  ? hel
    "#,
    );
}

#[test]
fn header_warns_of_pairing_and_a_store_in_ram() {
    let mut snap = unit();
    snap.unit.pairing = true;
    snap.unit.store.volatile = true;
    snap.unit.port = 2222;
    snap.unit.addresses.push("fe80::1".into());
    let got = screen(&snap, &mut Ui::new(false), (120, 40));
    assert_screen(
        &got[..3],
        r#"
        | lab-unit  ssh -p 2222 admin@192.168.1.23 (also fe80::1)  up 3h 05m  store 40.0 GiB free / 64.0 GiB
        | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
        | ! PAIRING: no admin key installed yet, the pairing code is accepted  ! image store is in RAM: images are lost at power-
    "#,
    );
}

#[test]
fn confirmation_names_every_drive_to_be_erased() {
    check(
        &unit(),
        (80, 24),
        |ui| {
            ui.image = Some("fw.img.xz".into());
            ui.dialog = Some(Dialog::ConfirmCopy {
                image: "fw.img.xz".into(),
                targets: vec!["sdb".into(), "sdc".into()],
                verify: true,
            });
        },
        r#"
            | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
            | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
            | Images 20.0 GiB in 4 images, 40.0 GiB free ────────────────────────────────────
            |  Image                  Size       Format   SHA-256      Added      State
            |  debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
            |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
            |» fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
            |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
            | Drives fw.img┌ Start copy? ─────────────────────────────────────┐──────────────
            |    Slot  Name│ Image fw.img.xz  300.0 MiB xz > 4.0 GiB          │
            | -  -     sda │ EVERYTHING on these 2 drives will be ERASED:     │
            |[ ] 1-1   sdb │  sdb  SanDisk Ultra  32.0 GiB  slot 1-1          │
            |[ ] 1-2   sdc │  sdc  Kingston DataTraveler  16.0 GiB  slot 1-2  │
            | -  1-3   sdd │ Verify after writing: on  (v toggles)            │/media/usb
            | Jobs 0 runnin│ Enter/y start  Esc/n back                        │──────────────
            | (no jobs yet:└──────────────────────────────────────────────────┘
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
fn help_overlay_at_80x24() {
    check(
        &unit(),
        (80, 24),
        |ui| ui.help = true,
        r#"
            | ┌ Keys ──────────────────────────────────────────────────────────────────────┐
            | │ Tab Shift-Tab h l Left Right  next / previous pane                         │
            | │ Up Down  j k                  move the cursor                              │─
            | │ PgUp PgDn                     move a page                                  │
            | │ Home End  g G                 first / last row                             │
            | │ Enter (Images)                choose the image to copy                     │
            | │ Space (Drives)                select / unselect a target drive             │
            | │ a (Drives)                    every writable block drive (again: none)     │i
            | │ Enter (Drives)                review the copy and confirm                  │─
            | │ v (confirm copy)              verify after writing on / off                │
            | │ c                             cancel the running job under the cursor      │
            |[│ d  Delete (Images)            delete the image                             │
            |[│ w (Drives)                    wipe the drive (f: full wipe on / off)       │
            | │ r (Drives)                    read the drive into a new image              │
            | │ A                             duplicator on/off: image to drives inserted  │─
            | │ y Enter / n Esc               confirm / back out of a question             │
            | │ Esc                           dismiss a notice / clear image and drives    │
            | │ ? F1                          this help                                    │─
            | │ Ctrl-L                        repaint the screen                           │
            | │ q  Ctrl-C                     leave the dashboard                          │
            | │ The copy: choose an image, select drives, confirm, watch.                  │
            | │ Esc ? q close                                                              │
            | └────────────────────────────────────────────────────────────────────────────┘
            | Enter choose image  d delete  A duplicator  Tab pane  ? help  q quit
        "#,
    );
}

#[test]
fn chosen_image_and_targets_are_marked() {
    check(
        &unit(),
        (80, 24),
        |ui| {
            ui.image = Some("debian-12.img".into());
            ui.targets.insert("sdc".into());
            ui.focus = crate::Pane::Drives;
        },
        r#"
            | lab-unit  ssh admin@192.168.1.23  up 3h 05m  store 40.0 GiB free / 64.0 GiB
            | host key SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k  copyunit 0.1.0
            | Images 20.0 GiB in 4 images, 40.0 GiB free ────────────────────────────────────
            |  Image                  Size       Format   SHA-256      Added      State
            |» debian-12.img          2.0 GiB    raw      3f2a9b7c1d4e 2026-11-18 ok
            |  ubuntu-24.04.iso       5.0 GiB    iso      a1b2c3d4e5f6 2026-11-18 ok
            |  fw.img.xz              300.0 MiB  xz       9c1d0e44aa8f 2026-11-18 ok
            |  broken.img             1.0 GiB    raw      00ff00ff00ff 2026-11-18 CORRUPT: si
            | Drives write debian-12.img to 1 drive: Enter to confirm ───────────────────────
            |    Slot  Name    Model             Size       Kind    State
            | -  -     sda     Samsung SSD 870   250.0 GiB  sata    system disk
            |[ ] 1-1   sdb     SanDisk Ultra     32.0 GiB   usb     ready
            |[x] 1-2   sdc     Kingston DataTrav 16.0 GiB   usb     ready
            | -  1-3   sdd     Generic Flash     8.0 GiB    usb     mounted at /media/usb
            | Jobs 0 running, 0 finished ────────────────────────────────────────────────────
            | (no jobs yet: choose an image, then drives)
            |
            | Log ───────────────────────────────────────────────────────────────────────────
            | 11:06:40 drive sdb added: SanDisk Ultra 32.0 GiB
            | 11:06:45 drive sdc added: Kingston DataTraveler 16.0 GiB
            | 11:07:40 image debian-12.img uploaded (2.0 GiB)
            |
            |
            | Space toggle  a all  Enter copy  w wipe  r read  Tab pane  ? help  q quit
        "#,
    );
}

#[test]
fn the_local_console_says_it_is_view_only() {
    let mut ui = Ui::new(true);
    ui.observe(&unit());
    let got = screen(&unit(), &mut ui, (80, 24));
    assert_screen(
        &got[23..],
        "| view only: ssh to act  ↑↓ move  Tab pane  ? help  q quit",
    );
}

#[test]
fn an_interrupted_upload_shows_in_the_images_pane_and_cannot_be_chosen() {
    let mut snap = unit();
    snap.partials.push(copyunit_model::Partial {
        name: "half.iso".into(),
        bytes: 700 * MIB,
        since: T0 + 30,
    });
    snap.unit.store.partial_bytes = 700 * MIB;
    snap.unit.store.full = true;
    let mut ui = Ui::new(false);
    let got = screen(&snap, &mut ui, (100, 30));
    let title = got.iter().find(|l| l.contains("Images")).unwrap();
    assert!(
        title.contains("700.0 MiB held by 1 interrupted upload") && title.contains("STORE FULL"),
        "{title}"
    );
    let row = got
        .iter()
        .find(|l| l.contains("half.iso"))
        .unwrap_or_else(|| panic!("no row for the partial:\n{}", got.join("\n")));
    assert!(
        row.contains("700.0 MiB") && row.contains("partial") && row.contains("interrupted"),
        "{row}"
    );
    // Only images are items the cursor can land on.
    assert!(!crate::state::image_keys(&snap).contains(&"half.iso".to_string()));
}
