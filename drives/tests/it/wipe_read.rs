//! Wiping drives and reading them back into images.

use copyunit_drives::{CancelToken, DiscoverOptions, discover, read_drive, wipe};

use crate::util::{Loop, TempDir, image_bytes, loops_allowed, run, write_file};

fn nothing(_: copyunit_drives::Progress) {}

#[test]
fn quick_wipe_removes_signatures_and_full_wipe_zeroes_everything() {
    let dir = TempDir::new("wipe");
    let l = Loop::new(&dir, 16 << 20, 512);
    run("mkfs.ext4", &["-q", "-L", "OLDSTICK", &l.dev]);
    assert!(run("blkid", &["-p", "-o", "value", "-s", "TYPE", &l.dev]).contains("ext4"));
    // A sentinel in the middle, which a quick wipe must leave alone.
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&l.file)
            .expect("backing file");
        f.write_all_at(&[0xEE; 4096], 8 << 20).expect("sentinel");
    }
    wipe(
        &l.name,
        false,
        &loops_allowed(),
        &CancelToken::new(),
        &nothing,
    )
    .expect("quick wipe");
    let disk = l.contents();
    assert!(disk[..1 << 20].iter().all(|b| *b == 0));
    assert!(disk[disk.len() - (1 << 20)..].iter().all(|b| *b == 0));
    let probe = std::process::Command::new("blkid")
        .args(["-p", &l.dev])
        .output()
        .expect("blkid");
    assert!(
        !String::from_utf8_lossy(&probe.stdout).contains("ext4"),
        "signature survived"
    );
    assert!(disk.contains(&0xEE), "quick wipe touched the middle");

    wipe(
        &l.name,
        true,
        &loops_allowed(),
        &CancelToken::new(),
        &nothing,
    )
    .expect("full wipe");
    assert!(l.contents().iter().all(|b| *b == 0));

    let err = wipe(
        &l.name,
        true,
        &DiscoverOptions::default(),
        &CancelToken::new(),
        &nothing,
    )
    .expect_err("loop hidden");
    assert!(err.to_string().contains("refusing"), "{err}");
}

#[test]
fn read_drive_makes_a_hashed_image() {
    let dir = TempDir::new("read");
    let l = Loop::new(&dir, 8 << 20, 4096);
    let bytes = image_bytes(8 << 20, 14);
    std::fs::write(&l.file, &bytes).expect("fill");
    let out = dir.path("backup.img");
    let r = read_drive(
        &l.name,
        &out,
        &loops_allowed(),
        &CancelToken::new(),
        &nothing,
    )
    .expect("read");
    assert_eq!(r.bytes, 8 << 20);
    assert_eq!(std::fs::read(&out).expect("image"), bytes);
    let want = run("sha256sum", &[out.to_str().expect("utf-8")]);
    assert!(want.starts_with(&r.sha256), "{want} vs {}", r.sha256);
    // Refuses to overwrite an existing file.
    assert!(
        read_drive(
            &l.name,
            &out,
            &loops_allowed(),
            &CancelToken::new(),
            &nothing
        )
        .is_err()
    );
    let _ = write_file;
    let _ = image_bytes;
    assert!(discover(&loops_allowed()).iter().any(|d| d.name == l.name));
}

#[test]
fn power_off_flushes_a_loop_and_refuses_the_system_disk() {
    let dir = TempDir::new("eject");
    let l = Loop::new(&dir, 4 << 20, 512);
    let r = copyunit_drives::power_off(&l.name, &loops_allowed()).expect("flush");
    assert_eq!(r, copyunit_drives::Released::Flushed);
    let root = run("findmnt", &["-n", "-o", "SOURCE", "/"]);
    if let Some(dev) = root.strip_prefix("/dev/") {
        let err =
            copyunit_drives::power_off(dev, &DiscoverOptions::default()).expect_err("refused");
        assert!(err.to_string().contains("system disk"), "{err}");
    }
}
