//! The dashboard over SSH, in a real terminal (tmux).

use copyunit_tests::*;

#[test]
fn the_dashboard_shows_the_unit_follows_resizes_acts_and_quits_with_status_0() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "src", 1 << 20);
    assert!(
        unit.sftp(&format!(
            "put {} first.img\nput {} second.img\n",
            src.display(),
            src.display()
        ))
        .status
        .success()
    );
    let term = Tmux::new(&unit.dashboard_command(), 120, 40);
    let screen = term.wait_for("the dashboard", |s| {
        s.contains("testunit") && s.contains("second.img")
    });
    assert!(
        screen.contains("SHA256:"),
        "the host key fingerprint is shown:\n{screen}"
    );

    // An image uploaded by another session appears without a keypress.
    assert!(
        unit.sftp(&format!("put {} third.img\n", src.display()))
            .status
            .success()
    );
    term.wait_for("the new image", |s| s.contains("third.img"));

    // Delete the first image, confirmed.
    term.send(&["d"]);
    term.wait_for("the confirmation", |s| s.contains("Delete first.img"));
    term.send(&["Enter"]);
    unit.wait_for("first.img to be removed", || {
        !unit.images().iter().any(|i| i.0 == "first.img")
    });
    term.wait_for("the list and the log to follow", |s| {
        s.contains("in 2 images") && s.contains("first.img removed")
    });

    // Resize: the layout follows; too small says so instead of garbage.
    term.resize(70, 20);
    term.wait_for("the narrow layout", |s| {
        s.lines().all(|l| l.chars().count() <= 70) && s.contains("second.img")
    });
    term.resize(30, 8);
    term.wait_for("the too-small message", |s| s.contains("too small"));
    term.resize(100, 30);
    term.wait_for("the layout again", |s| s.contains("second.img"));

    term.send(&["q"]);
    let s = term.wait_for("ssh to exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}

#[test]
fn ctrl_c_also_leaves_cleanly_and_a_killed_client_does_not_hurt_the_unit() {
    let unit = Unit::start();
    let term = Tmux::new(&unit.dashboard_command(), 80, 24);
    term.wait_for("the dashboard", |s| s.contains("testunit"));
    term.send(&["C-c"]);
    let s = term.wait_for("ssh to exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");

    let term = Tmux::new(&unit.dashboard_command(), 80, 24);
    term.wait_for("the dashboard", |s| s.contains("testunit"));
    drop(term); // kills the client mid-session
    assert!(unit.ssh("status").status.success(), "the unit carries on");
}

#[test]
fn the_units_own_screen_shows_a_view_only_dashboard_with_the_pairing_code() {
    // The pane's program only sleeps: the pane's terminal is the unit's screen.
    let screen = Tmux::new("sleep 600", 100, 30);
    let unit = Unit::start_with(Options {
        with_key: false,
        extra: vec!["--console".into(), screen.tty()],
        ..Options::default()
    });
    let s = screen.wait_for("the console dashboard", |s| {
        s.contains("testunit") && s.contains("SHA256:")
    });
    unit.wait_for("the pairing code in the log", || {
        unit.log().contains("Pairing code: ")
    });
    let code = unit
        .log()
        .split("Pairing code: ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_string();
    assert!(
        s.contains(&code),
        "the pairing code is on the unit's screen:\n{s}"
    );
    screen.send(&["d"]);
    screen.wait_for("a polite refusal", |s| {
        s.to_lowercase().contains("view only") || s.to_lowercase().contains("view-only")
    });
}

#[test]
fn a_client_killed_mid_job_leaves_the_job_running_and_a_new_session_sees_it_done() {
    let unit = Unit::start_with_loops();
    let target = Loop::new(160 << 20);
    let img = random_file(unit.dir.path(), "big.img", 128 << 20);
    unit.put(&img, "big.img");
    // A drive as slow as a USB stick: the job runs for ~4 s, long enough to
    // be seen running (a loop over RAM finishes before a screen refresh).
    let _slow = unit.throttle_writes(&target, 32 << 20);
    let term = Tmux::new(&unit.dashboard_command(), 120, 40);
    term.wait_for("the dashboard", |s| s.contains("big.img"));
    let out = unit.ssh(&format!("copy big.img {} --json", target.name()));
    assert!(out.status.success(), "{}", stderr(&out));
    term.wait_for("the running job", |s| s.contains("1 running"));
    drop(term); // the admin's laptop goes away mid-job
    unit.wait_for("the job to end", || {
        unit.json("jobs --json")[0]["state"] != "running"
    });
    assert_eq!(unit.json("jobs --json")[0]["state"], "done");
    let term = Tmux::new(&unit.dashboard_command(), 120, 40);
    term.wait_for("the finished job in a new session", |s| {
        s.contains("1 finished") || s.contains("done")
    });
    assert_eq!(target.head(128 << 20), std::fs::read(&img).unwrap());
}
