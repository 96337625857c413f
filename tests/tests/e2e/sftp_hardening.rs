//! The SFTP door against the clients that found its defects (issue 11):
//! writes without truncate over a complete image (curl, lftp, sshfs,
//! OpenSSH `reput`, paramiko), client mtimes (OpenSSH `put -p`, rclone),
//! and what a hostile client sends (paramiko, raw).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use copyunit_tests::*;

fn host_pub(unit: &Unit) -> PathBuf {
    unit.dir.path().join("ssh_host_ed25519_key.pub")
}

fn known_hosts(unit: &Unit) -> PathBuf {
    unit.dir.path().join("known_hosts")
}

/// Runs a paramiko script: `t` (a Transport that checked the host key) and
/// `sftp` (an SFTPClient on it) are ready.
fn paramiko(unit: &Unit, body: &str) -> Output {
    let prelude = r#"
import base64, os, socket, struct, sys, time
import paramiko
hk = open(os.environ["HOSTPUB"]).read().split()
hostkey = paramiko.Ed25519Key(data=base64.b64decode(hk[1]))
key = paramiko.Ed25519Key.from_private_key_file(os.environ["KEY"])
t = paramiko.Transport(("127.0.0.1", int(os.environ["PORT"])))
t.connect(hostkey=hostkey, username="admin", pkey=key)
sftp = paramiko.SFTPClient.from_transport(t)
"#;
    Command::new("python3")
        .arg("-c")
        .arg(format!("{prelude}\n{body}"))
        .env("HOSTPUB", host_pub(unit))
        .env("KEY", &unit.key.private)
        .env("PORT", unit.port.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs")
}

fn ok(what: &str, out: &Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

/// A file of `base`'s bytes followed by `extra` random bytes.
fn longer(dir: &Path, base: &Path, name: &str, extra: usize) -> PathBuf {
    let tail = random_file(dir, &format!("{name}.tail"), extra);
    let mut bytes = fs::read(base).unwrap();
    bytes.extend(fs::read(tail).unwrap());
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn image(unit: &Unit, name: &str) -> Option<(u64, String)> {
    unit.images()
        .into_iter()
        .find(|i| i.0 == name)
        .map(|i| (i.1, i.2))
}

fn curl(unit: &Unit, args: &[&str]) -> Output {
    let fp = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(host_pub(unit))
        .output()
        .unwrap();
    let fp = stdout(&fp);
    let fp = fp
        .split_whitespace()
        .nth(1)
        .and_then(|f| f.strip_prefix("SHA256:"))
        .expect("a SHA256 fingerprint");
    Command::new("curl")
        .args(["-sS", "--key"])
        .arg(&unit.key.private)
        .arg("--pubkey")
        .arg(unit.key.private.with_extension("pub"))
        .args(["-u", "admin:", "--hostpubsha256", fp])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("curl runs")
}

#[test]
fn curl_resume_of_a_complete_image_keeps_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "a.img", (1 << 20) + 7);
    unit.put(&src, "a.img");
    let url = format!("sftp://127.0.0.1:{}/a.img", unit.port);
    // Run again on the complete image: nothing to send, nothing lost.
    let out = curl(&unit, &["-C", "-", "-T", &src.display().to_string(), &url]);
    eprintln!("curl again: {}", stderr(&out));
    assert_eq!(
        image(&unit, "a.img"),
        Some(((1 << 20) + 7, sha256sum(&src))),
        "curl -C - on a complete image left it as it was"
    );
    // A longer file: curl sends only the tail, after the bytes it stat'ed.
    let big = longer(unit.dir.path(), &src, "big.img", 300_000);
    let out = curl(&unit, &["-C", "-", "-T", &big.display().to_string(), &url]);
    ok("curl -C - of a longer file", &out);
    assert_eq!(
        image(&unit, "a.img"),
        Some(((1 << 20) + 7 + 300_000, sha256sum(&big)))
    );
}

fn lftp(unit: &Unit, commands: &str) -> Output {
    let ssh = format!(
        "ssh -a -x -o UserKnownHostsFile={} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
         -o IdentityAgent=none -o BatchMode=yes -i {}",
        known_hosts(unit).display(),
        unit.key.private.display()
    );
    Command::new("lftp")
        .arg("-c")
        .arg(format!(
            "set sftp:connect-program \"{ssh}\"; set net:max-retries 1; \
             open -u admin, -p {} sftp://127.0.0.1; {commands}",
            unit.port
        ))
        .stdin(Stdio::null())
        .output()
        .expect("lftp runs")
}

#[test]
fn lftp_put_c_of_a_complete_file_publishes_it_not_zeros() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "l.img", (2 << 20) + 99);
    unit.put(&src, "l.img");
    let out = lftp(&unit, &format!("put -c {} -o l.img", src.display()));
    eprintln!("lftp put -c again: {}{}", stdout(&out), stderr(&out));
    assert_eq!(
        image(&unit, "l.img"),
        Some(((2 << 20) + 99, sha256sum(&src)))
    );
    let big = longer(unit.dir.path(), &src, "big.img", 123_456);
    let out = lftp(&unit, &format!("put -c {} -o l.img", big.display()));
    ok("lftp put -c of a longer file", &out);
    assert_eq!(
        image(&unit, "l.img"),
        Some(((2 << 20) + 99 + 123_456, sha256sum(&big)))
    );
}

