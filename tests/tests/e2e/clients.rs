//! The SSH and SFTP clients people actually use, against a real unitd:
//! PuTTY's psftp/pscp/plink (what WinSCP is built on), curl's sftp://
//! (libssh2), lftp, rclone, sshfs, paramiko and asyncssh.
//!
//! Each client puts an image, gets it back (compared byte for byte), lists,
//! renames and removes, and resumes in its own way where it has one; the
//! SSH clients run commands (exit statuses 0, 1 and 2) and the dashboard in
//! a pty. Every client process runs under `timeout`, so a hang fails its
//! test instead of stalling the run.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use copyunit_tests::*;

/// A test file's size: a few MiB and not a multiple of any block size.
const SIZE: usize = 6 * 1024 * 1024 + 4321;

/// Asserts that a client run succeeded, showing everything if not.
#[track_caller]
fn ok(unit: &Unit, what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout: {}\nstderr: {}\nunitd log:\n{}",
        out.status,
        stdout(out),
        stderr(out),
        unit.log()
    );
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} does not start: {e}"))
}

/// The one image the unit holds, as (name, size, sha256).
#[track_caller]
fn only_image(unit: &Unit) -> (String, u64, String) {
    let images = unit.images();
    assert_eq!(images.len(), 1, "{images:?}");
    images.into_iter().next().unwrap()
}

#[track_caller]
fn same_bytes(a: &Path, b: &Path) {
    assert_eq!(
        sha256sum(a),
        sha256sum(b),
        "{} and {} differ ({} / {} bytes)",
        a.display(),
        b.display(),
        fs::metadata(a).map(|m| m.len()).unwrap_or(0),
        fs::metadata(b).map(|m| m.len()).unwrap_or(0),
    );
}

/// A file holding `a` then `b`.
fn concat(dir: &Path, name: &str, a: &Path, b: &[u8]) -> PathBuf {
    let mut bytes = fs::read(a).unwrap();
    bytes.extend_from_slice(b);
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p
}

/// Cuts an upload the way a dropped connection does: starts `client`
/// (throttled, so there is time), kills it once `name`'s partial holds at
/// least 1 MiB, and waits for unitd to notice. Returns the bytes kept.
fn cut_upload(unit: &Unit, mut client: Command, name: &str) -> u64 {
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(
        client
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the client starts"),
    );
    let partial = unit.store.join(".copyunit/partial").join(name);
    unit.wait_for("part of the upload to arrive", || {
        fs::metadata(&partial)
            .map(|m| m.len() >= 1 << 20)
            .unwrap_or(false)
    });
    child.0.kill().unwrap(); // the network cable, as far as unitd can tell
    child.0.wait().unwrap();
    let said = format!("upload of {name} interrupted at ");
    unit.wait_for("unitd to notice the cut", || unit.log().contains(&said));
    let log = unit.log();
    let kept: u64 = log
        .split(&said)
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("the log says how many bytes were kept");
    assert!(kept < SIZE as u64, "the cut came too late: {kept} bytes");
    assert!(unit.images().is_empty(), "a half upload is not an image");
    kept
}

/// OpenSSH's sftp at 40 Mbit/s uploading `src` as `name`: a client to cut.
fn slow_sftp(unit: &Unit, src: &Path, name: &str) -> Command {
    let batch = unit.dir.path().join(format!("{name}.batch"));
    fs::write(&batch, format!("put {} {name}\n", src.display())).unwrap();
    let mut c = unit.sftp_command();
    c.args(["-l", "40000", "-b"])
        .arg(&batch)
        .arg("admin@127.0.0.1");
    c
}

// ---------------------------------------------------------------- PuTTY

fn psftp(unit: &Unit, script: &str) -> Output {
    let batch = unit.dir.path().join("psftp.batch");
    fs::write(&batch, script).unwrap();
    run(unit
        .putty(120, "psftp")
        .arg("-b")
        .arg(&batch)
        .arg("-be")
        .arg("admin@127.0.0.1"))
}

