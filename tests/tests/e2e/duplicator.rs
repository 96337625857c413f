//! Duplicator mode (issue 4): every drive inserted while it is on gets the
//! image, written and verified, then shows "done - remove". Real OpenSSH
//! clients, real loop devices attached while unitd watches.

use std::fs;

use copyunit_tests::*;
use serde_json::Value;

/// Bytes of the image the loop tests duplicate (the test units see only
/// their own loop devices: see `Options::loops`).
const IMAGE: usize = (24 << 20) + 4096;
/// Loop devices written here.
const DRIVE: u64 = 32 << 20;

/// The newest job writing to `drive`, if any (`jobs --json`).
fn job_for(unit: &Unit, drive: &str) -> Option<Value> {
    unit.json("jobs --json")
        .as_array()
        .unwrap()
        .iter()
        .find(|j| {
            j["targets"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["drive"] == drive)
        })
        .cloned()
}

/// Waits for a job writing `drive` to finish; returns it.
fn finished_job_for(unit: &Unit, drive: &str) -> Value {
    let mut job = None;
    unit.wait_for(&format!("a finished job for {drive}"), || {
        job = job_for(unit, drive).filter(|j| j["state"] != "running");
        job.is_some()
    });
    job.unwrap()
}

/// `drives --json` entry of `drive` (unitd rescans before answering).
fn drive(unit: &Unit, drive: &str) -> Option<Value> {
    unit.json("drives --json")
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == drive)
        .cloned()
}

fn wait_done_remove(unit: &Unit, name: &str) {
    unit.wait_for(&format!("{name} to show done - remove"), || {
        drive(unit, name).is_some_and(|d| d["done_remove"] == true)
    });
}

#[test]
fn copy_auto_refuses_a_missing_or_corrupt_image_and_status_and_auto_show_the_mode() {
    // No --allow-loop-devices: nothing on this machine can be written.
    let unit = Unit::start();
    let img = random_file(unit.dir.path(), "ok.img", 1 << 20);
    unit.put(&img, "ok.img");
    unit.put(&img, "bad.img");
    let sums = unit.dir.path().join("bad.img.sha256");
    fs::write(&sums, format!("{}  bad.img\n", "0".repeat(64))).unwrap();
    unit.put(&sums, "bad.img.sha256");

    assert_eq!(unit.json("status --json")["duplicator"], Value::Null);
    let out = unit.ssh("copy nosuch.img --auto");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("no image named nosuch.img in the store (see `images`)"),
        "{}",
        stderr(&out)
    );
    let out = unit.ssh("copy bad.img --auto");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("image bad.img is flagged corrupt"),
        "{}",
        stderr(&out)
    );
    assert_eq!(unit.json("status --json")["duplicator"], Value::Null);
    assert_eq!(
        unit.ssh("copy ok.img sdz --auto").status.code(),
        Some(2),
        "--auto names no drives"
    );

    let out = unit.ssh("copy ok.img --auto --no-verify");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("duplicator on: every drive inserted from now on gets ok.img"),
        "{}",
        stdout(&out)
    );
    let dup = &unit.json("status --json")["duplicator"];
    assert_eq!(dup["image"], "ok.img", "{dup}");
    assert_eq!(dup["verify"], false);
    assert!(dup["since"].as_u64().unwrap() > 0);
    assert_eq!(&unit.json("auto --json"), dup);
    let status = stdout(&unit.ssh("status"));
    assert!(
        status.contains("duplicator  on: every drive inserted gets ok.img (verify off"),
        "{status}"
    );
    assert!(stdout(&unit.ssh("auto")).contains("duplicator on: every drive inserted gets ok.img"));
    assert!(stdout(&unit.ssh("events")).contains("duplicator on"));

    let out = unit.ssh("auto stop");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out), "duplicator off\n");
    assert_eq!(stdout(&unit.ssh("auto stop")), "duplicator was not on\n");
    assert_eq!(unit.json("status --json")["duplicator"], Value::Null);
    assert_eq!(unit.json("auto --json"), Value::Null);
    assert!(stdout(&unit.ssh("status")).contains("duplicator  off"));
}