#[test]
fn sshfs_append_to_an_image_keeps_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "s.img", 1 << 20);
    unit.put(&src, "s.img");
    let mnt = unit.dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("sshfs")
        .arg("-p")
        .arg(unit.port.to_string())
        .arg("-o")
        .arg(format!(
            "UserKnownHostsFile={}",
            known_hosts(&unit).display()
        ))
        .arg("-o")
        .arg(format!("IdentityFile={}", unit.key.private.display()))
        .args([
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "BatchMode=yes",
            "admin@127.0.0.1:/",
        ])
        .arg(&mnt)
        .stdin(Stdio::null())
        .output()
        .expect("sshfs runs");
    ok("sshfs", &out);
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("fusermount3").arg("-u").arg(&self.0).status();
        }
    }
    let guard = Unmount(mnt.clone());
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("printf x >> '{}'", mnt.join("s.img").display()))
        .output()
        .unwrap();
    ok("printf x >> image", &out);
    drop(guard);
    let mut want = fs::read(&src).unwrap();
    want.push(b'x');
    let want_path = unit.dir.path().join("want");
    fs::write(&want_path, &want).unwrap();
    let want = Some(((1 << 20) + 1, sha256sum(&want_path)));
    unit.wait_for("the appended version to be published", || {
        image(&unit, "s.img") == want
    });
}

#[test]
fn reput_of_a_bigger_file_onto_a_complete_image_appends_its_tail() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "e.img", 3 << 20);
    unit.put(&src, "e.img");
    // A job reading the old version holds its file open.
    let mut reader = fs::File::open(unit.store.join("images/e.img")).unwrap();
    let big = longer(unit.dir.path(), &src, "bigger.img", (1 << 20) + 5);
    let out = unit.sftp(&format!("reput {} e.img\n", big.display()));
    ok("reput", &out);
    assert_eq!(
        image(&unit, "e.img"),
        Some((((3 << 20) + (1 << 20) + 5), sha256sum(&big))),
        "old bytes + tail, not zeros + tail"
    );
    let mut old = Vec::new();
    std::io::Read::read_to_end(&mut reader, &mut old).unwrap();
    assert_eq!(
        old,
        fs::read(&src).unwrap(),
        "the reader keeps the old version"
    );
    assert!(
        !unit.store.join(".copyunit/partial/e.img").exists(),
        "nothing left behind"
    );
}