#[test]
fn psftp_puts_gets_lists_renames_and_removes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let out = psftp(
        &unit,
        &format!(
            "put {} a.img\nget a.img {}\nls\n",
            src.display(),
            back.display()
        ),
    );
    ok(&unit, "psftp put/get/ls", &out);
    same_bytes(&src, &back);
    assert!(
        stdout(&out).contains("a.img"),
        "ls lists it: {}",
        stdout(&out)
    );
    assert_eq!(
        only_image(&unit),
        ("a.img".into(), SIZE as u64, sha256sum(&src))
    );

    let out = psftp(&unit, "mv a.img b.img\nls\n");
    ok(&unit, "psftp mv", &out);
    assert_eq!(only_image(&unit).0, "b.img");
    let out = psftp(&unit, "rm b.img\n");
    ok(&unit, "psftp rm", &out);
    assert!(unit.images().is_empty());
}

#[test]
fn psftp_reput_resumes_an_interrupted_upload() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "big.img", SIZE);
    cut_upload(&unit, slow_sftp(&unit, &src, "big.img"), "big.img");
    let out = psftp(&unit, &format!("reput {} big.img\n", src.display()));
    ok(&unit, "psftp reput", &out);
    assert_eq!(
        only_image(&unit),
        ("big.img".into(), SIZE as u64, sha256sum(&src))
    );
    assert!(
        unit.log().contains("resuming the upload of big.img"),
        "it resumed rather than restarted"
    );
}

#[test]
fn pscp_uploads_lists_and_downloads() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let out = run(unit
        .putty(120, "pscp")
        .arg("-sftp")
        .arg(&src)
        .arg("admin@127.0.0.1:p.img"));
    ok(&unit, "pscp upload", &out);
    assert_eq!(
        only_image(&unit),
        ("p.img".into(), SIZE as u64, sha256sum(&src))
    );
    let out = run(unit.putty(120, "pscp").args(["-ls", "admin@127.0.0.1:/"]));
    ok(&unit, "pscp -ls", &out);
    assert!(stdout(&out).contains("p.img"), "{}", stdout(&out));
    let out = run(unit
        .putty(120, "pscp")
        .arg("-sftp")
        .arg("admin@127.0.0.1:p.img")
        .arg(&back));
    ok(&unit, "pscp download", &out);
    same_bytes(&src, &back);
}

#[test]
fn plink_runs_commands_with_their_exit_status() {
    let unit = Unit::start();
    let plink = |cmd: &str| {
        run(unit
            .putty(120, "plink")
            .args(["-T", "admin@127.0.0.1"])
            .arg(cmd))
    };
    let out = plink("status --json");
    ok(&unit, "plink status --json", &out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["name"], "testunit");
    let out = plink("frobnicate");
    assert_eq!(out.status.code(), Some(2), "bad usage: {}", stderr(&out));
    assert!(stderr(&out).contains("Usage"), "{}", stderr(&out));
    let out = plink("rm nothing.img");
    assert_eq!(out.status.code(), Some(1), "failure: {}", stderr(&out));
    assert!(stderr(&out).contains("nothing.img"), "{}", stderr(&out));
}

