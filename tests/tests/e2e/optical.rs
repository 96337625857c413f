//! Disc burners and the source disc drive over SSH, against simulated MMC
//! drives (`--simulate-optical`): nothing on this machine can burn a real
//! disc, so the drives are the optical crate's simulator, reached through
//! the same unit model, jobs and fan-out writer as real ones.

use std::fs;

use copyunit_tests::*;
use serde_json::Value;

/// An ISO 9660-shaped file of `blocks` 2048-byte blocks (a primary volume
/// descriptor at LBA 16 stating the size, the rest random).
fn iso(dir: &std::path::Path, name: &str, blocks: u32) -> std::path::PathBuf {
    let path = random_file(dir, name, blocks as usize * 2048);
    let mut data = fs::read(&path).unwrap();
    copyunit_optical::sim::mark_iso_volume(&mut data);
    fs::write(&path, &data).unwrap();
    path
}

fn drive<'a>(drives: &'a Value, name: &str) -> &'a Value {
    drives
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("{name} is listed: {drives}"))
}

fn ok(unit: &Unit, cmd: &str) -> String {
    let out = unit.ssh(cmd);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{cmd}\n{}\n{}\nunitd's log:\n{}",
        stdout(&out),
        stderr(&out),
        unit.log()
    );
    stdout(&out)
}

fn refused(unit: &Unit, cmd: &str) -> String {
    let out = unit.ssh(cmd);
    assert_ne!(out.status.code(), Some(0), "{cmd} should fail");
    stderr(&out)
}

fn sha_of_image(unit: &Unit, name: &str) -> String {
    unit.images()
        .into_iter()
        .find(|i| i.0 == name)
        .unwrap_or_else(|| panic!("{name} is in the store"))
        .2
}

#[test]
fn an_image_burns_to_two_burners_verifies_and_rips_back_identical() {
    let files = tempfile::tempdir().unwrap();
    let master = iso(files.path(), "master.iso", 400);
    let unit = Unit::start_with(Options {
        extra: vec![
            "--simulate-optical".into(),
            format!("dvd+r,cd-rw,rom={}", master.display()),
        ],
        ..Options::default()
    });

    // Step 31: burners and the source drive, with their discs.
    let drives = unit.json("drives --json");
    let (dvd, cd, rom) = (
        drive(&drives, "sim0"),
        drive(&drives, "sim1"),
        drive(&drives, "sim2"),
    );
    assert_eq!(dvd["kind"], "optical");
    assert_eq!(dvd["role"], "burner");
    assert_eq!(dvd["eligible"], true, "{dvd}");
    assert_eq!(dvd["media"]["media_type"], "DVD+R");
    assert_eq!(dvd["media"]["status"], "blank");
    assert_eq!(cd["media"]["media_type"], "CD-RW");
    assert!(
        dvd["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&Value::from("write_dvd"))),
        "{dvd}"
    );
    assert_eq!(rom["role"], "source");
    assert_eq!(rom["eligible"], false);
    assert_eq!(rom["size"], 400 * 2048);
    let text = ok(&unit, "drives");
    assert!(
        text.contains("sim0") && text.contains("DVD+R blank"),
        "{text}"
    );
    assert!(text.contains("writes CD DVD BD"), "{text}");

    // Steps 35-38: one image to both burners, verified, acknowledged.
    let img = iso(unit.dir.path(), "debian.iso", 700);
    unit.put(&img, "debian.iso");
    let out = ok(&unit, "copy debian.iso sim0 sim1 --wait");
    assert!(out.contains("verified"), "{out}");
    let job = &unit.json("jobs --json")[0];
    assert_eq!(job["kind"], "burn");
    assert_eq!(job["state"], "done");
    for t in job["targets"].as_array().unwrap() {
        assert_eq!(t["phase"], "done", "{t}");
    }

    // The trays opened after the burn (the default): no disc to use now.
    let drives = unit.json("drives --json");
    assert_eq!(drive(&drives, "sim0")["reason"], "no disc in sim0");
    // Closed again, the DVD+R is finalized and the CD-RW holds data.
    ok(&unit, "eject --load sim0");
    ok(&unit, "eject --load sim1");
    let drives = unit.json("drives --json");
    assert_eq!(
        drive(&drives, "sim0")["reason"],
        "the disc in sim0 is finalized: not writable"
    );
    let err = refused(&unit, "copy debian.iso sim0");
    assert!(err.contains("finalized"), "{err}");
    let err = refused(&unit, "copy debian.iso sim1");
    assert!(err.contains("wipe sim1"), "{err}");

    // A burned disc reads back as the image, byte for byte.
    ok(&unit, "read sim0 back.iso --wait");
    assert_eq!(sha_of_image(&unit, "back.iso"), sha256sum(&img));
}

#[test]
fn a_source_disc_copies_to_a_blanked_rewritable_and_bad_requests_are_refused() {
    let files = tempfile::tempdir().unwrap();
    let master = iso(files.path(), "master.iso", 300);
    let unit = Unit::start_with(Options {
        extra: vec![
            "--simulate-optical".into(),
            format!("rom={},cd-rw,cd-r:2", master.display()),
            "--no-eject".into(),
        ],
        ..Options::default()
    });

    // Nothing is written to a reader, an image too big for the disc, or a
    // disc that is the copy's own source.
    let big = iso(unit.dir.path(), "big.iso", 1500);
    unit.put(&big, "big.iso");
    let err = refused(&unit, "copy big.iso sim2");
    assert!(err.contains("has only") && err.contains("free"), "{err}");
    let err = refused(&unit, "copy big.iso sim0");
    assert!(err.contains("cannot burn"), "{err}");
    let err = refused(&unit, "copy sim0 sim0");
    assert!(err.contains("sim0"), "{err}");
    let err = refused(&unit, "wipe sim2");
    assert!(err.contains("cannot be erased"), "{err}");

    // Disc to disc (the unit's own source drive), then blank and again.
    ok(&unit, "copy sim0 sim1 sim2 --wait");
    let job = &unit.json("jobs --json")[0];
    assert_eq!(job["source"], "sim0");
    assert_eq!(job["state"], "done");
    let err = refused(&unit, "copy sim0 sim1");
    assert!(err.contains("wipe sim1"), "{err}");
    ok(&unit, "wipe sim1 --wait");
    let drives = unit.json("drives --json");
    assert_eq!(drive(&drives, "sim1")["media"]["status"], "blank");
    assert_eq!(drive(&drives, "sim1")["eligible"], true);
    ok(&unit, "copy sim0 sim1 --wait");

    // Both copies read back as the master.
    ok(&unit, "read sim1 one.iso --wait");
    ok(&unit, "read sim2 two.iso --wait");
    let want = sha256sum(&master);
    assert_eq!(sha_of_image(&unit, "one.iso"), want);
    assert_eq!(sha_of_image(&unit, "two.iso"), want);
}