#[test]
fn fstat_of_an_image_opened_for_writing_reports_its_bytes() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "f.img", 100_000);
    unit.put(&src, "f.img");
    let out = paramiko(
        &unit,
        r#"
f = sftp.open("f.img", "r+")          # WRITE without TRUNCATE
print("size", f.stat().st_size)
f.seek(100_000)
f.write(b"tail")
f.close()
f = sftp.open("g.img", "w")           # TRUNCATE: a fresh upload
print("fresh", f.stat().st_size)
f.write(b"new")
f.close()
f = sftp.open("f.img", "w")           # TRUNCATE over an image: replaced
print("truncated", f.stat().st_size)
f.write(b"v3")
f.close()
"#,
    );
    let text = ok("paramiko", &out);
    assert!(text.contains("size 100000"), "{text}");
    assert!(text.contains("fresh 0"), "{text}");
    assert!(text.contains("truncated 0"), "{text}");
    let v3 = unit.dir.path().join("v3");
    fs::write(&v3, b"v3").unwrap();
    assert_eq!(image(&unit, "f.img"), Some((2, sha256sum(&v3))));
    let g = unit.dir.path().join("g");
    fs::write(&g, b"new").unwrap();
    assert_eq!(image(&unit, "g.img"), Some((3, sha256sum(&g))));
}

#[test]
fn paramiko_writes_in_the_middle_of_an_image_hash_what_is_stored() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "m.img", 1 << 20);
    unit.put(&src, "m.img");
    let out = paramiko(
        &unit,
        r#"
f = sftp.open("m.img", "r+")
f.seek(500_000); f.write(b"B" * 1000)   # over the middle
f.seek(10); f.write(b"A" * 10)          # behind what was hashed: re-hash
f.close()
"#,
    );
    ok("paramiko", &out);
    let mut want = fs::read(&src).unwrap();
    want[500_000..501_000].fill(b'B');
    want[10..20].fill(b'A');
    let w = unit.dir.path().join("want");
    fs::write(&w, &want).unwrap();
    assert_eq!(image(&unit, "m.img"), Some((1 << 20, sha256sum(&w))));
    assert_eq!(fs::read(unit.store.join("images/m.img")).unwrap(), want);
}

#[test]
fn a_client_mtime_is_kept_across_a_restart_and_rclone_does_not_upload_again() {
    let mut unit = Unit::start();
    let src = random_file(unit.dir.path(), "t.img", 200_000);
    let out = Command::new("touch")
        .args(["-d", "@1000000000"])
        .arg(&src)
        .status()
        .unwrap();
    assert!(out.success());
    ok(
        "put -p",
        &unit.sftp(&format!("put -p {} t.img\n", src.display())),
    );
    let check = r#"
print("stat", sftp.stat("t.img").st_mtime)
print("list", [a.st_mtime for a in sftp.listdir_attr(".") if a.filename == "t.img"][0])
"#;
    let text = ok("paramiko stat", &paramiko(&unit, check));
    assert!(text.contains("stat 1000000000"), "{text}");
    assert!(text.contains("list 1000000000"), "{text}");
    let v = unit.json("images --json");
    let added = v[0]["added"].as_u64().unwrap();
    assert!(added > 1_700_000_000, "added stays the arrival time: {v}");

    // setstat on the path of a complete image (what rclone does).
    let text = ok(
        "paramiko utime",
        &paramiko(&unit, "sftp.utime('t.img', (1200000000, 1200000000))"),
    );
    let _ = text;
    unit.kill();
    unit.launch().unwrap();
    let text = ok("paramiko stat after restart", &paramiko(&unit, check));
    assert!(text.contains("stat 1200000000"), "{text}");
    assert!(text.contains("list 1200000000"), "{text}");
    assert!(
        !unit.log().contains("hashing t.img"),
        "the catalog still knows the file: {}",
        unit.log()
    );
    assert_eq!(unit.json("images --json")[0]["added"].as_u64(), Some(added));

    // rclone: same size and mtime means unchanged, nothing sent again.
    let dir = unit.dir.path().join("rc");
    fs::create_dir_all(&dir).unwrap();
    random_file(&dir, "r1.img", 300_000);
    random_file(&dir, "r2.img", 400_000);
    let rclone = |unit: &Unit| {
        Command::new("rclone")
            .args(["copy", "-v", "--retries", "1"])
            .arg(&dir)
            .arg("unit:")
            .env("RCLONE_CONFIG_UNIT_TYPE", "sftp")
            .env("RCLONE_CONFIG_UNIT_HOST", "127.0.0.1")
            .env("RCLONE_CONFIG_UNIT_PORT", unit.port.to_string())
            .env("RCLONE_CONFIG_UNIT_USER", "admin")
            .env("RCLONE_CONFIG_UNIT_KEY_FILE", &unit.key.private)
            .env("RCLONE_CONFIG_UNIT_KNOWN_HOSTS_FILE", known_hosts(unit))
            .env("RCLONE_CONFIG_UNIT_SHELL_TYPE", "none")
            .env("RCLONE_CONFIG_UNIT_DISABLE_HASHCHECK", "true")
            .env("RCLONE_CONFIG", "/dev/null")
            .stdin(Stdio::null())
            .output()
            .expect("rclone runs")
    };
    ok("rclone copy", &rclone(&unit));
    let stored = |unit: &Unit| unit.log().matches("image stored").count();
    let before = stored(&unit);
    let again = rclone(&unit);
    ok("rclone copy again", &again);
    assert_eq!(
        stored(&unit),
        before,
        "rclone sent unchanged images again:\n{}",
        stderr(&again)
    );
}

