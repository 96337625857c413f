//! Time to render one dashboard frame at 200x60 for a busy unit (16 drives,
//! 20 images, 8 jobs), in the release profile: `cargo bench -p copyunit-tui
//! --bench frame` (what `cargo xtask bench tui` runs and records).
//!
//! Two cases: a progress tick (one snapshot change, diffed output: what every
//! open dashboard pays ~1-10 times a second during a job), and a full repaint
//! (a new session or a resize). Prints `key=value` lines for xtask to parse.

#![forbid(unsafe_code)]

use std::hint::black_box;
use std::time::Instant;

use copyunit_model::{
    Drive, DriveKind, Event, EventKind, Image, ImageFormat, Job, JobKind, JobState, JobTarget,
    Phase, Snapshot, StoreUsage, UnitInfo,
};
use copyunit_tui::{ColorMode, Dashboard, Options};

const GIB: u64 = 1 << 30;
const T0: u64 = 1_795_000_000;

fn busy_unit() -> Snapshot {
    let drives = (0..16)
        .map(|i| Drive {
            name: format!("sd{}", (b'b' + i as u8) as char),
            path: format!("/dev/sd{}", (b'b' + i as u8) as char),
            kind: DriveKind::Usb,
            model: Some(format!("SanDisk Ultra Fit {i}")),
            vendor: Some("SanDisk".into()),
            slot: Some(format!("1-{}.{}", i / 4 + 1, i % 4 + 1)),
            size: (32 + 16 * (i % 3)) * GIB,
            eligible: i % 5 != 4,
            reason: (i % 5 == 4).then(|| "mounted at /media/usb".into()),
            job: (i < 12).then_some(i / 2 + 1),
            ..Drive::default()
        })
        .collect::<Vec<_>>();
    let images = (0..20)
        .map(|i| Image {
            name: format!("release-{i:02}-amd64.img.xz"),
            size: (1 + i) * GIB / 3,
            sha256: format!("{i:02x}3f2a9b7c1d4e5f60718293a4b5c6d7e8f9"),
            added: T0 + i * 3600,
            format: ImageFormat::Xz,
            content_size: Some((1 + i) * GIB),
            ..Image::default()
        })
        .collect();
    let jobs = (0..8u64)
        .map(|j| Job {
            id: j + 1,
            kind: JobKind::Copy,
            source: format!("release-{j:02}-amd64.img.xz"),
            verify: true,
            state: if j < 6 {
                JobState::Running
            } else {
                JobState::Done
            },
            created: T0 + j * 60,
            finished: (j >= 6).then_some(T0 + j * 60 + 300),
            targets: (0..2)
                .map(|t| JobTarget {
                    drive: drives[(j as usize * 2 + t) % 16].name.clone(),
                    phase: if j < 6 { Phase::Write } else { Phase::Done },
                    bytes_done: (j + 1) * GIB / 4,
                    bytes_total: Some(4 * GIB),
                    rate_bps: 40 << 20,
                    eta_secs: Some(90),
                    ..JobTarget::default()
                })
                .collect(),
            error: None,
        })
        .collect();
    let events = (0..200)
        .map(|i| Event {
            at: T0 + i,
            kind: EventKind::DriveAdded,
            message: format!("drive sd{} added", (b'a' + (i % 26) as u8) as char),
        })
        .collect();
    Snapshot {
        unit: UnitInfo {
            name: "bench-unit".into(),
            version: "0.1.0".into(),
            addresses: vec!["192.168.1.23".into()],
            port: 22,
            host_key_fingerprint: "SHA256:q3Rk2vWc0mB6yT1nX8pL4sJ7hG5fD9aZ2eC4uV6iO8k".into(),
            store: StoreUsage {
                total_bytes: 512 * GIB,
                free_bytes: 300 * GIB,
                used_bytes: 212 * GIB,
                images_bytes: 200 * GIB,
                ..StoreUsage::default()
            },
            uptime_secs: 86_400,
            pairing: false,
            pairing_code: None,
            duplicator: None,
        },
        drives,
        images,
        uploads: Vec::new(),
        partials: Vec::new(),
        jobs,
        events,
    }
}

fn options() -> Options {
    Options {
        width: 200,
        height: 60,
        colors: ColorMode::Ansi256,
        view_only: false,
        mouse: false,
    }
}

fn main() {
    let mut snap = busy_unit();

    // Progress ticks: every running target advances, the frame is diffed.
    let mut dash = Dashboard::new(options());
    let _ = dash.render(&snap);
    let ticks = 3000u64;
    let mut tick_bytes = 0usize;
    let start = Instant::now();
    for i in 0..ticks {
        for job in snap
            .jobs
            .iter_mut()
            .filter(|j| j.state == JobState::Running)
        {
            for t in &mut job.targets {
                t.bytes_done = (t.bytes_done + (40 << 20)) % (4 * GIB);
                t.eta_secs = Some(90 - i % 90);
            }
        }
        tick_bytes += black_box(dash.render(&snap)).map_or(0, |b| b.len());
    }
    let tick = start.elapsed();

    // Full repaints: a fresh dashboard draws everything.
    let repaints = 1000u64;
    let mut full_bytes = 0usize;
    let start = Instant::now();
    for _ in 0..repaints {
        let mut dash = Dashboard::new(options());
        full_bytes += black_box(dash.render(&snap)).map_or(0, |b| b.len());
    }
    let full = start.elapsed();

    let ms = |d: std::time::Duration, n: u64| d.as_secs_f64() * 1000.0 / n as f64;
    println!("size=200x60 drives=16 images=20 jobs=8 events=200");
    println!("tick_ms_per_frame={:.3}", ms(tick, ticks));
    println!("tick_bytes_per_frame={}", tick_bytes as u64 / ticks);
    println!("full_ms_per_frame={:.3}", ms(full, repaints));
    println!("full_bytes_per_frame={}", full_bytes as u64 / repaints);
}