#[test]
fn plink_t_shows_the_dashboard_and_q_quits_with_status_0() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src", 1 << 20);
    unit.put(&src, "shown.img");
    // --foreground: plink reads the pane's terminal (in timeout's own
    // process group it would be stopped by SIGTTIN).
    let cmd = format!(
        "timeout --foreground -k 10 120 plink -t -batch -P {} -i {} -hostkey {} admin@127.0.0.1",
        unit.port,
        unit.ppk().display(),
        unit.host_fingerprint()
    );
    let term = Tmux::new(&cmd, 100, 30);
    term.wait_for("the dashboard", |s| {
        s.contains("testunit") && s.contains("shown.img")
    });
    term.send(&["q"]);
    let s = term.wait_for("plink to exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}

// ----------------------------------------------------------------- curl

/// curl's sftp:// (libssh2) with the admin key and the host key pinned by
/// its SHA-256 (curl's `--hostpubsha256`: the fingerprint's base64).
fn curl(unit: &Unit) -> Command {
    curl_with(unit, bounded(120, "curl"))
}

fn curl_with(unit: &Unit, mut c: Command) -> Command {
    let fp = unit.host_fingerprint();
    c.args(["-sS", "--fail", "-u", "admin:", "--key"])
        .arg(&unit.key.private)
        .arg("--pubkey")
        .arg(unit.key.private.with_extension("pub"))
        .args(["--hostpubsha256", fp.trim_start_matches("SHA256:")]);
    c
}

fn curl_url(unit: &Unit, name: &str) -> String {
    format!("sftp://127.0.0.1:{}/{name}", unit.port)
}

#[test]
fn curl_puts_gets_lists_renames_and_removes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let out = run(curl(&unit)
        .arg("-T")
        .arg(&src)
        .arg(curl_url(&unit, "c.img")));
    ok(&unit, "curl -T", &out);
    assert_eq!(
        only_image(&unit),
        ("c.img".into(), SIZE as u64, sha256sum(&src))
    );
    let out = run(curl(&unit)
        .arg("-o")
        .arg(&back)
        .arg(curl_url(&unit, "c.img")));
    ok(&unit, "curl -o", &out);
    same_bytes(&src, &back);
    let out = run(curl(&unit).arg(curl_url(&unit, "")));
    ok(&unit, "curl listing", &out);
    assert!(stdout(&out).contains("c.img"), "{}", stdout(&out));
    let out = run(curl(&unit)
        .args(["-Q", "rename /c.img /d.img", "-l"])
        .arg(curl_url(&unit, "")));
    ok(&unit, "curl -Q rename", &out);
    assert_eq!(only_image(&unit).0, "d.img");
    let out = run(curl(&unit)
        .args(["-Q", "rm /d.img", "-l"])
        .arg(curl_url(&unit, "")));
    ok(&unit, "curl -Q rm", &out);
    assert!(unit.images().is_empty());
}

#[test]
fn curl_c_resumes_an_interrupted_upload() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "big.img", SIZE);
    // Not under `timeout`: killing the wrapper would leave curl running.
    let mut slow = curl_with(&unit, Command::new("curl"));
    slow.args(["--limit-rate", "2M", "-T"])
        .arg(&src)
        .arg(curl_url(&unit, "big.img"));
    cut_upload(&unit, slow, "big.img");
    let out = run(curl(&unit)
        .args(["-C", "-", "-T"])
        .arg(&src)
        .arg(curl_url(&unit, "big.img")));
    ok(&unit, "curl -C - -T", &out);
    assert_eq!(
        only_image(&unit),
        ("big.img".into(), SIZE as u64, sha256sum(&src))
    );
}

/// Issue 11 #1: `curl -C - -T f` again on a complete image left it empty.
#[test]
fn curl_c_again_on_a_complete_image_keeps_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "c.img", SIZE);
    let url = curl_url(&unit, "c.img");
    ok(
        &unit,
        "curl -T",
        &run(curl(&unit).arg("-T").arg(&src).arg(&url)),
    );
    let out = run(curl(&unit).args(["-C", "-", "-T"]).arg(&src).arg(&url));
    ok(&unit, "curl -C - -T on the complete image", &out);
    assert_eq!(
        only_image(&unit),
        ("c.img".into(), SIZE as u64, sha256sum(&src))
    );
    // Resuming with a longer file appends only the new tail.
    let longer = concat(unit.dir.path(), "longer.img", &src, b"and a tail");
    let out = run(curl(&unit).args(["-C", "-", "-T"]).arg(&longer).arg(&url));
    ok(&unit, "curl -C - -T of a longer file", &out);
    assert_eq!(
        only_image(&unit),
        ("c.img".into(), SIZE as u64 + 10, sha256sum(&longer))
    );
}

