//! End-to-end harness: a real `unitd` on a random loopback port with a
//! temporary store, driven by the real OpenSSH clients.
//!
//! The host key is generated here and pinned in a known_hosts file, so every
//! client call checks it like an admin's would. Nothing here sleeps for a
//! fixed time to make a test pass: we wait for observable states.

#![forbid(unsafe_code)]

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// The unitd binary, built once per test run.
pub fn unitd_bin() -> PathBuf {
    static BUILD: Once = Once::new();
    if let Some(p) = std::env::var_os("UNITD_BIN") {
        return PathBuf::from(p);
    }
    let root = workspace_root();
    BUILD.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "unitd", "--bin", "unitd"])
            .current_dir(&root)
            .status()
            .expect("cargo build -p unitd");
        assert!(status.success(), "building unitd failed");
    });
    target_dir().join("debug").join("unitd")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// A key pair made with ssh-keygen.
pub struct Key {
    pub private: PathBuf,
    pub public: String,
}

pub fn keygen(dir: &Path, name: &str) -> Key {
    let private = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&private)
        .status()
        .expect("ssh-keygen");
    assert!(status.success());
    let public = fs::read_to_string(private.with_extension("pub")).unwrap();
    Key { private, public }
}

/// How to start a test unit.
pub struct Options {
    pub with_key: bool,
    pub store: Option<PathBuf>,
    pub extra: Vec<String>,
    /// Run alone among the tests that use drives.
    pub exclusive_drives: bool,
    /// Offer this process's loop devices ([`Loop`]s, and loop devices over
    /// files in the unit's directory) as targets, and no others: a duplicator
    /// or `all` must not reach another program's loop devices.
    pub loops: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            with_key: true,
            store: None,
            extra: Vec::new(),
            exclusive_drives: false,
            loops: false,
        }
    }
}

/// A running unitd and the files around it.
pub struct Unit {
    pub dir: tempfile::TempDir,
    pub store: PathBuf,
    pub key: Key,
    pub port: u16,
    host_key: PathBuf,
    known_hosts: PathBuf,
    authorized_keys: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    /// Held by units that see loop devices: `all` (and the dashboard's `a`)
    /// must not reach the drives of a test running beside it.
    _drives: Option<std::sync::MutexGuard<'static, ()>>,
}

static DRIVES: Mutex<()> = Mutex::new(());

impl Unit {
    pub fn start() -> Unit {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> Unit {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = keygen(dir.path(), "admin_key");
        let host_key = dir.path().join("ssh_host_ed25519_key");
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&host_key)
            .status()
            .unwrap();
        assert!(out.success());
        let authorized_keys = dir.path().join("authorized_keys");
        fs::write(
            &authorized_keys,
            if opts.with_key {
                key.public.as_str()
            } else {
                ""
            },
        )
        .unwrap();
        let store = opts.store.unwrap_or_else(|| dir.path().join("store"));
        let mut extra = opts.extra;
        if opts.loops {
            for under in [loop_dir(), dir.path().to_path_buf()] {
                extra.push("--allow-loop-devices-under".into());
                extra.push(under.display().to_string());
            }
        }
        let mut unit = Unit {
            known_hosts: dir.path().join("known_hosts"),
            dir,
            store,
            key,
            port: 0,
            host_key,
            authorized_keys,
            extra,
            child: None,
            log: Arc::new(Mutex::new(String::new())),
            _drives: opts
                .exclusive_drives
                .then(|| DRIVES.lock().unwrap_or_else(|p| p.into_inner())),
        };
        unit.launch().expect("unitd starts");
        unit
    }

