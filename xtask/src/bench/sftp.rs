//! `cargo xtask bench sftp`: upload throughput and server CPU, unitd
//! against OpenSSH, for every SFTP client the tests drive.
//!
//! Each client uploads the same random file to unitd and to OpenSSH's own
//! sftp-server (an sshd started here on loopback with its own config and
//! the same host key), into the same filesystem (/dev/shm). Rounds are
//! interleaved (every client, both servers, then again, the server order
//! alternating) and each figure is the median over the rounds: one upload's
//! MiB/s swings 2x on a shared machine, the server's CPU seconds per GiB
//! much less. Server CPU comes from a cpuacct cgroup around each server:
//! unitd, and sshd with the session processes and sftp-server it forks.
//! unitd's figure includes hashing the upload (SHA-256) and publishing it.
//!
//! COPYUNIT_BENCH_SFTP_MIB (default 512) and COPYUNIT_BENCH_SFTP_ROUNDS
//! (default 5, at least 5) size the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{Killed, Scratch, keygen};
use crate::util::{self, ensure_apt, root};

const UNITD_PORT: u16 = 42201;
const SSHD_PORT: u16 = 42202;

/// The clients measured, each with its default settings except where said.
const CLIENTS: &[&str] = &[
    "OpenSSH sftp, chacha20-poly1305 (its default)",
    "OpenSSH sftp, aes128-gcm",
    "psftp (PuTTY)",
    "curl (libssh2)",
    "lftp",
    "rclone",
    "paramiko",
    "asyncssh",
];

/// One server under test.
struct Server {
    name: &'static str,
    port: u16,
    user: String,
    /// Where an upload goes, as this server's SFTP names it.
    dest: String,
    cpu: CpuGroup,
}

/// What the clients share: the file, the key in both formats, the pinned
/// host key (both servers use the same one).
struct Env {
    work: PathBuf,
    key: PathBuf,
    ppk: PathBuf,
    src: PathBuf,
    fingerprint: String,
    known_hosts: PathBuf,
    mib: u64,
}

#[derive(Default, Clone)]
struct Sample {
    mib_s: f64,
    cpu_s_per_gib: f64,
}

