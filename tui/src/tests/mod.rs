//! Tests of the whole dashboard: views at fixed sizes, the copy workflow
//! driven by input bytes, and the ANSI output replayed into a terminal
//! emulator.
//!
//! Screens are compared as text, line by line, trailing spaces ignored; a
//! failing `check` prints the screen it got, ready to paste.

mod duplicator;
mod render;
mod screens;
mod workflow;

use copyunit_model::{
    Drive, DriveKind, DriveRole, Event, EventKind, Image, ImageFormat, ImageState, Job, JobKind,
    JobState, JobTarget, Phase, Snapshot, StoreUsage, UnitInfo, Upload,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use crate::backend::ColorMode;
use crate::state::Ui;
use crate::theme::Theme;
use crate::views::draw;

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;
/// 2026-11-18 11:06:40 UTC.
const T0: u64 = 1_795_000_000;

fn drive(name: &str, slot: &str, model: &str, size: u64) -> Drive {
    Drive {
        name: name.into(),
        path: format!("/dev/{name}"),
        kind: DriveKind::Usb,
        vendor: None,
        model: Some(model.into()),
        slot: Some(slot.into()),
        size,
        logical_sector_size: 512,
        physical_sector_size: 512,
        removable: true,
        eligible: true,
        ..Drive::default()
    }
}

fn image(name: &str, format: ImageFormat, size: u64, sha: &str) -> Image {
    Image {
        name: name.into(),
        size,
        sha256: sha.into(),
        added: T0,
        format,
        ..Image::default()
    }
}

/// A unit with a system disk, two USB sticks, one mounted stick, four
/// images (one corrupt) and no jobs yet.
fn unit() -> Snapshot {
    let mut sda = drive("sda", "-", "Samsung SSD 870", 250 * GIB);
    sda.kind = DriveKind::Sata;
    sda.role = DriveRole::System;
    sda.slot = None;
    sda.eligible = false;
    sda.reason = Some("system disk".into());
    let mut sdd = drive("sdd", "1-3", "Generic Flash", 8 * GIB);
    sdd.eligible = false;
    sdd.reason = Some("mounted at /media/usb".into());
    let mut fw = image("fw.img.xz", ImageFormat::Xz, 300 * MIB, "9c1d0e44aa8f6e2b");
    fw.content_size = Some(4 * GIB);
    let mut broken = image("broken.img", ImageFormat::Raw, GIB, "00ff00ff00ff00ff");
    broken.state = ImageState::Corrupt("sidecar sha256 differs".into());
    Snapshot {
        unit: UnitInfo {
            name: "lab-unit".into(),
            version: "0.1.0".into(),
            addresses: vec!["192.168.1.23".into()],
            port: 22,
            host_key_fingerprint: "SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k".into(),
            store: StoreUsage {
                path: "/store".into(),
                total_bytes: 64 * GIB,
                free_bytes: 40 * GIB,
                used_bytes: 24 * GIB,
                images_bytes: 20 * GIB,
                partial_bytes: 0,
                full: false,
                volatile: false,
            },
            uptime_secs: 3 * 3600 + 5 * 60,
            pairing: false,
            pairing_code: None,
            duplicator: None,
        },
        drives: vec![
            sda,
            drive("sdb", "1-1", "SanDisk Ultra", 32 * GIB),
            drive("sdc", "1-2", "Kingston DataTraveler", 16 * GIB),
            sdd,
        ],
        images: vec![
            image(
                "debian-12.img",
                ImageFormat::Raw,
                2 * GIB,
                "3f2a9b7c1d4e5f60",
            ),
            image(
                "ubuntu-24.04.iso",
                ImageFormat::Iso,
                5 * GIB,
                "a1b2c3d4e5f60718",
            ),
            fw,
            broken,
        ],
        uploads: Vec::new(),
        partials: Vec::new(),
        jobs: Vec::new(),
        events: vec![
            ev(
                T0,
                EventKind::DriveAdded,
                "drive sdb added: SanDisk Ultra 32.0 GiB",
            ),
            ev(
                T0 + 5,
                EventKind::DriveAdded,
                "drive sdc added: Kingston DataTraveler 16.0 GiB",
            ),
            ev(
                T0 + 60,
                EventKind::UploadDone,
                "image debian-12.img uploaded (2.0 GiB)",
            ),
        ],
    }
}

fn ev(at: u64, kind: EventKind, message: &str) -> Event {
    Event {
        at,
        kind,
        message: message.into(),
    }
}

fn target(drive: &str, phase: Phase, done: u64, total: u64) -> JobTarget {
    JobTarget {
        drive: drive.into(),
        phase,
        bytes_done: done,
        bytes_total: Some(total),
        rate_bps: if phase.is_final() { 0 } else { 40 * MIB },
        eta_secs: if phase.is_final() {
            None
        } else {
            Some((total - done) / (40 * MIB))
        },
        error: None,
        buffer_fill: None,
        skipped: false,
    }
}

/// `unit()` while job #7 writes debian-12.img to sdb and sdc, an upload
/// arrives, and an earlier job #6 has failed.
fn busy() -> Snapshot {
    let mut s = unit();
    s.drives[1].job = Some(7);
    s.drives[2].job = Some(7);
    s.jobs.push(Job {
        id: 7,
        kind: JobKind::Copy,
        source: "debian-12.img".into(),
        verify: true,
        state: JobState::Running,
        created: T0 + 100,
        finished: None,
        targets: vec![
            target("sdb", Phase::Write, GIB, 2 * GIB),
            target("sdc", Phase::Verify, 3 * GIB / 2, 2 * GIB),
        ],
        error: None,
    });
    let mut failed = target("sdd", Phase::Failed, 100 * MIB, 2 * GIB);
    failed.error = Some("I/O error at 104857600".into());
    s.jobs.push(Job {
        id: 6,
        kind: JobKind::Copy,
        source: "debian-12.img".into(),
        verify: true,
        state: JobState::Failed,
        created: T0 + 10,
        finished: Some(T0 + 70),
        targets: vec![failed],
        error: None,
    });
    s.uploads.push(Upload {
        name: "arch.iso".into(),
        bytes: 300 * MIB,
        expected: Some(1200 * MIB),
        started: T0 + 90,
        rate_bps: 25 * MIB,
    });
    s
}

/// Draws `snap` with `ui` into a `w` x `h` TestBackend; the screen as lines.
fn screen(snap: &Snapshot, ui: &mut Ui, (w, h): (u16, u16)) -> Vec<String> {
    let mut term = Terminal::new(TestBackend::new(w, h)).unwrap_or_else(|e| match e {});
    let theme = Theme::new(ColorMode::Ansi256);
    term.draw(|f| draw(f, snap, ui, &theme))
        .unwrap_or_else(|e| match e {});
    let buf = term.backend().buffer();
    (0..h)
        .map(|y| {
            let line: String = (0..w).map(|x| buf[(x, y)].symbol()).collect();
            line.trim_end().to_string()
        })
        .collect()
}

/// Compares a screen with `expected`: one `|`-prefixed line per screen row
/// (indentation before the `|` and trailing spaces are ignored).
#[track_caller]
fn assert_screen(got: &[String], expected: &str) {
    let want: Vec<&str> = expected
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('|'))
        .map(str::trim_end)
        .collect();
    let got_text: Vec<String> = got.iter().map(|l| format!("|{l}")).collect();
    assert!(
        got.iter().map(String::as_str).eq(want.iter().copied()),
        "screen differs; got:\n{}\n",
        got_text.join("\n")
    );
}

