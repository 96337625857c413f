//! Copy jobs over SSH onto real block devices (loop devices): the patent's
//! steps 35 to 38, with the acknowledgement as the exit status.

use std::fs;
use std::process::Command;

use copyunit_tests::*;

#[test]
fn copy_wait_writes_every_drive_verifies_and_exits_0() {
    let unit = Unit::start_with_loops();
    let (a, b) = (Loop::new(32 << 20), Loop::new(48 << 20));
    let img = random_file(unit.dir.path(), "os.img", (20 << 20) + 4096);
    unit.put(&img, "os.img");
    let drives = unit.json("drives --json");
    for l in [&a, &b] {
        let d = drives
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == l.name())
            .expect("the loop is listed");
        assert_eq!(d["eligible"], true, "{d}");
        assert_eq!(d["reason"], serde_json::Value::Null);
        assert_eq!(d["path"], l.dev);
    }
    let out = unit.ssh(&format!("copy os.img {} {} --wait", a.name(), b.name()));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stdout(&out),
        stderr(&out)
    );
    assert!(
        stdout(&out).contains("written and verified"),
        "{}",
        stdout(&out)
    );
    let want = fs::read(&img).unwrap();
    assert_eq!(a.head(want.len()), want);
    assert_eq!(b.head(want.len()), want);
    let jobs = unit.json("jobs --json");
    assert_eq!(jobs[0]["state"], "done");
    assert_eq!(jobs[0]["targets"].as_array().unwrap().len(), 2);
}

#[test]
fn the_system_disk_a_mounted_drive_and_a_too_small_drive_are_refused_before_writing() {
    let unit = Unit::start_with_loops();
    let img = random_file(unit.dir.path(), "os.img", 8 << 20);
    unit.put(&img, "os.img");
    let drives = unit.json("drives --json");
    let system = drives
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["role"] == "system")
        .expect("the disk backing / is listed as the system disk");
    assert_eq!(system["eligible"], false);
    let out = unit.ssh(&format!(
        "copy os.img {} --wait",
        system["name"].as_str().unwrap()
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("refusing"), "{}", stderr(&out));

    let small = Loop::new(4 << 20);
    let out = unit.ssh(&format!("copy os.img {} --wait", small.name()));
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("holds only"), "{}", stderr(&out));
    assert!(
        small.head(4 << 20).iter().all(|b| *b == 0),
        "not a byte written"
    );

    let mounted = Loop::new(32 << 20);
    assert!(
        Command::new("mkfs.ext4")
            .args(["-q", "-F"])
            .arg(&mounted.dev)
            .status()
            .unwrap()
            .success()
    );
    let mnt = unit.dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    assert!(
        Command::new("mount")
            .arg(&mounted.dev)
            .arg(&mnt)
            .status()
            .unwrap()
            .success()
    );
    let out = unit.ssh(&format!("copy os.img {} --wait", mounted.name()));
    let _ = Command::new("umount").arg(&mnt).status();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&mnt.display().to_string()),
        "names the mount point: {}",
        stderr(&out)
    );
    assert!(unit.ssh("copy nosuch.img all").status.code() == Some(1));
}

#[test]
fn a_failing_drive_fails_alone_and_wait_names_it() {
    let unit = Unit::start_with_loops();
    // A 24 MiB loop over a file on an 8 MiB tmpfs: writes past 8 MiB fail.
    let tiny = Tmpfs::new(&unit.dir.path().join("tiny"), "8m");
    let bad = Loop::over(&tiny.0.join("bad.img"), 24 << 20, &[]);
    let good = Loop::new(24 << 20);
    let img = random_file(unit.dir.path(), "os.img", 16 << 20);
    unit.put(&img, "os.img");
    let out = unit.ssh(&format!(
        "copy os.img {} {} --wait",
        good.name(),
        bad.name()
    ));
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&bad.name()),
        "names the failed drive: {}",
        stderr(&out)
    );
    assert_eq!(
        good.head(16 << 20),
        fs::read(&img).unwrap(),
        "the good drive is complete"
    );
    let job = &unit.json("jobs --json")[0];
    assert_eq!(job["state"], "failed");
    drop(bad);
    drop(tiny);
}