// ----------------------------------------------------------------- lftp

/// `lftp -c 'open ...; COMMANDS'` over sftp, through OpenSSH with the
/// pinned host key; any failed command fails the run.
fn lftp(unit: &Unit, commands: &str) -> Output {
    let ssh = format!(
        "ssh -a -x {}",
        unit.ssh_opts(Some(&unit.key.private)).join(" ")
    );
    let script = format!(
        "set cmd:fail-exit yes; set net:max-retries 1; set net:timeout 30; \
         set sftp:connect-program \"{ssh} -o BatchMode=yes\"; \
         open -u admin, sftp://127.0.0.1:{}; {commands}",
        unit.port
    );
    run(bounded(120, "lftp").arg("-c").arg(script))
}

#[test]
fn lftp_puts_gets_lists_renames_and_removes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let out = lftp(
        &unit,
        &format!(
            "put {} -o l.img; get l.img -o {}; cls -l",
            src.display(),
            back.display()
        ),
    );
    ok(&unit, "lftp put/get/cls", &out);
    same_bytes(&src, &back);
    assert!(stdout(&out).contains("l.img"), "{}", stdout(&out));
    assert_eq!(
        only_image(&unit),
        ("l.img".into(), SIZE as u64, sha256sum(&src))
    );
    ok(&unit, "lftp mv", &lftp(&unit, "mv l.img m.img"));
    assert_eq!(only_image(&unit).0, "m.img");
    ok(&unit, "lftp rm", &lftp(&unit, "rm m.img"));
    assert!(unit.images().is_empty());
}

#[test]
fn lftp_put_c_resumes_an_interrupted_upload() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "big.img", SIZE);
    cut_upload(&unit, slow_sftp(&unit, &src, "big.img"), "big.img");
    let out = lftp(&unit, &format!("put -c {} -o big.img", src.display()));
    ok(&unit, "lftp put -c", &out);
    assert_eq!(
        only_image(&unit),
        ("big.img".into(), SIZE as u64, sha256sum(&src))
    );
}

/// Issue 11 #1: `lftp put -c` of a complete file published zeros.
#[test]
fn lftp_put_c_of_a_complete_image_keeps_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "l.img", SIZE);
    unit.put(&src, "l.img");
    let out = lftp(&unit, &format!("put -c {} -o l.img", src.display()));
    ok(&unit, "lftp put -c on the complete image", &out);
    assert_eq!(
        only_image(&unit),
        ("l.img".into(), SIZE as u64, sha256sum(&src))
    );
    let longer = concat(unit.dir.path(), "longer.img", &src, b"tail");
    let out = lftp(&unit, &format!("put -c {} -o l.img", longer.display()));
    ok(&unit, "lftp put -c of a longer file", &out);
    assert_eq!(
        only_image(&unit),
        ("l.img".into(), SIZE as u64 + 4, sha256sum(&longer))
    );
}

// --------------------------------------------------------------- rclone

/// rclone with a remote `unit:` defined in its environment (no config
/// file): sftp, the admin key, the pinned known_hosts; default settings.
fn rclone(unit: &Unit) -> Command {
    let mut c = bounded(120, "rclone");
    c.arg("--config")
        .arg(unit.dir.path().join("rclone.conf"))
        .env("RCLONE_CONFIG_UNIT_TYPE", "sftp")
        .env("RCLONE_CONFIG_UNIT_HOST", "127.0.0.1")
        .env("RCLONE_CONFIG_UNIT_PORT", unit.port.to_string())
        .env("RCLONE_CONFIG_UNIT_USER", "admin")
        .env("RCLONE_CONFIG_UNIT_KEY_FILE", &unit.key.private)
        .env(
            "RCLONE_CONFIG_UNIT_KNOWN_HOSTS_FILE",
            unit.known_hosts_path(),
        );
    c
}

