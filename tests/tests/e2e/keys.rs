//! Keys as OpenSSH treats them (issue 11, items 11, 14, 15, 16): the
//! authorized_keys file read as sshd reads it, its options honoured, SHA-1
//! RSA signatures refused, and paramiko's way of trying several keys.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use copyunit_tests::*;

fn authorized_keys(unit: &Unit) -> PathBuf {
    unit.dir.path().join("authorized_keys")
}

fn keygen_type(dir: &Path, name: &str, kind: &str) -> Key {
    let private = dir.join(name);
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", name, "-f"])
        .arg(&private)
        .status()
        .expect("ssh-keygen");
    assert!(ok.success());
    let public = fs::read_to_string(private.with_extension("pub")).unwrap();
    Key { private, public }
}

/// `ssh` with `key` and extra `-o` options; stdin closed.
fn ssh_as(unit: &Unit, key: &Path, opts: &[&str], cmd: &str) -> Output {
    let mut c = unit.ssh_command(Some(key));
    for o in opts {
        c.args(["-o", o]);
    }
    c.arg(cmd).stdin(Stdio::null()).output().expect("ssh runs")
}

/// The paramiko client: logs in with `keys` (tried in that order, no agent,
/// no default keys) and runs `cmd`; exit 5 when authentication failed.
/// `sha1_rsa`: sign RSA keys with `ssh-rsa` whatever the server advertises.
const PARAMIKO: &str = r#"
import sys, paramiko
port, known, cmd, sha1 = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1"
keys = sys.argv[5:]
if sha1:
    # paramiko 5 no longer signs with SHA-1 at all: teach it again.
    from cryptography.hazmat.primitives import hashes
    paramiko.RSAKey.HASHES["ssh-rsa"] = hashes.SHA1
    paramiko.auth_handler.AuthHandler._finalize_pubkey_algorithm = lambda self, t: "ssh-rsa" if "rsa" in t else t
c = paramiko.SSHClient()
c.load_host_keys(known)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
try:
    # With SHA-1 forced, the one RSA key as such (no other key type tried).
    chosen = dict(pkey=paramiko.RSAKey.from_private_key_file(keys[0])) if sha1 else dict(key_filename=keys)
    c.connect("127.0.0.1", port=int(port), username="admin", **chosen,
              allow_agent=False, look_for_keys=False,
              timeout=60, banner_timeout=60, auth_timeout=60)
except paramiko.AuthenticationException as e:
    print("authentication failed:", e, file=sys.stderr)
    sys.exit(5)
_, out, err = c.exec_command(cmd)
sys.stdout.write(out.read().decode())
sys.stderr.write(err.read().decode())
sys.exit(out.channel.recv_exit_status())
"#;

fn paramiko(unit: &Unit, keys: &[&Path], cmd: &str, sha1_rsa: bool) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(PARAMIKO)
        .arg(unit.port.to_string())
        .arg(unit.dir.path().join("known_hosts"))
        .arg(cmd)
        .arg(if sha1_rsa { "1" } else { "0" })
        .args(keys)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs")
}

/// Issue 11 item 11: russh dropped the second `SERVICE_REQUEST ssh-userauth`
/// paramiko sends before each key, so the right key was never tried.
#[test]
fn paramiko_with_several_keys_the_wrong_one_first_logs_in() {
    let unit = Unit::start();
    let wrong = keygen(unit.dir.path(), "wrong_key");
    let out = paramiko(
        &unit,
        &[&wrong.private, &unit.key.private],
        "status --json",
        false,
    );
    assert!(
        out.status.success(),
        "paramiko: {}\n{}",
        stderr(&out),
        unit.log()
    );
    assert!(stdout(&out).contains("host_key_fingerprint"));
    // Still bounded: only wrong keys end in a refusal, not a hang.
    let other = keygen(unit.dir.path(), "other_key");
    let out = paramiko(&unit, &[&wrong.private, &other.private], "status", false);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
}