#[test]
fn an_oversize_sftp_packet_closes_the_channel_with_one_log_line() {
    let unit = Unit::start();
    let out = paramiko(
        &unit,
        r#"
ch = t.open_session()
ch.settimeout(120)
ch.invoke_subsystem("sftp")
ch.sendall(struct.pack(">IBI", 5, 1, 3))      # INIT, version 3
def exact(n):
    b = b""
    while len(b) < n:
        d = ch.recv(n - len(b))
        if not d:
            raise SystemExit("closed early")
        b += d
    return b
n = struct.unpack(">I", exact(4))[0]
assert exact(n)[0] == 2, "VERSION"
garbage = struct.pack(">I", 1 << 20) + b"A" * (256 * 1024)
try:
    ch.sendall(garbage)
except Exception as e:
    print("send stopped:", e)
while ch.recv(65536):
    pass
print("channel closed")
# The connection still serves a new session.
s2 = paramiko.SFTPClient.from_transport(t)
print("listing", s2.listdir("."))
"#,
    );
    let text = ok("paramiko", &out);
    assert!(text.contains("channel closed"), "{text}");
    assert!(text.contains("listing"), "{text}");
    let log = unit.log();
    assert_eq!(
        log.matches("refused a packet").count(),
        1,
        "one line for the refused packet:\n{log}"
    );
    assert!(
        log.lines().count() < 100,
        "no line per 4 bytes of garbage: {} lines",
        log.lines().count()
    );
}

