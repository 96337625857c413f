//! Uploading images: sftp, scp, and what must never happen to a half upload.

use std::fs;
use std::process::{Command, Stdio};

use copyunit_tests::*;

#[test]
fn an_sftp_upload_is_listed_with_the_hash_sha256sum_computes_and_downloads_back() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "debian.img", 9 * 1024 * 1024 + 123);
    let back = unit.dir.path().join("back.img");
    let out = unit.sftp(&format!(
        "put {} debian.img\nls -l\ndf\nget debian.img {}\n",
        src.display(),
        back.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("debian.img"),
        "ls -l lists it: {}",
        stdout(&out)
    );
    let images = unit.images();
    assert_eq!(
        images,
        vec![(
            "debian.img".to_string(),
            9 * 1024 * 1024 + 123,
            sha256sum(&src)
        )]
    );
    assert_eq!(fs::read(&src).unwrap(), fs::read(&back).unwrap());
}

#[test]
fn scp_uploads_in_its_default_sftp_mode_and_legacy_scp_is_refused_clearly() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "a.iso", 3 * 1024 * 1024);
    let out = unit.scp(&[], &src.display().to_string(), "admin@127.0.0.1:a.iso");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(unit.images()[0].2, sha256sum(&src));
    let out = unit.scp(&["-O"], &src.display().to_string(), "admin@127.0.0.1:b.iso");
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("legacy scp protocol"),
        "{}",
        stderr(&out)
    );
    assert_eq!(unit.images().len(), 1);
}

#[test]
fn an_interrupted_upload_is_never_an_image_and_reput_completes_it() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "big.img", 48 * 1024 * 1024);
    let batch = unit.dir.path().join("put");
    fs::write(&batch, format!("put {} big.img\n", src.display())).unwrap();
    // Throttled (-l, Kbit/s) so there is a moment to cut it off.
    let mut sftp = unit
        .sftp_command()
        .args(["-l", "40000", "-b"])
        .arg(&batch)
        .arg("admin@127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let partial = unit.store.join(".copyunit/partial/big.img");
    unit.wait_for("part of the upload to arrive", || {
        fs::metadata(&partial)
            .map(|m| m.len() >= 4 << 20)
            .unwrap_or(false)
    });
    sftp.kill().unwrap(); // the network cable, as far as unitd can tell
    sftp.wait().unwrap();
    assert!(unit.images().is_empty(), "a half upload is not an image");
    unit.wait_for("unitd to notice the cut", || {
        unit.log().contains("upload of big.img interrupted")
    });

    let out = unit.sftp(&format!("reput {} big.img\n", src.display()));
    assert!(out.status.success(), "reput: {}", stderr(&out));
    assert_eq!(
        unit.images(),
        vec![("big.img".into(), 48 * 1024 * 1024, sha256sum(&src))]
    );
    assert!(
        unit.log().contains("resuming the upload of big.img"),
        "it resumed rather than restarted"
    );
    assert!(!partial.exists());
}

#[test]
fn put_a_resumes_too() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "x.img", 6 * 1024 * 1024);
    // Leave a partial as a cut connection would: the first 2 MiB.
    let partial_dir = unit.store.join(".copyunit/partial");
    fs::create_dir_all(&partial_dir).unwrap();
    fs::write(
        partial_dir.join("x.img"),
        &fs::read(&src).unwrap()[..2 << 20],
    )
    .unwrap();
    let out = unit.sftp(&format!("put -a {} x.img\n", src.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(unit.images()[0].2, sha256sum(&src));
}

#[test]
fn names_that_would_escape_the_store_are_refused() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "source.bin", 4096);
    for target in [
        "../evil.img",
        "/../../evil.img",
        "/tmp/evil.img",
        "sub/evil.img",
        ".hidden",
    ] {
        let out = unit.sftp(&format!("put {} {target}\n", src.display()));
        assert!(!out.status.success(), "{target} must be refused");
    }
    assert!(!unit.dir.path().join("evil.img").exists());
    assert!(!std::path::Path::new("/tmp/evil.img").exists());
    assert!(unit.images().is_empty());
    let out = unit.sftp("mkdir newdir\n");
    assert!(!out.status.success());
}

#[test]
fn winscp_style_filepart_then_rename_gives_the_image() {
    let unit = Unit::start();
    let src = random_file(unit.dir.path(), "w.img", 1 << 20);
    let out = unit.sftp(&format!(
        "put {} w.img.filepart\nrename w.img.filepart w.img\n",
        src.display()
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let names: Vec<String> = unit.images().into_iter().map(|i| i.0).collect();
    assert_eq!(names, ["w.img"]);
}

#[test]
fn a_full_store_fails_the_upload_and_lists_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=12m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success(), "mounting a small tmpfs needs root");
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _guard = Umount(mnt.clone());
    let unit = Unit::start_with(Options {
        store: Some(mnt.join("store")),
        ..Options::default()
    });
    let src = random_file(unit.dir.path(), "huge.img", 24 * 1024 * 1024);
    let out = unit.sftp(&format!("put {} huge.img\n", src.display()));
    assert!(!out.status.success(), "the client must see the failure");
    assert!(unit.images().is_empty());
    // After removing the leftover partial, a smaller image still fits.
    let rm = unit.ssh("rm huge.img");
    assert!(rm.status.success(), "{}", stderr(&rm));
    let small = random_file(unit.dir.path(), "small.img", 2 * 1024 * 1024);
    let out = unit.sftp(&format!("put {} small.img\n", small.display()));
    assert!(out.status.success(), "{}", stderr(&out));
    drop(unit);
}

#[test]
fn the_store_survives_a_crash_and_a_restart() {
    let mut unit = Unit::start();
    let src = random_file(unit.dir.path(), "keep.img", 2 << 20);
    assert!(
        unit.sftp(&format!("put {} keep.img\n", src.display()))
            .status
            .success()
    );
    let before = unit.images();
    unit.kill();
    // A crash between publishing and saving the catalog: the file is there,
    // the catalog does not know it.
    fs::copy(&src, unit.store.join("images/late.img")).unwrap();
    unit.launch().unwrap();
    let after = unit.images();
    assert_eq!(after.len(), 2);
    assert!(after.contains(&before[0]));
    assert!(after.contains(&("late.img".into(), 2 << 20, sha256sum(&src))));
}

#[test]
fn replacing_an_image_is_atomic_and_a_wrong_checksum_flags_it_corrupt() {
    let unit = Unit::start();
    let v1 = random_file(unit.dir.path(), "v1", 1 << 20);
    let v2 = random_file(unit.dir.path(), "v2", 1 << 20);
    assert!(
        unit.sftp(&format!("put {} os.img\n", v1.display()))
            .status
            .success()
    );
    assert!(
        unit.sftp(&format!("put {} os.img\n", v2.display()))
            .status
            .success()
    );
    assert_eq!(
        unit.images(),
        vec![("os.img".into(), 1 << 20, sha256sum(&v2))]
    );
    let sums = unit.dir.path().join("os.img.sha256");
    fs::write(&sums, format!("{}  os.img\n", sha256sum(&v1))).unwrap();
    assert!(
        unit.sftp(&format!("put {} os.img.sha256\n", sums.display()))
            .status
            .success()
    );
    let v = unit.json("images --json");
    assert_eq!(
        v.as_array().unwrap().len(),
        1,
        "a checksum file is not an image"
    );
    assert_eq!(v[0]["state"]["state"], "corrupt", "{v}");
}
