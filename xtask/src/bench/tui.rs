//! Benchmark: one dashboard frame at 200x60 for a busy unit.
//!
//! Runs `cargo bench -p copyunit-tui --bench frame` (release profile; the
//! fixture and the timing loop live in tui/benches/frame.rs), prints its
//! result and appends a dated section to BENCHMARKS.md. Target: < 2 ms/frame.

use std::fmt::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::util;

/// The budget for one frame at 200x60.
const TARGET_MS: f64 = 2.0;

pub fn run() -> Result<()> {
    let root = util::root();
    let out = Command::new(env!("CARGO"))
        .args(["bench", "--quiet", "-p", "copyunit-tui", "--bench", "frame"])
        .current_dir(&root)
        .output()
        .context("could not start cargo bench")?;
    if !out.status.success() {
        bail!(
            "cargo bench -p copyunit-tui --bench frame failed with {}:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| -> Result<String> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(|v| v.trim().to_string())
            .with_context(|| format!("the frame bench printed no `{key}`:\n{stdout}"))
    };
    let tick_ms: f64 = value("tick_ms_per_frame")?.parse()?;
    let full_ms: f64 = value("full_ms_per_frame")?.parse()?;
    let tick_bytes = value("tick_bytes_per_frame")?;
    let full_bytes = value("full_bytes_per_frame")?;
    let verdict = |ms: f64| if ms < TARGET_MS { "ok" } else { "OVER BUDGET" };

    let mut section = String::new();
    writeln!(
        section,
        "\n## tui: one dashboard frame at 200x60 ({})\n",
        today()
    )?;
    writeln!(
        section,
        "Command: `cargo xtask bench tui` (runs `cargo bench -p copyunit-tui --bench frame`, release profile)."
    )?;
    writeln!(section, "Machine: {}.", machine())?;
    writeln!(
        section,
        "Fixture: 16 drives, 20 images, 8 jobs (6 running), 200 events; 256 colours.\n"
    )?;
    writeln!(
        section,
        "| case | ms/frame | bytes/frame | target < {TARGET_MS} ms |"
    )?;
    writeln!(section, "|---|---|---|---|")?;
    writeln!(
        section,
        "| progress tick (diffed redraw) | {tick_ms:.3} | {tick_bytes} | {} |",
        verdict(tick_ms)
    )?;
    writeln!(
        section,
        "| full repaint (new session / resize) | {full_ms:.3} | {full_bytes} | {} |",
        verdict(full_ms)
    )?;
    print!("{section}");

    let path = root.join("BENCHMARKS.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    if text.is_empty() {
        text.push_str(
            "# Benchmarks\n\nEach `cargo xtask bench NAME` appends a dated section here.\n",
        );
    }
    text.push_str(&section);
    std::fs::write(&path, text).with_context(|| format!("could not write {}", path.display()))?;
    eprintln!("xtask: appended to {}", path.display());
    if full_ms >= TARGET_MS || tick_ms >= TARGET_MS {
        bail!("a dashboard frame took longer than {TARGET_MS} ms");
    }
    Ok(())
}

/// Today's date (UTC) as `YYYY-MM-DD`.
fn today() -> String {
    Command::new("date")
        .args(["-u", "+%F"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown date".into())
}

/// CPU model, core count, kernel and load, read from /proc.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load1 = load.split_whitespace().next().unwrap_or("?");
    format!(
        "{cpu}, {cores} cores, Linux {}, load average {load1} at start",
        kernel.trim()
    )
}