/// The one helper of the view tests: `snap` drawn at `size` with a fresh
/// UI (plus `setup`) must read as `expected`, a `|`-prefixed line per row.
#[track_caller]
fn check(snap: &Snapshot, size: (u16, u16), setup: impl FnOnce(&mut Ui), expected: &str) {
    let mut ui = Ui::new(false);
    setup(&mut ui);
    ui.observe(snap);
    assert_screen(&screen(snap, &mut ui, size), expected);
}

/// A client terminal: a [`Dashboard`] whose output is replayed into the
/// vt100 emulator, the way an SSH client's terminal would show it.
struct Client {
    dash: crate::Dashboard,
    vt: vt100::Parser,
}

impl Client {
    fn new(opts: crate::Options) -> Client {
        let rows =
            std::num::NonZeroU16::new(opts.height.max(1)).unwrap_or(std::num::NonZeroU16::MIN);
        let cols =
            std::num::NonZeroU16::new(opts.width.max(1)).unwrap_or(std::num::NonZeroU16::MIN);
        let dash = crate::Dashboard::new(opts);
        let mut vt = vt100::Parser::new(rows, cols, 0);
        vt.process(&dash.enter_bytes());
        Client { dash, vt }
    }

    fn at(width: u16, height: u16) -> Client {
        Client::new(crate::Options {
            width,
            height,
            ..crate::Options::default()
        })
    }

    /// Renders `snap` if needed and shows the bytes on the emulator.
    fn render(&mut self, snap: &Snapshot) -> Option<Vec<u8>> {
        let out = self.dash.render(snap);
        if let Some(bytes) = &out {
            self.vt.process(bytes);
        }
        out
    }

    /// Types `keys` (then idles, so a lone ESC counts), renders; returns
    /// the actions.
    fn type_keys(&mut self, keys: &[u8], snap: &Snapshot) -> Vec<crate::Action> {
        let mut actions = self.dash.handle_input(keys, snap);
        actions.extend(self.dash.flush_pending(snap));
        self.render(snap);
        actions
    }

    /// The emulator's screen, trailing spaces trimmed.
    fn screen(&self) -> Vec<String> {
        let (_, cols) = self.vt.screen().size();
        self.vt
            .screen()
            .rows(0, cols.get())
            .map(|l| l.trim_end().to_string())
            .collect()
    }

    fn shows(&self, text: &str) -> bool {
        self.screen().iter().any(|l| l.contains(text))
    }
}