#[test]
fn rclone_copies_gets_lists_moves_and_deletes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    ok(
        &unit,
        "rclone copyto (upload)",
        &run(rclone(&unit).arg("copyto").arg(&src).arg("unit:r.img")),
    );
    assert_eq!(
        only_image(&unit),
        ("r.img".into(), SIZE as u64, sha256sum(&src))
    );
    ok(
        &unit,
        "rclone copyto (download)",
        &run(rclone(&unit).arg("copyto").arg("unit:r.img").arg(&back)),
    );
    same_bytes(&src, &back);
    let out = run(rclone(&unit).args(["lsl", "unit:"]));
    ok(&unit, "rclone lsl", &out);
    assert!(
        stdout(&out).contains(&format!("{SIZE}")) && stdout(&out).contains("r.img"),
        "{}",
        stdout(&out)
    );
    ok(
        &unit,
        "rclone moveto",
        &run(rclone(&unit).args(["moveto", "unit:r.img", "unit:s.img"])),
    );
    assert_eq!(only_image(&unit).0, "s.img");
    ok(
        &unit,
        "rclone deletefile",
        &run(rclone(&unit).args(["deletefile", "unit:s.img"])),
    );
    assert!(unit.images().is_empty());
}

/// Issue 11 #3: client mtimes were dropped, so every `rclone copy`
/// uploaded every unchanged image again.
#[test]
fn rclone_copy_twice_does_not_upload_again() {
    let unit = Unit::start();
    let dir = unit.dir.path().join("images");
    fs::create_dir_all(&dir).unwrap();
    let src = random_file(&dir, "r.img", SIZE);
    // An image downloaded some time ago, as most are (a file made just now
    // would match the time it arrives within rclone's 1 s tolerance).
    let made = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(&src)
        .and_then(|f| f.set_modified(made))
        .unwrap();
    let copy = || run(rclone(&unit).args(["copy", "-v"]).arg(&dir).arg("unit:"));
    let first = copy();
    ok(&unit, "the first rclone copy", &first);
    assert!(stderr(&first).contains("Copied"), "{}", stderr(&first));
    let added = unit.json("images --json")[0]["added"].clone();
    let second = copy();
    ok(&unit, "the second rclone copy", &second);
    assert!(
        !stderr(&second).contains("Copied"),
        "nothing changed, nothing is sent again:\n{}",
        stderr(&second)
    );
    assert_eq!(
        only_image(&unit),
        ("r.img".into(), SIZE as u64, sha256sum(&src))
    );
    assert_eq!(unit.json("images --json")[0]["added"], added);
    let out = run(rclone(&unit).args(["lsl", "unit:"]));
    ok(&unit, "rclone lsl", &out);
    assert!(
        stdout(&out).contains("2020-09-13"),
        "the listing shows the time rclone set: {}",
        stdout(&out)
    );
}

// ---------------------------------------------------------------- sshfs

/// The unit's store mounted with sshfs (through OpenSSH, host key pinned),
/// unmounted on drop.
struct Sshfs(PathBuf);

impl Sshfs {
    fn mount(unit: &Unit) -> Sshfs {
        let mnt = unit.dir.path().join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        let mut c = bounded(60, "sshfs");
        c.arg("admin@127.0.0.1:/")
            .arg(&mnt)
            .args(["-p", &unit.port.to_string()]);
        for o in unit
            .ssh_opts(Some(&unit.key.private))
            .chunks(2)
            .filter(|o| o[0] == "-o")
        {
            c.args(["-o", &o[1]]);
        }
        c.args(["-o", "BatchMode=yes", "-o", "ServerAliveInterval=15"])
            .arg("-o")
            .arg(format!("IdentityFile={}", unit.key.private.display()));
        let out = run(&mut c);
        ok(unit, "sshfs mount", &out);
        Sshfs(mnt)
    }
}