#[test]
fn a_non_utf8_file_name_is_refused_not_stored_lossily() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "latin1.img", 4096);
    let batch = unit.dir.path().join("latin1-batch");
    let mut script = format!("put {} ", src.display()).into_bytes();
    script.extend_from_slice(b"caf\xe9.img\n");
    fs::write(&batch, script).unwrap();
    let out = unit
        .sftp_command()
        .arg("-b")
        .arg(&batch)
        .arg("admin@127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "refused");
    assert!(
        stderr(&out).contains("not valid UTF-8"),
        "the client is told why: {}",
        stderr(&out)
    );
    assert!(unit.images().is_empty());
    for dir in ["images", ".copyunit/partial"] {
        let names: Vec<_> = fs::read_dir(unit.store.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(names.is_empty(), "{dir}: {names:?}");
    }
}

#[test]
fn a_full_store_shows_the_openssh_client_why() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    let _fs = Tmpfs::new(&mnt, "12m");
    let unit = Unit::start_with(Options {
        store: Some(mnt.join("store")),
        ..Options::default()
    });
    let src = random_file(unit.dir.path(), "huge.img", 24 * 1024 * 1024);
    let out = unit.sftp(&format!("put {} huge.img\n", src.display()));
    assert!(!out.status.success(), "the client must see the failure");
    assert!(
        stderr(&out).contains("the image store is full"),
        "OpenSSH shows the message, not only \"Failure\": {}",
        stderr(&out)
    );
    // paramiko gets it in the status message.
    let out = paramiko(
        &unit,
        r#"
try:
    sftp.remove("huge.img")
except IOError:
    pass
try:
    with sftp.open("huge2.img", "w") as f:
        f.set_pipelined(False)
        for i in range(24):
            f.write(os.urandom(1 << 20))
    print("stored?!")
except IOError as e:
    print("error:", e)
"#,
    );
    let text = ok("paramiko", &out);
    assert!(text.contains("the image store is full"), "{text}");
    drop(unit);
}

#[test]
fn hostile_handles_offsets_sizes_and_names_are_refused_and_the_unit_lives_on() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "h.img", 10_000);
    unit.put(&src, "h.img");
    let out = paramiko(
        &unit,
        r#"
def refused(what, f):
    try:
        f()
    except (IOError, OSError) as e:
        print(what, "refused:", e)
        return
    print(what, "ACCEPTED")

files = []
try:
    for i in range(1000):
        files.append(sftp.open("h.img", "r"))
except IOError as e:
    print("handles", len(files), e)
files.pop().close()
files.append(sftp.open("h.img", "r"))
print("reopened one")
for f in files:
    f.close()

ups = []
try:
    for i in range(100):
        ups.append(sftp.open("u%d.img" % i, "w"))
except IOError as e:
    print("uploads", len(ups), e)
for u in ups:
    u.close()
for i in range(len(ups)):
    sftp.remove("u%d.img" % i)

f = sftp.open("x.img", "w")
f.write(b"start")
def far(offset):
    def go():
        f.seek(offset)
        f.write(b"x")
        f.flush()
        f.stat()
    return go
refused("write at 2^64-2", far(2**64 - 2))
refused("write at 2^63", far(2**63))
refused("write at 1 TiB", far(1 << 40))
refused("truncate to 4 TiB", lambda: f.truncate(1 << 42))
f.seek(5); f.write(b"end"); f.close()
r = sftp.open("h.img", "r")
r.seek(2**64 - 1)
print("read far", repr(r.read(10)))
r.close()
for name in [".copyunit/catalog.json", ".copyunit", "../x.img", "..", "/.copyunit/partial/h.img"]:
    refused("open " + name, lambda: sftp.open(name, "w").close())
print("listing", sorted(sftp.listdir(".")))
"#,
    );
    let text = ok("paramiko", &out);
    assert!(
        text.contains("handles 64") && text.contains("too many open files"),
        "{text}"
    );
    assert!(text.contains("reopened one"), "{text}");
    assert!(
        text.contains("uploads 8") && text.contains("too many uploads at once"),
        "{text}"
    );
    assert!(!text.contains("ACCEPTED"), "{text}");
    assert!(
        text.contains("read far ''") || text.contains("read far b''"),
        "{text}"
    );
    assert!(text.contains("listing ['h.img', 'x.img']"), "{text}");
    let want = unit.dir.path().join("want");
    fs::write(&want, b"startend").unwrap();
    assert_eq!(image(&unit, "x.img"), Some((8, sha256sum(&want))));
    assert!(!unit.log().contains("panicked"), "{}", unit.log());
    // And it still takes an ordinary upload.
    unit.put(&src, "after.img");
}
