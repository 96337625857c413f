//! Raw copies: fan-out, sector sizes, verify, skip, cancel.

use std::sync::Mutex;

use copyunit_drives::{CancelToken, Phase, TargetUpdate, copy, holds_image};

use crate::util::{Loop, TempDir, cmp, image_bytes, plan, quiet, write_file};

#[test]
fn one_image_to_512_and_4096_byte_sector_drives_at_once() {
    let dir = TempDir::new("fanout");
    // Not a multiple of the sector size: the tail sector is read, patched, written.
    let len = (12 << 20) + 1000;
    let img = dir.path("disk.img");
    let bytes = image_bytes(len, 1);
    write_file(&img, &bytes);
    let a = Loop::new(&dir, 32 << 20, 512);
    let b = Loop::new(&dir, 32 << 20, 4096);
    let c = Loop::new(&dir, 16 << 20, 512);

    let seen = Mutex::new(Vec::<(usize, Phase)>::new());
    let progress = |u: TargetUpdate| seen.lock().expect("lock").push((u.index, u.progress.phase));
    let report = copy(&plan(&img, &[&a, &b, &c]), &CancelToken::new(), &progress);
    assert!(report.all_done(), "{report:#?}");
    assert_eq!(report.content_len, len as u64);
    let sha = report.content_sha256.clone().expect("content hash");
    for (t, l) in report.targets.iter().zip([&a, &b, &c]) {
        assert!(t.verified && !t.skipped, "{t:?}");
        assert_eq!(t.sha256.as_deref(), Some(sha.as_str()));
        assert!(
            cmp(&img, &l.dev, len as u64),
            "{} differs from the image",
            l.dev
        );
        // Bytes past the image's end are untouched (the tail sector was patched).
        let after = l.contents();
        assert_eq!(after[len], 0xEE);
    }
    // Every target went through every phase, in order.
    let seen = seen.into_inner().expect("lock");
    for i in 0..3 {
        let mut phases: Vec<Phase> = seen.iter().filter(|s| s.0 == i).map(|s| s.1).collect();
        phases.dedup();
        assert_eq!(
            phases,
            [
                Phase::Prepare,
                Phase::Write,
                Phase::Sync,
                Phase::Verify,
                Phase::Done
            ],
            "target {i}"
        );
    }
    // The duplicator's skip: a drive holding exactly the image.
    let cancel = CancelToken::new();
    assert!(holds_image(std::path::Path::new(&a.dev), len as u64, &sha, &cancel).expect("hash"));
    let other = Loop::new(&dir, 32 << 20, 512);
    assert!(
        !holds_image(std::path::Path::new(&other.dev), len as u64, &sha, &cancel).expect("hash")
    );
    let mut p = plan(&img, &[&a, &other]);
    p.skip_if_holds = Some((len as u64, sha.clone()));
    let r = copy(&p, &cancel, &quiet);
    assert!(r.all_done(), "{r:#?}");
    assert!(r.targets[0].skipped && r.targets[0].bytes_written == 0);
    assert!(!r.targets[1].skipped);
    assert!(cmp(&img, &other.dev, len as u64));

    // A known content hash replaces hashing the source; a wrong one fails the read-back.
    let mut p = plan(&img, &[&b]);
    p.content_sha256 = Some(sha.clone());
    let r = copy(&p, &cancel, &quiet);
    assert!(r.all_done() && r.targets[0].verified, "{r:#?}");
    assert_eq!(r.content_sha256, None, "the source was hashed again");
    p.content_sha256 = Some("00".repeat(32));
    let r = copy(&p, &cancel, &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    assert!(
        r.targets[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("reads back different data"),
        "{r:#?}"
    );
}

#[test]
fn without_verify_the_drive_is_written_and_not_read_back() {
    let dir = TempDir::new("noverify");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(6 << 20, 2));
    let a = Loop::new(&dir, 16 << 20, 512);
    let mut p = plan(&img, &[&a]);
    p.verify = false;
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert!(r.all_done(), "{r:#?}");
    assert!(!r.targets[0].verified);
    assert_eq!(r.content_sha256, None);
    assert!(cmp(&img, &a.dev, 6 << 20));
}

#[test]
fn a_cancelled_copy_stops_every_target() {
    let dir = TempDir::new("cancel");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(16 << 20, 3));
    let a = Loop::new(&dir, 32 << 20, 512);
    let b = Loop::new(&dir, 32 << 20, 4096);
    let cancel = CancelToken::new();
    // Cancel while the targets prepare: they stop before the first chunk.
    let progress = |u: TargetUpdate| {
        if u.progress.phase == Phase::Prepare {
            cancel.cancel();
        }
    };
    let r = copy(&plan(&img, &[&a, &b]), &cancel, &progress);
    assert_eq!(r.source_error, None, "a cancel is not a source error");
    for t in &r.targets {
        assert_eq!(t.phase, Phase::Cancelled, "{r:#?}");
        assert_eq!(t.error.as_deref(), Some("cancelled"));
    }
    assert!(!r.all_done());
}