impl Drop for Sshfs {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3")
            .args(["-u", "-z"])
            .arg(&self.0)
            .status();
    }
}

/// A shell command line under `timeout` (a FUSE call that hangs fails).
fn sh(line: &str) -> Output {
    run(bounded(120, "sh").args(["-c", line]))
}

#[test]
fn sshfs_copies_reads_lists_renames_and_removes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let mnt = Sshfs::mount(&unit);
    let m = mnt.0.display();
    ok(
        &unit,
        "cp into the mount",
        &sh(&format!("cp {} {m}/f.img", src.display())),
    );
    // sshfs closes the file after cp returns (FUSE release is asynchronous).
    unit.wait_for("the image to be published", || unit.images().len() == 1);
    assert_eq!(
        only_image(&unit),
        ("f.img".into(), SIZE as u64, sha256sum(&src))
    );
    ok(
        &unit,
        "cp out of the mount",
        &sh(&format!("cp {m}/f.img {}", back.display())),
    );
    same_bytes(&src, &back);
    let out = sh(&format!("ls -l {m}"));
    ok(&unit, "ls -l of the mount", &out);
    assert!(
        stdout(&out).contains("f.img") && stdout(&out).contains(&SIZE.to_string()),
        "{}",
        stdout(&out)
    );
    ok(
        &unit,
        "mv in the mount",
        &sh(&format!("mv {m}/f.img {m}/g.img")),
    );
    assert_eq!(only_image(&unit).0, "g.img");
    ok(&unit, "rm in the mount", &sh(&format!("rm {m}/g.img")));
    assert!(unit.images().is_empty());
}

/// Issue 11 #1: `printf x >> image` through sshfs published zeros + "x".
#[test]
fn sshfs_append_to_an_image_keeps_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    unit.put(&src, "f.img");
    let mnt = Sshfs::mount(&unit);
    ok(
        &unit,
        "appending through the mount",
        &sh(&format!("printf x >> {}/f.img", mnt.0.display())),
    );
    let want = concat(unit.dir.path(), "want.img", &src, b"x");
    unit.wait_for("the appended image to be published", || {
        unit.images()
            .first()
            .is_some_and(|i| i.1 == SIZE as u64 + 1)
    });
    assert_eq!(
        only_image(&unit),
        ("f.img".into(), SIZE as u64 + 1, sha256sum(&want))
    );
}

// ------------------------------------------------- paramiko and asyncssh

/// 16 MiB: paramiko's get() asks for every 32 KiB block of it at once,
/// more than any window holds (issue 11 #5: that deadlocked the session).
const MANY_READS: usize = 16 * 1024 * 1024 + 4321;

/// put, get (compared), listing, rename, rm, on one connection.
fn python_sftp_round_trip(script: &str) {
    const SIZE: usize = MANY_READS;
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src.img", SIZE);
    let back = unit.dir.path().join("back.img");
    let (s, b) = (src.display().to_string(), back.display().to_string());
    let key = unit.key.private.clone();
    let r = unit.python(
        script,
        &[&key],
        &["put", &s, "y.img", "--", "get", "y.img", &b, "--", "ls"],
    );
    assert_eq!(r[0]["size"], SIZE as u64);
    same_bytes(&src, &back);
    assert_eq!(r[2]["files"]["y.img"], SIZE as u64, "{}", r[2]);
    assert_eq!(
        only_image(&unit),
        ("y.img".into(), SIZE as u64, sha256sum(&src))
    );
    let r = unit.python(script, &[&key], &["rename", "y.img", "z.img", "--", "ls"]);
    assert!(r[1]["files"].get("y.img").is_none(), "{}", r[1]);
    assert_eq!(r[1]["files"]["z.img"], SIZE as u64, "{}", r[1]);
    assert_eq!(only_image(&unit).0, "z.img");
    unit.python(script, &[&key], &["rm", "z.img"]);
    assert!(unit.images().is_empty());
}