    /// Starts unitd (again) on a fresh port with the same store and keys.
    pub fn launch(&mut self) -> Result<()> {
        let mut child = Command::new(unitd_bin())
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--store")
            .arg(&self.store)
            .arg("--authorized-keys")
            .arg(&self.authorized_keys)
            .arg("--host-key")
            .arg(&self.host_key)
            .args(["--name", "testunit"])
            .args(&self.extra)
            .env("UNITD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting unitd")?;
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(port) = line.split("listening on 127.0.0.1:").nth(1)
                    && let Some(t) = tx.take()
                {
                    let port: String = port.chars().take_while(char::is_ascii_digit).collect();
                    let _ = t.send(port.parse::<u16>().unwrap_or(0));
                }
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        self.child = Some(child);
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(port) if port > 0 => self.port = port,
            _ => bail!("unitd did not start:\n{}", self.log()),
        }
        let pub_path = self.host_key.with_extension("pub");
        if !pub_path.exists() {
            // unitd generated the key itself: derive the public half.
            let out = Command::new("ssh-keygen")
                .arg("-y")
                .arg("-f")
                .arg(&self.host_key)
                .output()?;
            fs::write(&pub_path, &out.stdout)?;
        }
        let pubkey = fs::read_to_string(&pub_path)?;
        let mut parts = pubkey.split_whitespace();
        let (kind, blob) = (parts.next().unwrap(), parts.next().unwrap());
        fs::write(
            &self.known_hosts,
            format!("[127.0.0.1]:{} {kind} {blob}\n", self.port),
        )?;
        Ok(())
    }

    /// Stops unitd (SIGKILL: a crash, as far as the store can tell).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Options every client gets: our key, our pinned known_hosts, no agent.
    pub fn ssh_opts(&self, key: Option<&Path>) -> Vec<String> {
        let mut o = vec![
            "-o".into(),
            format!("UserKnownHostsFile={}", self.known_hosts.display()),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
            "-o".into(),
            "IdentityAgent=none".into(),
            "-o".into(),
            "ConnectTimeout=30".into(),
            "-o".into(),
            "LogLevel=ERROR".into(),
        ];
        if let Some(k) = key {
            o.push("-i".into());
            o.push(k.display().to_string());
        }
        o
    }

    pub fn ssh_command(&self, key: Option<&Path>) -> Command {
        let mut c = Command::new("ssh");
        c.args(self.ssh_opts(key))
            .args(["-o", "BatchMode=yes", "-p"])
            .arg(self.port.to_string())
            .arg("admin@127.0.0.1");
        c
    }

    /// `ssh admin@unit ARGS` with the admin key, no stdin.
    pub fn ssh(&self, args: &str) -> Output {
        let mut c = self.ssh_command(Some(&self.key.private));
        c.arg(args).stdin(Stdio::null()).output().expect("ssh runs")
    }

    /// `ssh admin@unit ARGS < input`.
    pub fn ssh_stdin(&self, args: &str, input: &[u8]) -> Output {
        let mut c = self.ssh_command(Some(&self.key.private));
        c.arg(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("ssh runs");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("ssh finishes");
        let _ = writer.join();
        out
    }

    /// Parses the JSON a command prints; panics with its stderr if it fails.
    pub fn json(&self, args: &str) -> serde_json::Value {
        let out = self.ssh(args);
        assert!(
            out.status.success(),
            "`{args}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "`{args}` printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn sftp_command(&self) -> Command {
        let mut c = Command::new("sftp");
        c.args(self.ssh_opts(Some(&self.key.private)))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(self.port.to_string());
        c
    }

    /// Runs an `sftp -b` batch script (each run with its own batch file:
    /// safe to run in parallel).
    pub fn sftp(&self, script: &str) -> Output {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let batch = self.dir.path().join(format!("batch-{n}"));
        fs::write(&batch, script).unwrap();
        self.sftp_command()
            .arg("-b")
            .arg(&batch)
            .arg("admin@127.0.0.1")
            .stdin(Stdio::null())
            .output()
            .expect("sftp runs")
    }

    pub fn scp(&self, extra: &[&str], from: &str, to: &str) -> Output {
        Command::new("scp")
            .args(self.ssh_opts(Some(&self.key.private)))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(self.port.to_string())
            .args(extra)
            .args([from, to])
            .stdin(Stdio::null())
            .output()
            .expect("scp runs")
    }

    /// `images --json`, as (name, size, sha256) triples (images only: the
    /// interrupted uploads' `partial: true` rows are left out).
    pub fn images(&self) -> Vec<(String, u64, String)> {
        let v = self.json("images --json");
        v.as_array()
            .expect("images --json is an array")
            .iter()
            .filter(|i| i["partial"] != true)
            .map(|i| {
                (
                    i["name"].as_str().unwrap().to_string(),
                    i["size"].as_u64().unwrap(),
                    i["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Waits until `cond` holds, polling; panics with the log after `limit`.
    /// The limit is a give-up point for a hung test, not a performance bar.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            if start.elapsed() > Duration::from_secs(300) {
                panic!("gave up waiting for {what}\nunitd log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A file of `len` random bytes in `dir`.
pub fn random_file(dir: &Path, name: &str, len: usize) -> PathBuf {
    use rand::RngCore;
    let path = dir.join(name);
    let mut f = fs::File::create(&path).unwrap();
    let mut rng = rand::thread_rng();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len());
        rng.fill_bytes(&mut buf[..n]);
        f.write_all(&buf[..n]).unwrap();
        left -= n;
    }
    path
}

/// SHA-256 as `sha256sum` prints it.
pub fn sha256sum(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A terminal for dashboard tests: tmux running a command, read with
/// capture-pane and typed into with send-keys. Each has its own tmux server.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn new(command: &str, width: u16, height: u16) -> Tmux {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let socket = format!(
            "copyunit-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let t = Tmux { socket };
        let ok = t
            .cmd()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .arg(format!("{command}; echo EXIT=$?; sleep 600"))
            .status()
            .expect("tmux runs");
        assert!(ok.success(), "tmux new-session");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.args(["-L", &self.socket]);
        c
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pty device of the pane (to hand to a program as its terminal).
    pub fn tty(&self) -> String {
        let out = self
            .cmd()
            .args(["display", "-p", "-t", "t", "#{pane_tty}"])
            .output()
            .expect("tmux display");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Types keys (tmux key names: `Enter`, `Escape`, `Up`, `C-c`, or text).
    pub fn send(&self, keys: &[&str]) {
        let ok = self
            .cmd()
            .args(["send-keys", "-t", "t"])
            .args(keys)
            .status()
            .unwrap();
        assert!(ok.success());
    }

    pub fn resize(&self, width: u16, height: u16) {
        let ok = self
            .cmd()
            .args([
                "resize-window",
                "-t",
                "t",
                "-x",
                &width.to_string(),
                "-y",
                &height.to_string(),
            ])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    /// Waits until the screen satisfies `pred`; panics showing the screen.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if pred(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(120) {
                panic!("gave up waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().arg("kill-server").status();
    }
}

/// A block-throttling cgroup holding unitd: its writes to one device are
/// limited, so a job on a fast loop device runs long enough to be seen
/// running (a slow stick, made by the kernel's block layer, not a sleep).
/// Dropping it moves unitd back and removes the cgroup.
pub struct Throttled {
    dir: PathBuf,
    parent: PathBuf,
    /// The limit file and what lifts the limit again.
    file: &'static str,
    lift: String,
}

impl Unit {
    /// Limits unitd's writes to `dev` to `bytes_per_sec`.
    pub fn throttle_writes(&self, dev: &Loop, bytes_per_sec: u64) -> Throttled {
        self.throttle(&dev.dev, false, bytes_per_sec)
    }

    /// Limits unitd's reads of `dev` (a device node, e.g. a partition of a
    /// loop device) to `bytes_per_sec`: a slow stick.
    pub fn throttle_reads(&self, dev: &str, bytes_per_sec: u64) -> Throttled {
        self.throttle(dev, true, bytes_per_sec)
    }

    fn throttle(&self, dev: &str, reads: bool, bytes_per_sec: u64) -> Throttled {
        let pid = self.child.as_ref().expect("unitd runs").id();
        let name = Path::new(dev).file_name().expect("device name");
        let numbers = fs::read_to_string(Path::new("/sys/class/block").join(name).join("dev"))
            .expect("device numbers");
        let numbers = numbers.trim();
        let v1 = Path::new("/sys/fs/cgroup/blkio");
        let (parent, file, line, lift) = if v1.is_dir() {
            let file = if reads {
                "blkio.throttle.read_bps_device"
            } else {
                "blkio.throttle.write_bps_device"
            };
            (
                v1.to_path_buf(),
                file,
                format!("{numbers} {bytes_per_sec}"),
                format!("{numbers} 0"),
            )
        } else {
            let root = PathBuf::from("/sys/fs/cgroup");
            let _ = fs::write(root.join("cgroup.subtree_control"), "+io");
            let key = if reads { "rbps" } else { "wbps" };
            (
                root,
                "io.max",
                format!("{numbers} {key}={bytes_per_sec}"),
                format!("{numbers} {key}=max"),
            )
        };
        let dir = parent.join(format!("copyunit-test-{pid}"));
        fs::create_dir_all(&dir).expect("a throttling cgroup");
        fs::write(dir.join(file), line).expect("throttle the device");
        fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("move unitd");
        Throttled {
            dir,
            parent,
            file,
            lift,
        }
    }
}

impl Drop for Throttled {
    fn drop(&mut self) {
        // Lifted first, so I/O queued behind the limit goes at once.
        let _ = fs::write(self.dir.join(self.file), &self.lift);
        let pids = fs::read_to_string(self.dir.join("cgroup.procs")).unwrap_or_default();
        for pid in pids.split_whitespace() {
            let _ = fs::write(self.parent.join("cgroup.procs"), pid);
        }
        let _ = fs::remove_dir(&self.dir);
    }
}

impl Unit {
    /// The ssh command line for the dashboard (`ssh -tt`), for a Tmux.
    pub fn dashboard_command(&self) -> String {
        let opts: Vec<String> = self
            .ssh_opts(Some(&self.key.private))
            .into_iter()
            .map(|o| format!("'{o}'"))
            .collect();
        format!(
            "ssh -tt {} -p {} admin@127.0.0.1",
            opts.join(" "),
            self.port
        )
    }
}

/// Where [`Loop::new`] puts its files: a directory of this process in
/// /dev/shm (removed with its last file).
pub fn loop_dir() -> PathBuf {
    PathBuf::from(format!("/dev/shm/copyunit-test-{}", std::process::id()))
}

/// A loop device over a file (in [`loop_dir`] unless told otherwise),
/// detached and removed on drop: a real block device for copy tests.
pub struct Loop {
    pub dev: String,
    pub file: PathBuf,
    remove_file: bool,
}

impl Loop {
    pub fn new(size: u64) -> Loop {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let file = loop_dir().join(format!(
            "{}.img",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        // The directory goes with the last file: another test's drop may
        // remove it between our mkdir and create.
        loop {
            fs::create_dir_all(loop_dir()).unwrap();
            match fs::File::create_new(&file) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                r => r.map(drop).unwrap(),
            }
            break;
        }
        let mut l = Loop::over(&file, size, &[]);
        l.remove_file = true;
        l
    }

    /// A loop device over `file` (made `size` bytes, sparse) with extra
    /// `losetup` flags (`-r`, `--sector-size 4096`).
    pub fn over(file: &Path, size: u64, flags: &[&str]) -> Loop {
        let f = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(file)
            .unwrap();
        f.set_len(size).unwrap();
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .args(flags)
            .arg(file)
            .output()
            .expect("losetup");
        assert!(
            out.status.success(),
            "losetup needs root: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Loop {
            dev,
            file: file.to_path_buf(),
            remove_file: false,
        }
    }

    /// Kernel name: `loop3`.
    pub fn name(&self) -> String {
        self.dev.trim_start_matches("/dev/").to_string()
    }

    /// The first `len` bytes of the device.
    pub fn head(&self, len: usize) -> Vec<u8> {
        use std::io::Read;
        let mut f = fs::File::open(&self.dev).unwrap();
        let mut buf = vec![0u8; len];
        f.read_exact(&mut buf).unwrap();
        buf
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
        if self.remove_file {
            let _ = fs::remove_file(&self.file);
            // Fails while another Loop's file is there: that one removes it.
            let _ = fs::remove_dir(loop_dir());
        }
    }
}

/// A mounted tmpfs of `size` (e.g. "8m"), unmounted on drop.
pub struct Tmpfs(pub PathBuf);

impl Tmpfs {
    pub fn new(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting a tmpfs needs root");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

impl Unit {
    /// A unit whose loop devices are copy targets.
    pub fn start_with_loops() -> Unit {
        Unit::start_with(Options {
            loops: true,
            exclusive_drives: true,
            ..Options::default()
        })
    }

    /// Uploads `path` as `name` with sftp.
    pub fn put(&self, path: &Path, name: &str) {
        let out = self.sftp(&format!("put {} {name}\n", path.display()));
        assert!(out.status.success(), "upload: {}", stderr(&out));
    }
}

/// `timeout -k 10 SECS PROG`: a client that hangs fails its test (status
/// 124 or 137) instead of stalling the run.
pub fn bounded(secs: u32, prog: &str) -> Command {
    let mut c = Command::new("timeout");
    c.args(["-k", "10", &secs.to_string(), prog]);
    c
}

/// Other SSH clients (PuTTY, curl, lftp, rclone, sshfs, paramiko,
/// asyncssh): what they need to reach this unit non-interactively.
impl Unit {
    /// The pinned known_hosts file (`[127.0.0.1]:PORT KEY`).
    pub fn known_hosts_path(&self) -> &Path {
        &self.known_hosts
    }

    /// The host key's fingerprint as `status --json` reports it (`SHA256:...`).
    pub fn host_fingerprint(&self) -> String {
        self.json("status --json")["host_key_fingerprint"]
            .as_str()
            .expect("status --json has host_key_fingerprint")
            .to_string()
    }

    /// The admin key in PuTTY's format (`puttygen KEY -O private -o KEY.ppk`).
    pub fn ppk(&self) -> PathBuf {
        let ppk = self.key.private.with_extension("ppk");
        if !ppk.exists() {
            let out = bounded(60, "puttygen")
                .arg(&self.key.private)
                .args(["-O", "private", "-o"])
                .arg(&ppk)
                .stdin(Stdio::null())
                .output()
                .expect("puttygen runs");
            assert!(out.status.success(), "puttygen: {}", stderr(&out));
        }
        ppk
    }

    /// A PuTTY tool (`psftp`, `pscp`, `plink`) with `-batch`, the port, the
    /// admin key and the host key pinned by fingerprint.
    pub fn putty(&self, secs: u32, prog: &str) -> Command {
        let mut c = bounded(secs, prog);
        c.args(["-batch", "-P", &self.port.to_string(), "-i"])
            .arg(self.ppk())
            .args(["-hostkey", &self.host_fingerprint()]);
        c
    }

    /// Runs `tests/clients/SCRIPT` (a Python client) with `steps` on one
    /// connection, logging in with `keys` tried in order. Returns the JSON
    /// line each step printed; panics with the script's stderr if it fails.
    pub fn python(&self, script: &str, keys: &[&Path], steps: &[&str]) -> Vec<serde_json::Value> {
        let out = self.python_output(script, keys, steps);
        assert!(
            out.status.success(),
            "{script} {steps:?} failed ({}): {}\n{}\nunitd log:\n{}",
            out.status,
            stdout(&out),
            stderr(&out),
            self.log()
        );
        stdout(&out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{script}: {e}: {l}")))
            .collect()
    }

    /// [`Unit::python`] without the checks.
    pub fn python_output(&self, script: &str, keys: &[&Path], steps: &[&str]) -> Output {
        let keys: Vec<String> = keys.iter().map(|k| k.display().to_string()).collect();
        bounded(120, "python3")
            .arg(workspace_root().join("tests/clients").join(script))
            .args(steps)
            .env("UNIT_PORT", self.port.to_string())
            .env("UNIT_KEYS", keys.join(":"))
            .env("UNIT_KNOWN_HOSTS", &self.known_hosts)
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs")
    }
}