pub fn run() -> Result<()> {
    ensure_apt(&[
        ("sftp", "openssh-client"),
        ("sshd", "openssh-server"),
        ("psftp", "putty-tools"),
        ("puttygen", "putty-tools"),
        ("curl", "curl"),
        ("lftp", "lftp"),
        ("rclone", "rclone"),
    ])?;
    let mib: u64 = env_num("COPYUNIT_BENCH_SFTP_MIB", 512);
    let rounds: usize = env_num("COPYUNIT_BENCH_SFTP_ROUNDS", 5).max(5) as usize;
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
    eprintln!("bench sftp: making a {mib} MiB random file");
    util::run(
        Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "status=none"])
            .arg(format!("of={}", src.display()))
            .arg(format!("count={mib}")),
    )?;

    let store = work.join("store");
    let unitd = Killed(
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
    let sshd = Killed(
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
    let servers = [
        Server {
            name: "unitd",
            port: UNITD_PORT,
            user: "admin".into(),
            dest: "bench.img".into(),
            cpu: CpuGroup::new("copyunit-bench-unitd", unitd.0.id())?,
        },
        Server {
            name: "OpenSSH",
            port: SSHD_PORT,
            user,
            dest: openssh_dir.join("bench.img").display().to_string(),
            cpu: CpuGroup::new("copyunit-bench-openssh", sshd.0.id())?,
        },
    ];

    let host_pub = fs::read_to_string(host.with_extension("pub"))?;
    let mut parts = host_pub.split_whitespace();
    let (kind, blob) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let known_hosts = work.join("known_hosts");
    fs::write(
        &known_hosts,
        format!("[127.0.0.1]:{UNITD_PORT} {kind} {blob}\n[127.0.0.1]:{SSHD_PORT} {kind} {blob}\n"),
    )?;
    let lf = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(host.with_extension("pub"))
        .output()?;
    let fingerprint = String::from_utf8_lossy(&lf.stdout)
        .split_whitespace()
        .nth(1)
        .context("ssh-keygen -lf printed no fingerprint")?
        .to_string();
    let ppk = work.join("id.ppk");
    util::run(
        Command::new("puttygen")
            .arg(&key)
            .args(["-O", "private", "-o"])
            .arg(&ppk),
    )?;
    let env = Env {
        work,
        key,
        ppk,
        src,
        fingerprint,
        known_hosts,
        mib,
    };

    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    // samples[client][server] over the rounds.
    let mut samples = vec![[Vec::new(), Vec::new()]; CLIENTS.len()];
    for round in 0..rounds {
        for (c, client) in CLIENTS.iter().enumerate() {
            let order: [usize; 2] = if (round + c) % 2 == 0 { [0, 1] } else { [1, 0] };
            for s in order {
                let sample = measure(&env, client, &servers[s])
                    .with_context(|| format!("{client} to {}", servers[s].name))?;
                eprintln!(
                    "bench sftp: round {}: {client} -> {}: {:.0} MiB/s, {:.2} CPU s/GiB",
                    round + 1,
                    servers[s].name,
                    sample.mib_s,
                    sample.cpu_s_per_gib
                );
                samples[c][s].push(sample);
            }
        }
    }

    let mut section = format!(
        "\n## sftp upload, every client ({})\n\nCommand: `cargo xtask bench sftp` (COPYUNIT_BENCH_SFTP_MIB={mib}, {rounds} interleaved rounds, medians). Each client uploads a {mib} MiB random file on /dev/shm to unitd and to OpenSSH's sftp-server (sshd on 127.0.0.1, same host key), both writing to /dev/shm; unitd hashes (SHA-256) and publishes the image. Server CPU: a cpuacct cgroup around unitd, and around sshd with everything it forks (session sshd, sftp-server). Clients with their default settings, except rclone with `disable_hashcheck` (against OpenSSH it would otherwise run md5sum on the server after each upload). Machine: {}, load average at start {}.\n\n| client | unitd MiB/s | OpenSSH MiB/s | MiB/s ratio (goal >= 1) | unitd CPU s/GiB | OpenSSH CPU s/GiB | CPU ratio (goal <= 1) |\n|---|---|---|---|---|---|---|\n",
        now(),
        machine(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    for (c, client) in CLIENTS.iter().enumerate() {
        let ours_rate = median(samples[c][0].iter().map(|s| s.mib_s));
        let theirs_rate = median(samples[c][1].iter().map(|s| s.mib_s));
        let ours_cpu = median(samples[c][0].iter().map(|s| s.cpu_s_per_gib));
        let theirs_cpu = median(samples[c][1].iter().map(|s| s.cpu_s_per_gib));
        section += &format!(
            "| {client} | {ours_rate:.0} | {theirs_rate:.0} | {:.2} | {ours_cpu:.2} | {theirs_cpu:.2} | {:.2} |\n",
            ours_rate / theirs_rate,
            ours_cpu / theirs_cpu,
        );
    }
    drop(servers);
    drop(unitd);
    drop(sshd);
    append_benchmarks(&section)?;
    Ok(())
}

fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// One upload by `client` to `server`: its MiB/s, and the server's CPU
/// seconds per GiB while it ran.
fn measure(env: &Env, client: &str, server: &Server) -> Result<Sample> {
    let mut cmd = client_command(env, client, server)?;
    let cpu0 = server.cpu.usage_secs()?;
    let start = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {cmd:?}"))?;
    let secs = start.elapsed().as_secs_f64();
    let cpu = server.cpu.usage_secs()? - cpu0;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let gib = env.mib as f64 / 1024.0;
    Ok(Sample {
        mib_s: env.mib as f64 / secs,
        cpu_s_per_gib: cpu / gib,
    })
}

/// `timeout 600 PROG`: a stuck client fails the benchmark, not hangs it.
fn bounded(prog: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-k", "10", "600", prog]);
    c
}

fn client_command(env: &Env, client: &str, server: &Server) -> Result<Command> {
    let (port, user, dest) = (server.port.to_string(), &server.user, &server.dest);
    let ssh_opts = |c: &mut Command| {
        c.args(["-o", "StrictHostKeyChecking=yes", "-o"])
            .arg(format!("UserKnownHostsFile={}", env.known_hosts.display()))
            .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o"])
            .args(["IdentitiesOnly=yes", "-i"])
            .arg(&env.key);
    };
    let batch = env.work.join("batch");
    let cmd = match client {
        c if c.starts_with("OpenSSH sftp") => {
            let cipher = if c.contains("aes128-gcm") {
                "aes128-gcm@openssh.com"
            } else {
                "chacha20-poly1305@openssh.com"
            };
            fs::write(&batch, format!("put {} {dest}\n", env.src.display()))?;
            let mut c = bounded("sftp");
            c.args(["-q", "-c", cipher, "-P", &port]);
            ssh_opts(&mut c);
            c.arg("-b").arg(&batch).arg(format!("{user}@127.0.0.1"));
            c
        }
        "psftp (PuTTY)" => {
            fs::write(&batch, format!("put {} {dest}\n", env.src.display()))?;
            let mut c = bounded("psftp");
            c.args(["-batch", "-P", &port, "-i"])
                .arg(&env.ppk)
                .args(["-hostkey", &env.fingerprint, "-b"])
                .arg(&batch)
                .args(["-be", "-l", user, "127.0.0.1"]);
            c
        }
        "curl (libssh2)" => {
            let mut c = bounded("curl");
            c.args(["-sS", "--fail", "-u", &format!("{user}:"), "--key"])
                .arg(&env.key)
                .arg("--pubkey")
                .arg(env.key.with_extension("pub"))
                .args([
                    "--hostpubsha256",
                    env.fingerprint.trim_start_matches("SHA256:"),
                    "-T",
                ])
                .arg(&env.src)
                .arg(format!(
                    "sftp://127.0.0.1:{port}/{}",
                    dest.trim_start_matches('/')
                ));
            c
        }
        "lftp" => {
            let mut ssh = Command::new("ssh");
            ssh_opts(&mut ssh);
            let ssh_line: Vec<String> = ssh
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let mut c = bounded("lftp");
            c.arg("-c").arg(format!(
                "set cmd:fail-exit yes; set net:max-retries 1; set sftp:connect-program \"ssh -a -x {}\"; open -u {user}, sftp://127.0.0.1:{port}; put {} -o {dest}",
                ssh_line.join(" "),
                env.src.display()
            ));
            c
        }
        "rclone" => {
            let mut c = bounded("rclone");
            c.arg("--config")
                .arg(env.work.join("rclone.conf"))
                .arg("copyto")
                // Every round uploads the same file to the same name: unitd
                // keeps the client's mtime, so without this rclone would
                // (rightly) skip the unchanged file and measure nothing.
                .arg("--ignore-times")
                .arg(&env.src)
                .arg(format!("bench:{dest}"))
                .env("RCLONE_CONFIG_BENCH_TYPE", "sftp")
                .env("RCLONE_CONFIG_BENCH_HOST", "127.0.0.1")
                .env("RCLONE_CONFIG_BENCH_PORT", &port)
                .env("RCLONE_CONFIG_BENCH_USER", user)
                .env("RCLONE_CONFIG_BENCH_KEY_FILE", &env.key)
                .env("RCLONE_CONFIG_BENCH_KNOWN_HOSTS_FILE", &env.known_hosts)
                .env("RCLONE_CONFIG_BENCH_DISABLE_HASHCHECK", "true");
            c
        }
        "paramiko" | "asyncssh" => {
            let mut c = bounded("python3");
            c.arg(root().join(format!("tests/clients/{client}_client.py")))
                .arg("put")
                .arg(&env.src)
                .arg(dest)
                .env("UNIT_PORT", &port)
                .env("UNIT_USER", user)
                .env("UNIT_KEYS", &env.key)
                .env("UNIT_KNOWN_HOSTS", &env.known_hosts);
            c
        }
        other => bail!("no command for client {other}"),
    };
    Ok(cmd)
}

/// A cpuacct cgroup holding one server process (and what it forks from
/// then on): its CPU time is what the server spent. Removed on drop.
struct CpuGroup {
    dir: PathBuf,
    parent: PathBuf,
    usage: fn(&Path) -> Result<f64>,
}

impl CpuGroup {
    fn new(name: &str, pid: u32) -> Result<CpuGroup> {
        let v1 = Path::new("/sys/fs/cgroup/cpuacct");
        let (parent, usage): (PathBuf, fn(&Path) -> Result<f64>) =
            if v1.join("cpuacct.usage").exists() {
                (v1.to_path_buf(), |dir| {
                    let ns: f64 = fs::read_to_string(dir.join("cpuacct.usage"))?
                        .trim()
                        .parse()?;
                    Ok(ns / 1e9)
                })
            } else {
                (PathBuf::from("/sys/fs/cgroup"), |dir| {
                    let stat = fs::read_to_string(dir.join("cpu.stat"))?;
                    let us: f64 = stat
                        .lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .context("cpu.stat has no usage_usec")?
                        .trim()
                        .parse()?;
                    Ok(us / 1e6)
                })
            };
        let dir = parent.join(format!("{name}-{}", std::process::id()));
        fs::create_dir_all(&dir)
            .with_context(|| format!("making the cgroup {} (needs root)", dir.display()))?;
        fs::write(dir.join("cgroup.procs"), pid.to_string())
            .with_context(|| format!("moving pid {pid} into {}", dir.display()))?;
        Ok(CpuGroup { dir, parent, usage })
    }

    fn usage_secs(&self) -> Result<f64> {
        (self.usage)(&self.dir)
    }
}

impl Drop for CpuGroup {
    fn drop(&mut self) {
        let pids = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = fs::write(self.parent.join("cgroup.procs"), pid);
        }
        let _ = fs::remove_dir(&self.dir);
    }
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

fn now() -> String {
    let out = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output();
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
