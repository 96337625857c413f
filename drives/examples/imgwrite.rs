//! `imgwrite`: drive the writer from a shell, for benchmarks and by hand.
//!
//! ```text
//! imgwrite [--no-verify] [--bmap FILE] [--depth N] [--sha256 HEX] IMAGE DRIVE...   write (loop devices allowed)
//! imgwrite --hash DRIVE LEN                                          read-back SHA-256 of LEN bytes
//! imgwrite --read DRIVE OUT                                          drive to a new image file
//! ```
//! Prints one summary line per target and `peak_rss_kib=N` (VmHWM), and
//! exits 1 unless every target succeeded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use copyunit_drives::{CancelToken, CopyPlan, DiscoverOptions, Phase, Progress, TargetUpdate};

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: imgwrite [--no-verify] [--bmap FILE] [--depth N] IMAGE DRIVE... | --hash DRIVE LEN | --read DRIVE OUT"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = DiscoverOptions {
        allow_loop_devices: true,
        ..DiscoverOptions::default()
    };
    let cancel = CancelToken::new();
    let quiet = |_: Progress| {};
    let started = Instant::now();
    match args.first().map(String::as_str) {
        Some("--hash") if args.len() == 3 => {
            let Ok(len) = args[2].parse::<u64>() else {
                return usage();
            };
            match copyunit_drives::drive_sha256(std::path::Path::new(&args[1]), len, &cancel) {
                Ok(h) => {
                    println!(
                        "sha256={h} bytes={len} secs={:.3}",
                        started.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("imgwrite: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("--read") if args.len() == 3 => {
            match copyunit_drives::read_drive(
                &args[1],
                std::path::Path::new(&args[2]),
                &opts,
                &cancel,
                &quiet,
            ) {
                Ok(r) => {
                    println!(
                        "sha256={} bytes={} secs={:.3}",
                        r.sha256,
                        r.bytes,
                        started.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("imgwrite: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            let mut verify = true;
            let mut bmap = None;
            let mut depth = 4;
            let mut sha = None;
            let mut rest = Vec::new();
            let mut it = args.into_iter();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--no-verify" => verify = false,
                    "--bmap" => bmap = it.next().map(PathBuf::from),
                    "--sha256" => sha = it.next(),
                    "--depth" => depth = it.next().and_then(|d| d.parse().ok()).unwrap_or(4),
                    _ => rest.push(a),
                }
            }
            if rest.len() < 2 {
                return usage();
            }
            let image = rest.remove(0);
            let mut plan = CopyPlan::new(image, rest);
            plan.verify = verify;
            plan.bmap = bmap;
            plan.queue_depth = depth;
            plan.content_sha256 = sha;
            plan.discover = opts;
            let verbose = std::env::var_os("IMGWRITE_PROGRESS").is_some();
            let progress = |u: TargetUpdate| {
                if verbose && u.progress.phase != Phase::Write {
                    eprintln!(
                        "{} {:?} {} B",
                        u.drive, u.progress.phase, u.progress.bytes_done
                    );
                }
            };
            let r = copyunit_drives::copy(&plan, &cancel, &progress);
            let secs = started.elapsed().as_secs_f64();
            for t in &r.targets {
                println!(
                    "{} {:?} written={} verified={} {}",
                    t.drive,
                    t.phase,
                    t.bytes_written,
                    t.verified,
                    t.error.as_deref().unwrap_or("")
                );
            }
            if let Some(e) = &r.source_error {
                println!("source error: {e}");
            }
            println!(
                "content_len={} secs={secs:.3} peak_rss_kib={}",
                r.content_len,
                peak_rss_kib()
            );
            if r.all_done() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