/// Issue 11 item 14: one Latin-1 byte made the read fail, which meant "no
/// keys": the admin's key refused, pairing on, and `keys add` rewrote the
/// file with the new key alone.
#[test]
fn a_latin1_comment_in_authorized_keys_keeps_every_key_and_pairing_off() {
    let mut unit = Unit::start();
    unit.kill();
    let second = keygen(unit.dir.path(), "second");
    let mut original = b"# Schl\xfcssel der Werkstatt\n\n".to_vec();
    original.extend_from_slice(unit.key.public.trim_end().as_bytes());
    original.extend_from_slice(b" Jos\xe9\n");
    original.extend_from_slice(b"this line is no key\n");
    original.extend_from_slice(b"no-agent-forwarding ");
    original.extend_from_slice(second.public.trim_end().as_bytes());
    original.extend_from_slice(b" caf\xe9\n\n# end\n");
    fs::write(authorized_keys(&unit), &original).unwrap();
    unit.launch().unwrap();

    let out = unit.ssh("status --json");
    assert!(out.status.success(), "{}\n{}", stderr(&out), unit.log());
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["pairing"], false, "{status}");
    assert!(
        ssh_as(&unit, &second.private, &[], "status")
            .status
            .success()
    );
    let log = unit.log();
    assert!(!log.contains("Pairing code"), "{log}");
    assert!(log.contains("line 4"), "the bad line is named: {log}");
    let listed = unit.json("keys list --json");
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    assert_eq!(listed[0]["line"], 3, "{listed}");
    assert_eq!(listed[1]["options"], "no-agent-forwarding", "{listed}");
    let text = unit.ssh("keys list");
    assert!(stdout(&text).contains("Jos\u{fffd}"), "{}", stdout(&text));
    assert!(
        stderr(&text).contains("line 4: not a public key"),
        "keys list names the skipped line: {}",
        stderr(&text)
    );

    // keys add and rm keep every other line byte for byte.
    let third = keygen(unit.dir.path(), "third");
    let added = unit.ssh_stdin("keys add --json", third.public.as_bytes());
    assert!(added.status.success(), "{}", stderr(&added));
    let mut expected = original.clone();
    expected.extend_from_slice(third.public.trim_end().as_bytes());
    expected.push(b'\n');
    assert_eq!(fs::read(authorized_keys(&unit)).unwrap(), expected);
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    let fp = added[0]["fingerprint"].as_str().unwrap();
    assert!(unit.ssh(&format!("keys rm {fp}")).status.success());
    assert_eq!(fs::read(authorized_keys(&unit)).unwrap(), original);
}

/// Issue 11 item 15: `ssh-rsa` (SHA-1) signatures were accepted; OpenSSH
/// refuses them since 8.8.
#[test]
fn ssh_rsa_sha1_signatures_are_refused_and_rsa_sha2_logs_in() {
    let unit = Unit::start();
    let rsa = keygen_type(unit.dir.path(), "rsa_key", "rsa");
    let add = unit.ssh_stdin("keys add", rsa.public.as_bytes());
    assert!(add.status.success(), "{}", stderr(&add));

    let sha1 = ssh_as(
        &unit,
        &rsa.private,
        &["PubkeyAcceptedAlgorithms=ssh-rsa"],
        "status",
    );
    assert_eq!(sha1.status.code(), Some(255), "ssh-rsa refused");
    for alg in ["rsa-sha2-512", "rsa-sha2-256"] {
        let ok = ssh_as(
            &unit,
            &rsa.private,
            &[&format!("PubkeyAcceptedAlgorithms={alg}")],
            "status",
        );
        assert!(ok.status.success(), "{alg}: {}", stderr(&ok));
    }
    // paramiko made to sign with SHA-1 whatever the server advertises.
    let forced = paramiko(&unit, &[&rsa.private], "status", true);
    assert_eq!(forced.status.code(), Some(5), "{}", stderr(&forced));
    let ok = paramiko(&unit, &[&rsa.private], "status", false);
    assert!(ok.status.success(), "{}", stderr(&ok));
}

