//! The SSH transport against clients that misbehave, and against paramiko
//! doing what it does (issue 11, items 5-10, 12, 13). The clients are in
//! `tests/clients/hostile.py` (paramiko and raw sockets); they give up on a
//! hang after minutes, which fails the test, and never time anything.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use copyunit_tests::*;

fn script() -> PathBuf {
    workspace_root().join("tests/clients/hostile.py")
}

fn client(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 runs")
}

fn spawn_client(args: &[&str]) -> Child {
    Command::new("python3")
        .arg(script())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python3 runs")
}

/// Reads the child's stdout until a line containing `what`.
fn wait_line(child: &mut Child, what: &str) {
    use std::io::{BufRead, BufReader};
    let out = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(out).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(what) => break,
            Some(Ok(_)) => continue,
            _ => panic!("client ended before printing `{what}`"),
        }
    }
    // Keep draining so the client never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
}

fn ok(o: &Output, what: &str) -> String {
    let out = stdout(o);
    assert!(o.status.success(), "{what}: {out}\n{}", stderr(o));
    out
}

/// A unit with a `unit.toml` holding these `[limits]` lines.
fn unit_with_limits(limits: &str, with_key: bool) -> (Unit, tempfile::TempDir) {
    let conf = tempfile::tempdir().unwrap();
    let path = conf.path().join("unit.toml");
    fs::write(&path, format!("[limits]\n{limits}\n")).unwrap();
    let unit = Unit::start_with(Options {
        with_key,
        extra: vec!["--config".into(), path.display().to_string()],
        ..Options::default()
    });
    (unit, conf)
}

fn alive(unit: &Unit) -> bool {
    let o = unit.ssh("status");
    o.status.success() && stdout(&o).contains("testunit")
}

/// Sockets on the unit's port in a state (`ss` from iproute2).
fn sockets(unit: &Unit, state: &str) -> usize {
    let o = Command::new("ss")
        .args([
            "-Htn",
            "state",
            state,
            "sport",
            "=",
            &format!(":{}", unit.port),
        ])
        .output()
        .expect("ss runs");
    stdout(&o).lines().filter(|l| !l.trim().is_empty()).count()
}

#[test]
fn paramiko_get_with_every_read_outstanding_does_not_deadlock() {
    let unit = Unit::start();
    let file = random_file(unit.dir.path(), "big.img", 16 << 20);
    unit.put(&file, "big.img");
    let local = unit.dir.path().join("back.img");
    let key = unit.key.private.display().to_string();
    let out = client(&[
        "get",
        &unit.port.to_string(),
        &key,
        "big.img",
        &local.display().to_string(),
    ]);
    let out = ok(&out, "paramiko get of 16 MiB");
    assert!(
        out.contains(&sha256sum(&file)),
        "the bytes paramiko got are the image's: {out}"
    );
}