#[test]
fn copy_auto_writes_each_drive_inserted_skips_one_holding_the_image_and_auto_stop_ends_it() {
    let unit = Unit::start_with_loops();
    let img = random_file(unit.dir.path(), "dup.img", IMAGE);
    let want = fs::read(&img).unwrap();
    unit.put(&img, "dup.img");
    // A drive attached before the mode is turned on is left alone.
    let before = Loop::new(DRIVE);
    assert!(drive(&unit, &before.name()).is_some());

    let out = unit.ssh("copy dup.img --auto");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // Another program's loop device (over a file outside this test's
    // directories) arriving now is not the unit's to write.
    let elsewhere = tempfile::tempdir_in("/dev/shm").unwrap();
    let foreign = Loop::over(&elsewhere.path().join("foreign.img"), DRIVE, &[]);

    // A blank drive arrives: written, verified, flushed, done - remove.
    let blank = Loop::new(DRIVE);
    let job = finished_job_for(&unit, &blank.name());
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["source"], "dup.img");
    assert_eq!(job["verify"], true);
    assert_eq!(job["targets"][0]["skipped"], false);
    assert_eq!(blank.head(IMAGE), want, "the drive holds the image");
    // A loop device cannot be powered off: flushed and marked all the same.
    wait_done_remove(&unit, &blank.name());
    assert!(
        stdout(&unit.ssh("events")).contains(&format!(
            "duplicator: {} flushed: done - remove",
            blank.name()
        )),
        "{}",
        stdout(&unit.ssh("events"))
    );
    assert!(
        stdout(&unit.ssh("drives"))
            .lines()
            .any(|l| l.starts_with(&blank.name()) && l.contains("done - remove")),
        "{}",
        stdout(&unit.ssh("drives"))
    );

    // A drive that already holds the image is read, found equal, not written.
    let held = unit.dir.path().join("held.img");
    fs::write(&held, &want).unwrap();
    let holder = Loop::over(&held, DRIVE, &[]);
    let job = finished_job_for(&unit, &holder.name());
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["targets"][0]["skipped"], true, "{job}");
    let id = job["id"].as_u64().unwrap();
    assert!(
        stdout(&unit.ssh(&format!("job {id}"))).contains("already held the image: not written")
    );
    assert!(
        stdout(&unit.ssh("events"))
            .contains(&format!("{} already held it: not written", holder.name())),
        "{}",
        stdout(&unit.ssh("events"))
    );
    wait_done_remove(&unit, &holder.name());
    assert_eq!(holder.head(IMAGE), want);

    assert!(
        job_for(&unit, &before.name()).is_none(),
        "a drive attached before the mode was turned on is not written"
    );
    assert!(before.head(1 << 20).iter().all(|b| *b == 0));
    assert!(drive(&unit, &foreign.name()).is_none());
    assert!(job_for(&unit, &foreign.name()).is_none());
    assert!(foreign.head(1 << 20).iter().all(|b| *b == 0));
    drop(foreign);

    // Off: the next drive is listed but gets no job.
    let out = unit.ssh("auto stop");
    assert_eq!(out.status.code(), Some(0));
    let after = Loop::new(DRIVE);
    unit.wait_for("the drive after auto stop to be listed", || {
        drive(&unit, &after.name()).is_some()
    });
    // Listed means a rescan saw it arrive, and arrivals start their jobs
    // before the rescan ends: had one been started, it would be here.
    assert!(job_for(&unit, &after.name()).is_none());
    let d = drive(&unit, &after.name()).unwrap();
    assert_eq!(d["done_remove"], false);
    assert_eq!(d["job"], Value::Null);
    assert!(after.head(1 << 20).iter().all(|b| *b == 0));
}

#[test]
fn the_dashboard_turns_the_duplicator_on_and_off() {
    let unit = Unit::start_with_loops();
    let img = random_file(unit.dir.path(), "dash.img", IMAGE);
    unit.put(&img, "dash.img");
    let term = Tmux::new(&unit.dashboard_command(), 120, 40);
    // The image's row, not the log's "dash.img stored" line, which can come
    // a snapshot earlier.
    term.wait_for("the image", |s| {
        s.lines()
            .any(|l| l.contains("dash.img") && l.contains("raw") && l.ends_with("ok"))
    });

    // The Images pane has the focus and its cursor on the only image.
    term.send(&["A"]);
    let s = term.wait_for("the question", |s| s.contains("Start duplicator?"));
    assert!(
        s.contains("Duplicator: write dash.img to every drive inserted from now on,"),
        "{s}"
    );
    assert!(s.contains("verify on"), "{s}");
    term.send(&["Enter"]);
    term.wait_for("the header indicator", |s| {
        s.contains("DUPLICATOR: dash.img")
    });
    assert_eq!(
        unit.json("status --json")["duplicator"]["image"],
        "dash.img"
    );

    let stick = Loop::new(DRIVE);
    let job = finished_job_for(&unit, &stick.name());
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(stick.head(IMAGE), fs::read(&img).unwrap());
    term.wait_for("done - remove in the drive's row", |s| {
        s.lines()
            .any(|l| l.contains(&stick.name()) && l.contains("done - remove"))
    });

    // Acknowledge the job's notice, then the same key stops the mode.
    term.send(&["Escape"]);
    term.wait_for("the notice to go", |s| !s.contains("acknowledge"));
    term.send(&["A"]);
    let s = term.wait_for("the stop question", |s| s.contains("Stop duplicator?"));
    assert!(
        s.contains("Stop writing dash.img to every drive inserted?"),
        "{s}"
    );
    term.send(&["Enter"]);
    term.wait_for("the indicator to go", |s| !s.contains("DUPLICATOR:"));
    assert_eq!(unit.json("status --json")["duplicator"], Value::Null);

    term.send(&["q"]);
    let s = term.wait_for("ssh to exit", |s| s.contains("EXIT="));
    assert!(s.contains("EXIT=0"), "{s}");
}