/// The client's own cut (writes, then vanishes without closing), then an
/// open for append that goes on from the bytes kept.
fn python_append_resumes(script: &str) {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "big.img", SIZE);
    let s = src.display().to_string();
    let key = unit.key.private.clone();
    let half = (SIZE / 2).to_string();
    unit.python(script, &[&key], &["cut", &s, "big.img", &half]);
    unit.wait_for("unitd to notice the cut", || {
        unit.log().contains("upload of big.img interrupted")
    });
    assert!(unit.images().is_empty(), "a half upload is not an image");
    let r = unit.python(script, &[&key], &["append", &s, "big.img"]);
    assert_eq!(
        r[0]["offset"],
        SIZE as u64 / 2,
        "it appends after the kept bytes"
    );
    assert_eq!(
        only_image(&unit),
        ("big.img".into(), SIZE as u64, sha256sum(&src))
    );
}

/// `status --json` 0, bad usage 2, a failure 1, all on one connection.
fn python_exec_statuses(script: &str) {
    let unit = Unit::start();
    let key = unit.key.private.clone();
    let r = unit.python(
        script,
        &[&key],
        &[
            "exec",
            "status --json",
            "--",
            "exec",
            "frobnicate",
            "--",
            "exec",
            "rm nothing.img",
        ],
    );
    assert_eq!(r[0]["status"], 0, "{}", r[0]);
    let status: serde_json::Value =
        serde_json::from_str(r[0]["stdout"].as_str().unwrap()).expect("JSON");
    assert_eq!(status["name"], "testunit");
    assert_eq!(r[1]["status"], 2, "{}", r[1]);
    assert!(
        r[1]["stderr"].as_str().unwrap().contains("Usage"),
        "{}",
        r[1]
    );
    assert_eq!(r[2]["status"], 1, "{}", r[2]);
    assert!(
        r[2]["stderr"].as_str().unwrap().contains("nothing.img"),
        "{}",
        r[2]
    );
}

fn python_dashboard(script: &str) {
    let unit = Unit::start();
    let key = unit.key.private.clone();
    let r = unit.python(script, &[&key], &["dashboard"]);
    assert_eq!(r[0]["status"], 0, "q leaves with status 0: {}", r[0]);
}

#[test]
fn paramiko_puts_gets_lists_renames_and_removes() {
    python_sftp_round_trip("paramiko_client.py");
}

#[test]
fn paramiko_append_resumes_an_interrupted_upload() {
    python_append_resumes("paramiko_client.py");
}

#[test]
fn paramiko_runs_commands_with_their_exit_status() {
    python_exec_statuses("paramiko_client.py");
}

#[test]
fn paramiko_shows_the_dashboard_in_a_pty_and_q_quits_with_status_0() {
    python_dashboard("paramiko_client.py");
}

/// Issue 11 #11: paramiko offering a wrong key first could not log in.
#[test]
fn paramiko_logs_in_with_the_right_key_after_a_wrong_one() {
    let unit = Unit::start();
    let wrong = keygen(unit.dir.path(), "wrong_key");
    let right = unit.key.private.clone();
    let r = unit.python(
        "paramiko_client.py",
        &[&wrong.private, &right],
        &["exec", "status --json"],
    );
    assert_eq!(r[0]["status"], 0, "{}", r[0]);
}

#[test]
fn asyncssh_puts_gets_lists_renames_and_removes() {
    python_sftp_round_trip("asyncssh_client.py");
}

#[test]
fn asyncssh_append_resumes_an_interrupted_upload() {
    python_append_resumes("asyncssh_client.py");
}

#[test]
fn asyncssh_runs_commands_with_their_exit_status() {
    python_exec_statuses("asyncssh_client.py");
}

#[test]
fn asyncssh_shows_the_dashboard_in_a_pty_and_q_quits_with_status_0() {
    python_dashboard("asyncssh_client.py");
}
