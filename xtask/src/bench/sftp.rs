//! `cargo xtask bench sftp`: upload throughput, unitd against OpenSSH.
//!
//! The same OpenSSH `sftp` client uploads the same 2 GiB random file to
//! unitd and to OpenSSH's own sftp-server (an sshd started here on loopback
//! with its own config), with the same cipher, into the same filesystem.
//! unitd's figure includes hashing the upload (SHA-256) and publishing it.

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Killed, Scratch, keygen};
use crate::util::{self, ensure_apt, root};

const SIZE_MIB: u64 = 2048;
const CIPHERS: [&str; 2] = ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com"];
const UNITD_PORT: u16 = 42201;
const SSHD_PORT: u16 = 42202;

pub fn run() -> Result<()> {
    ensure_apt(&[("sftp", "openssh-client"), ("sshd", "openssh-server")])?;
    let sshd = ["/usr/sbin/sshd", "/usr/bin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("sshd not found after installing openssh-server")?;
    let sftp_server = ["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("OpenSSH's sftp-server not found")?;
    let scratch = Scratch::new("sftp")?;
    let (work, key) = (scratch.dir.clone(), scratch.key.clone());
    let host = work.join("host");
    keygen(&host)?;

    let src = work.join("random.img");
    eprintln!("bench sftp: making a {SIZE_MIB} MiB random file");
    util::run(
        Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "status=none"])
            .arg(format!("of={}", src.display()))
            .arg(format!("count={SIZE_MIB}")),
    )?;

    let store = work.join("store");
    let _unitd = Killed(
        Command::new(util::target_dir().join("release/unitd"))
            .args(["--listen", &format!("127.0.0.1:{UNITD_PORT}"), "--store"])
            .arg(&store)
            .arg("--authorized-keys")
            .arg(work.join("authorized_keys"))
            .arg("--host-key")
            .arg(&host)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting unitd")?,
    );
    let openssh_dir = work.join("openssh");
    fs::create_dir_all(&openssh_dir)?;
    fs::create_dir_all("/run/sshd")?;
    let config = work.join("sshd_config");
    fs::write(
        &config,
        format!(
            "Port {SSHD_PORT}\nListenAddress 127.0.0.1\nHostKey {host}\nAuthorizedKeysFile {ak}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPermitRootLogin prohibit-password\nPidFile none\nSubsystem sftp {sftp_server}\n",
            host = host.display(),
            ak = work.join("authorized_keys").display(),
        ),
    )?;
    let _sshd = Killed(
        Command::new(sshd)
            .arg("-D")
            .arg("-f")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting sshd")?,
    );
    wait_port(UNITD_PORT)?;
    wait_port(SSHD_PORT)?;
    let user = std::env::var("USER").unwrap_or_else(|_| "root".into());

    let mut rows = Vec::new();
    for cipher in CIPHERS {
        // unitd's store is its own folder; OpenSSH writes into openssh_dir.
        let ours = upload(&work, &key, UNITD_PORT, "admin", cipher, &src, "bench.img")?;
        let theirs = upload(
            &work,
            &key,
            SSHD_PORT,
            &user,
            cipher,
            &src,
            &openssh_dir.join("bench.img").display().to_string(),
        )?;
        let ratio = ours / theirs;
        eprintln!(
            "bench sftp: {cipher}: unitd {ours:.0} MiB/s, OpenSSH {theirs:.0} MiB/s, ratio {ratio:.2}"
        );
        rows.push((cipher, ours, theirs, ratio));
    }
    let mut section = format!(
        "\n## sftp upload ({})\n\nCommand: `cargo xtask bench sftp`. OpenSSH `sftp` client, {SIZE_MIB} MiB random file on /dev/shm, both servers on 127.0.0.1 writing to /dev/shm; unitd hashes (SHA-256) and publishes the image. Machine: {}.\n\n| cipher | unitd MiB/s | OpenSSH sftp-server MiB/s | ratio (target >= 1.5) |\n|---|---|---|---|\n",
        today(),
        machine()
    );
    for (c, o, t, r) in &rows {
        section += &format!("| {c} | {o:.0} | {t:.0} | {r:.2} |\n");
    }
    append_benchmarks(&section)?;
    Ok(())
}

fn upload(
    work: &Path,
    key: &Path,
    port: u16,
    user: &str,
    cipher: &str,
    src: &Path,
    dest: &str,
) -> Result<f64> {
    let batch = work.join("batch");
    fs::write(&batch, format!("put {} {dest}\n", src.display()))?;
    let start = Instant::now();
    let out = Command::new("sftp")
        .args(["-q", "-c", cipher, "-P", &port.to_string(), "-i"])
        .arg(key)
        .args([
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=ERROR",
            "-b",
        ])
        .arg(&batch)
        .arg(format!("{user}@127.0.0.1"))
        .stdin(Stdio::null())
        .output()?;
    let secs = start.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "sftp to port {port} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(SIZE_MIB as f64 / secs)
}

fn wait_port(port: u16) -> Result<()> {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

pub fn today() -> String {
    let out = Command::new("date").args(["-u", "+%Y-%m-%d"]).output();
    out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

pub fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

/// Appends a section to BENCHMARKS.md at the workspace root.
pub fn append_benchmarks(section: &str) -> Result<()> {
    use std::io::Write;
    let path = root().join("BENCHMARKS.md");
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    f.write_all(section.as_bytes())?;
    eprintln!("bench: results appended to {}", path.display());
    Ok(())
}
