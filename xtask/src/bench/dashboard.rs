//! `cargo xtask bench dashboard`: what idle dashboards cost the unit.
//!
//! unitd (release) copies an image to a loop device over and over; we
//! measure its CPU time over a window with no dashboard open, then with 20
//! idle `ssh -tt` dashboards watching the same jobs. The difference, in
//! percent of one core, is the price of the dashboards (target < 10 %).

use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::sftp::{append_benchmarks, machine, today};
use super::{Killed, Scratch};
use crate::util::{self, ensure_apt};

const PORT: u16 = 42211;
const SESSIONS: usize = 20;
const WINDOW: Duration = Duration::from_secs(15);
const IMAGE_MIB: u64 = 512;

struct Detach(String);
impl Drop for Detach {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

pub fn run() -> Result<()> {
    ensure_apt(&[("ssh", "openssh-client"), ("losetup", "mount")])?;
    let scratch = Scratch::new("dash")?;
    let (work, key) = (scratch.dir.clone(), scratch.key.clone());
    fs::create_dir_all(work.join("store/images"))?;

    util::run(
        Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "status=none"])
            .arg(format!(
                "of={}",
                work.join("store/images/bench.img").display()
            ))
            .arg(format!("count={IMAGE_MIB}")),
    )?;
    let disk = work.join("disk");
    fs::File::create(&disk)?.set_len((IMAGE_MIB + 64) << 20)?;
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&disk)
        .output()?;
    if !out.status.success() {
        bail!("losetup failed (root needed)");
    }
    let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let _detach = Detach(dev.clone());
    let name = dev.trim_start_matches("/dev/").to_string();

    let unitd = Killed(
        Command::new(util::target_dir().join("release/unitd"))
            .args([
                "--listen",
                &format!("127.0.0.1:{PORT}"),
                "--allow-loop-devices",
                "--store",
            ])
            .arg(work.join("store"))
            .arg("--authorized-keys")
            .arg(work.join("authorized_keys"))
            .arg("--host-key")
            .arg(work.join("host"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting unitd")?,
    );
    let pid = unitd.0.id();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", PORT)).is_err() {
        if start.elapsed() > Duration::from_secs(60) {
            bail!("unitd did not start");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ssh = |args: &[&str]| -> Command {
        let mut c = Command::new("ssh");
        c.args(["-i"]).arg(&key).args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-p",
            &PORT.to_string(),
        ]);
        c.args(args).arg("admin@127.0.0.1");
        c
    };
    // Jobs run back to back on their own thread for the whole measurement.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let copier = {
        let stop = stop.clone();
        let mut cmd = ssh(&["-o", "BatchMode=yes"]);
        cmd.arg(format!("copy bench.img {name} --wait"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let program = cmd.get_program().to_owned();
        let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        std::thread::spawn(move || {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = Command::new(&program)
                    .args(&args)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    let alone = cpu_share(pid, WINDOW)?;
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let child = ssh(&["-tt"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        sessions.push(Killed(child));
    }
    std::thread::sleep(Duration::from_secs(3));
    let watched = cpu_share(pid, WINDOW)?;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    drop(sessions);
    let _ = copier.join();
    let added = (watched - alone).max(0.0);
    eprintln!(
        "bench dashboard: unitd CPU {alone:.1}% of a core with jobs running, {watched:.1}% with {SESSIONS} idle dashboards: +{added:.1}%"
    );
    append_benchmarks(&format!(
        "\n## dashboards: {SESSIONS} idle sessions during copy jobs ({})\n\nCommand: `cargo xtask bench dashboard`. unitd (release) copies a {IMAGE_MIB} MiB image to a loop device on /dev/shm back to back (with read-back); CPU time of unitd over {} s, from /proc. Machine: {}.\n\n| unitd CPU, jobs only | with {SESSIONS} dashboards | added by the dashboards (target < 10 % of one core) |\n|---|---|---|\n| {alone:.1} % | {watched:.1} % | {added:.1} % |\n",
        today(),
        WINDOW.as_secs(),
        machine()
    ))
}

/// Percent of one core that process `pid` used over `window`.
fn cpu_share(pid: u32, window: Duration) -> Result<f64> {
    let ticks = || -> Result<u64> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields 14 and 15 (utime, stime) are 12 and 13 after the comm.
        Ok(f.get(11).unwrap_or(&"0").parse::<u64>()? + f.get(12).unwrap_or(&"0").parse::<u64>()?)
    };
    let hz = 100.0; // USER_HZ on Linux
    let t0 = ticks()?;
    let start = Instant::now();
    std::thread::sleep(window);
    let t1 = ticks()?;
    Ok((t1 - t0) as f64 / hz / start.elapsed().as_secs_f64() * 100.0)
}