#[test]
fn compressed_images_are_decompressed_while_writing() {
    let unit = Unit::start_with_loops();
    let target = Loop::new(32 << 20);
    let raw = random_file(unit.dir.path(), "pi.img", 12 << 20);
    for (tool, ext) in [
        ("xz", "xz"),
        ("zstd", "zst"),
        ("gzip", "gz"),
        ("bzip2", "bz2"),
    ] {
        let packed = unit.dir.path().join(format!("pi.img.{ext}"));
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{tool} -c {} > {}",
                raw.display(),
                packed.display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
        unit.put(&packed, &format!("pi.img.{ext}"));
        let out = unit.ssh(&format!("copy pi.img.{ext} {} --wait", target.name()));
        assert_eq!(out.status.code(), Some(0), "{ext}: {}", stderr(&out));
        assert_eq!(target.head(12 << 20), fs::read(&raw).unwrap(), "{ext}");
        // Scribble, so the next format must really write.
        assert!(
            unit.ssh(&format!("wipe {} --full --wait", target.name()))
                .status
                .success()
        );
    }
    let formats: Vec<String> = unit
        .json("images --json")
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["format"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(formats, ["bzip2", "gzip", "xz", "zstd"]);
}

#[test]
fn read_turns_a_drive_into_a_hashed_image_and_the_history_survives_a_restart() {
    let mut unit = Unit::start_with_loops();
    let src = Loop::new(6 << 20);
    let data = random_file(unit.dir.path(), "data", 6 << 20);
    assert!(
        Command::new("dd")
            .arg(format!("if={}", data.display()))
            .arg(format!("of={}", src.dev))
            .args(["bs=1M", "oflag=direct", "status=none"])
            .status()
            .unwrap()
            .success()
    );
    let out = unit.ssh(&format!("read {} backup.img --wait", src.name()));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        unit.images(),
        vec![("backup.img".into(), 6 << 20, sha256sum(&data))]
    );
    let before = unit.json("jobs --json");
    unit.kill();
    unit.launch().unwrap();
    assert_eq!(unit.json("jobs --json"), before);
}

#[test]
fn the_dashboard_walks_the_copy_workflow_to_the_acknowledgement() {
    let unit = Unit::start_with_loops();
    let target = Loop::new(16 << 20);
    let img = random_file(unit.dir.path(), "os.img", 5 << 20);
    unit.put(&img, "os.img");
    let term = Tmux::new(&unit.dashboard_command(), 140, 60);
    term.wait_for("the image and the drive", |s| {
        s.contains("os.img") && s.contains(&target.name())
    });
    term.send(&["Enter"]); // choose the image
    term.wait_for("the drives pane", |s| s.to_lowercase().contains("space"));
    // `a` marks every writable drive: make sure ours is the only one, so
    // nothing else on this machine can be touched.
    let writable: Vec<String> = unit
        .json("drives --json")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["eligible"] == true)
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        writable,
        [target.name()],
        "another writable drive is attached: refusing to run this test"
    );
    term.send(&["a"]);
    term.wait_for("our drive marked", |s| {
        s.lines()
            .any(|l| l.contains(&target.name()) && l.contains("[x]"))
    });
    term.send(&["Enter"]);
    let s = term.wait_for("the summary", |s| {
        s.contains("erase") || s.contains("Erase") || s.contains("ERASE")
    });
    assert!(
        s.contains(&target.name()),
        "the summary names the drive:\n{s}"
    );
    term.send(&["Enter"]);
    unit.wait_for("the job to finish", || {
        let j = unit.json("jobs --json");
        j.as_array()
            .is_some_and(|a| !a.is_empty() && a[0]["state"] != "running")
    });
    assert_eq!(unit.json("jobs --json")[0]["state"], "done");
    assert_eq!(target.head(5 << 20), fs::read(&img).unwrap());
    term.wait_for("the notice", |s| s.contains("done"));
    term.send(&["q"]);
}