#[test]
fn a_dead_clients_session_ends_within_the_keepalive_time_and_frees_its_slot() {
    let (unit, _conf) = unit_with_limits("keepalive_secs = 2\nmax_per_address = 2", true);
    let file = random_file(unit.dir.path(), "big.img", 16 << 20);
    unit.put(&file, "big.img");
    let key = unit.key.private.display().to_string();
    let port = unit.port.to_string();
    let mut dead = Vec::new();
    let t0 = std::time::Instant::now();
    for i in 0..2 {
        let local = unit.dir.path().join(format!("part{i}"));
        let mut c = spawn_client(&[
            "get",
            &port,
            &key,
            "big.img",
            &local.display().to_string(),
            "stall",
        ]);
        wait_line(&mut c, "started");
        eprintln!(
            "client {i} is {}s into its download",
            t0.elapsed().as_secs()
        );
        // Mid-download, one client stops answering anything (a pulled
        // cable: only keepalives can tell), the other vanishes (its socket
        // is closed: a session stuck on its channels never reads that).
        let signal = if i == 0 { "-STOP" } else { "-KILL" };
        let _ = Command::new("kill")
            .args([signal, &c.id().to_string()])
            .status();
        dead.push(c);
    }
    unit.wait_for(
        "the dead clients' sessions to end and free their slots",
        || sockets(&unit, "close-wait") == 0 && alive(&unit),
    );
    for mut c in dead {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn login_grace_time_closes_the_socket_in_every_state() {
    // No key installed: pairing is on, so there is a pairing-code prompt.
    let (unit, _conf) = unit_with_limits("login_grace_secs = 5\nmax_per_address = 4", false);
    let out = client(&["grace", &unit.port.to_string()]);
    let out = ok(&out, "clients stalled before login");
    for what in [
        "silent (no banner)",
        "banner, no KEXINIT",
        "SSH_MSG_IGNORE",
        "pairing prompt",
    ] {
        assert!(out.contains(&format!("closed: {what}")), "{out}");
    }
    // The server side of each is gone too, and so are their slots.
    unit.wait_for("no socket left half-closed on the server", || {
        sockets(&unit, "close-wait") == 0 && sockets(&unit, "established") == 0
    });
}

#[test]
fn two_flooding_addresses_do_not_lock_out_a_key_login() {
    let unit = Unit::start();
    let port = unit.port.to_string();
    let mut flood = spawn_client(&["flood", &port, "127.0.0.2,127.0.0.3", "10"]);
    wait_line(&mut flood, "flooding");
    // Every slot for logging in is held by the attackers, renewed as they go.
    unit.wait_for("the flood to hold every login slot", || {
        sockets(&unit, "established") >= 16
    });
    for i in 0..3 {
        assert!(
            alive(&unit),
            "key login {i} from another address under the flood"
        );
    }
    let _ = flood.kill();
    let _ = flood.wait();
}

#[test]
fn thirty_exec_commands_over_one_paramiko_connection_all_succeed() {
    let unit = Unit::start();
    let key = unit.key.private.display().to_string();
    let out = client(&["execs", &unit.port.to_string(), &key, "30"]);
    assert!(ok(&out, "30 execs").contains("30 execs ok"));
}

#[test]
fn a_65535x65535_pty_and_window_change_do_not_hurt_the_daemon() {
    let unit = Unit::start();
    let key = unit.key.private.display().to_string();
    let out = client(&["resize", &unit.port.to_string(), &key, "65535", "65535"]);
    ok(&out, "pty-req and window-change of 65535x65535");
    assert!(alive(&unit), "the unit still answers `status`");
}

#[test]
fn x11_and_forwarding_requests_are_refused_promptly() {
    let unit = Unit::start();
    let key = unit.key.private.display().to_string();
    let out = client(&["refused-requests", &unit.port.to_string(), &key]);
    let out = ok(&out, "unsupported requests");
    for what in [
        "x11-req: refused",
        "tcpip-forward: refused",
        "direct-tcpip: refused",
        "exit 0",
    ] {
        assert!(out.contains(what), "{what}: {out}");
    }
}

#[test]
fn two_thousand_refused_connections_write_a_bounded_number_of_log_lines() {
    let (unit, _conf) = unit_with_limits("max_per_address = 1", true);
    let port = unit.port.to_string();
    let mut holder = spawn_client(&["hold", &port]);
    wait_line(&mut holder, "holding");
    let out = client(&["refused", &port, "2000"]);
    assert!(
        ok(&out, "2000 refused").contains("refused 2000"),
        "{}",
        stdout(&out)
    );
    let _ = holder.kill();
    let _ = holder.wait();
    let log = unit.log();
    let lines = log.lines().filter(|l| l.contains("refused")).count();
    assert!(
        lines <= 40,
        "2000 refused connections wrote {lines} log lines:\n{}",
        log.lines().take(60).collect::<Vec<_>>().join("\n")
    );
    assert!(lines >= 1, "refusals are still logged");
}

#[test]
fn a_huge_ssh_packet_length_closes_that_connection_and_nothing_else() {
    // A long grace time: the close must come from the length check.
    let (unit, _conf) = unit_with_limits("login_grace_secs = 3600", true);
    let out = client(&["huge-packet", &unit.port.to_string()]);
    ok(&out, "a packet length of 0xFFFFFFF0");
    assert!(alive(&unit));
}
