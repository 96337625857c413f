//! Who gets in: keys, the pairing code, and nobody else.

use std::fs;
use std::process::Stdio;

use copyunit_tests::*;

#[test]
fn a_key_that_is_not_authorized_is_refused() {
    let unit = Unit::start();
    let stranger = keygen(unit.dir.path(), "stranger");
    let out = unit
        .ssh_command(Some(&stranger.private))
        .arg("status")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(255));
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_host_key_is_generated_once_private_and_kept_across_restarts() {
    let mut unit = Unit::start();
    unit.kill();
    let key = unit.dir.path().join("ssh_host_ed25519_key");
    fs::remove_file(&key).unwrap();
    fs::remove_file(key.with_extension("pub")).unwrap();
    unit.launch().unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let first = unit.json("status --json")["host_key_fingerprint"].clone();
    unit.kill();
    unit.launch().unwrap();
    assert_eq!(unit.json("status --json")["host_key_fingerprint"], first);
}

fn askpass(unit: &Unit, answer: &str) -> std::path::PathBuf {
    let script = unit.dir.path().join(format!("askpass-{}", answer.len()));
    fs::write(&script, format!("#!/bin/sh\necho '{answer}'\n")).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    script
}

fn ssh_with_code(unit: &Unit, code: &str, cmd: &str, stdin: Option<&str>) -> std::process::Output {
    let mut c = std::process::Command::new("ssh");
    c.args(unit.ssh_opts(None))
        .args([
            "-o",
            "PubkeyAuthentication=no",
            "-o",
            "NumberOfPasswordPrompts=1",
            "-p",
        ])
        .arg(unit.port.to_string())
        .arg("admin@127.0.0.1")
        .arg(cmd)
        .env("SSH_ASKPASS", askpass(unit, code))
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", ":0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = c.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        use std::io::Write;
        input.write_all(s.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

#[test]
fn the_pairing_code_works_only_while_no_key_is_installed_and_only_the_right_one() {
    let unit = Unit::start_with(Options {
        with_key: false,
        ..Options::default()
    });
    // unitd prints the code just after it starts listening.
    unit.wait_for("the pairing code in the log", || {
        unit.log().contains("Pairing code: ")
    });
    let log = unit.log();
    let code = log
        .split("Pairing code: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("pairing code in the log:\n{log}"))
        .to_string();
    let wrong = ssh_with_code(&unit, "AAAA-BBBB-CCCC", "status", None);
    assert_eq!(wrong.status.code(), Some(255), "a wrong code is refused");
    // The owner pairs and installs their key.
    let out = ssh_with_code(&unit, &code, "keys add", Some(&unit.key.public));
    assert!(out.status.success(), "pairing: {}", stderr(&out));
    // The key works; the code is dead.
    assert!(unit.ssh("status").status.success());
    let again = ssh_with_code(&unit, &code, "status", None);
    assert_eq!(
        again.status.code(),
        Some(255),
        "the code is dead once a key exists"
    );
    // Keys can be listed and removed by fingerprint.
    let keys = unit.json("keys list --json");
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let other = keygen(unit.dir.path(), "second");
    let added = unit.ssh_stdin("keys add --json", other.public.as_bytes());
    assert!(added.status.success(), "{}", stderr(&added));
    let added: serde_json::Value = serde_json::from_slice(&added.stdout).unwrap();
    let fp = added[0]["fingerprint"].as_str().unwrap();
    assert_eq!(unit.json("keys list --json").as_array().unwrap().len(), 2);
    assert!(unit.ssh(&format!("keys rm '{fp}'")).status.success());
    let left = unit.json("keys list --json");
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_ne!(left[0]["fingerprint"], fp);
    assert_eq!(unit.ssh("keys rm SHA256:nope").status.code(), Some(1));
}

#[test]
fn connections_are_limited_per_address_and_idle_logins_are_dropped() {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("unit.toml");
    fs::write(
        &config,
        "[limits]\nmax_per_address = 3\nlogin_grace_secs = 2\n",
    )
    .unwrap();
    let unit = Unit::start_with(Options {
        extra: vec!["--config".into(), config.display().to_string()],
        ..Options::default()
    });
    let banner = |s: &std::net::TcpStream| -> String {
        let mut line = String::new();
        let _ = BufReader::new(s).read_line(&mut line);
        line
    };
    let held: Vec<_> = (0..3)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", unit.port)).unwrap())
        .collect();
    for s in &held {
        assert!(banner(s).starts_with("SSH-2.0-copyunit"), "accepted");
    }
    let extra = std::net::TcpStream::connect(("127.0.0.1", unit.port)).unwrap();
    assert_eq!(
        banner(&extra),
        "",
        "a fourth connection from the same address is closed at once"
    );
    // Nobody logs in on the held ones: each is dropped after the grace time.
    for mut s in held {
        s.set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .unwrap();
        let mut rest = Vec::new();
        let r = s.read_to_end(&mut rest);
        assert!(r.is_ok(), "the server closed the idle login: {r:?}");
    }
    // The slots are free again.
    assert!(unit.ssh("status").status.success());
}