/// Issue 11 item 16: authorized_keys options were ignored.
#[test]
fn authorized_keys_options_are_honoured_and_unknown_ones_refuse_the_key() {
    let mut unit = Unit::start();
    unit.kill();
    let dir = unit.dir.path().to_path_buf();
    let lines = [
        ("from_ok", r#"from="10.0.0.0/8,127.0.0.0/8""#),
        ("from_negated", r#"from="!127.0.0.1,*""#),
        ("from_elsewhere", r#"from="10.0.0.0/8""#),
        ("expired", r#"expiry-time="20000101""#),
        ("not_expired", r#"expiry-time="29991231Z""#),
        ("no_pty", "no-pty"),
        ("restricted", "restrict"),
        ("forced", r#"command="status --json""#),
        ("sftp_only", r#"command="internal-sftp""#),
        ("unknown", "no-pty,frobnicate"),
    ];
    let mut file = unit.key.public.clone();
    let mut keys = std::collections::HashMap::new();
    for (name, opts) in lines {
        let k = keygen(&dir, name);
        file.push_str(&format!("{opts} {}", k.public));
        keys.insert(name, k);
    }
    fs::write(authorized_keys(&unit), &file).unwrap();
    unit.launch().unwrap();
    let key = |n: &str| keys[n].private.clone();

    let logs_in = |n: &str| ssh_as(&unit, &key(n), &[], "status").status.success();
    assert!(logs_in("from_ok"));
    assert!(!logs_in("from_negated"), "from=!127.0.0.1 refuses");
    assert!(!logs_in("from_elsewhere"));
    assert!(!logs_in("expired"));
    assert!(logs_in("not_expired"));
    assert!(
        !logs_in("unknown"),
        "a key with an unknown option is refused"
    );
    let log = unit.log();
    assert!(
        log.contains("line 11") && log.contains("frobnicate"),
        "the refused line is named: {log}"
    );
    assert!(unit.ssh("status").status.success(), "the other keys work");

    // no-pty and restrict: no dashboard (ssh -tt gives up when the pty is
    // refused); commands still work.
    for n in ["no_pty", "restricted"] {
        let before = unit.log().matches("pty refused").count();
        let out = ssh_as(&unit, &key(n), &["RequestTTY=force"], "");
        assert_eq!(out.status.code(), Some(255), "{n}: {}", stdout(&out));
        unit.wait_for("unitd to log the refused pty", || {
            unit.log().matches("pty refused").count() > before
        });
        assert!(
            ssh_as(&unit, &key(n), &[], "status").status.success(),
            "{n}"
        );
    }

    // command=: runs instead of what the client asked.
    let out = ssh_as(&unit, &key("forced"), &[], "images");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("host_key_fingerprint"),
        "{}",
        stdout(&out)
    );
    assert!(
        unit.log().contains("images"),
        "the original command is logged"
    );
    let sftp = |k: &Path| {
        let batch = dir.join("ls-batch");
        fs::write(&batch, "ls\n").unwrap();
        Command::new("sftp")
            .args(unit.ssh_opts(Some(k)))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(unit.port.to_string())
            .arg("-b")
            .arg(&batch)
            .arg("admin@127.0.0.1")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    assert!(
        !sftp(&key("forced")).status.success(),
        "no sftp for a forced command"
    );
    // command="internal-sftp": SFTP only.
    let out = sftp(&key("sftp_only"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !ssh_as(&unit, &key("sftp_only"), &[], "status")
            .status
            .success()
    );
}

/// Issue 11 item 12: `keys` alone printed the help and exited 0.
#[test]
fn keys_without_a_subcommand_exits_2_with_usage() {
    let unit = Unit::start();
    let out = unit.ssh("keys");
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(stderr(&out).contains("Usage"), "{}", stderr(&out));
}
