//! Drives that misbehave: read-only, too small, failing, pulled.

use std::process::Command;

use copyunit_drives::{CancelToken, CopyPlan, Error, Phase, TargetUpdate, check_target, copy};

use crate::util::{
    Loop, Mounted, TempDir, cmp, image_bytes, loops_allowed, quiet, run, write_file,
};

#[test]
fn read_only_media_is_refused() {
    let dir = TempDir::new("ro");
    let file = dir.path("ro.img");
    write_file(&file, &vec![0xEEu8; 8 << 20]);
    let l = Loop::over(&file, 512, true);
    let d = copyunit_drives::discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    assert!(d.read_only && !d.eligible);
    let err = check_target(&l.name, &loops_allowed()).expect_err("refused");
    assert!(err.to_string().contains("read-only"), "{err}");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(1 << 20, 9));
    let mut p = CopyPlan::new(&img, vec![l.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    assert!(
        r.targets[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("read-only"),
        "{r:#?}"
    );
}

#[test]
fn a_target_smaller_than_the_image_is_refused_before_a_byte_is_written() {
    let dir = TempDir::new("small");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(12 << 20, 10));
    let small = Loop::new(&dir, 8 << 20, 512);
    let big = Loop::new(&dir, 16 << 20, 512);
    let mut p = CopyPlan::new(&img, vec![small.name.clone(), big.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    let e = r.targets[0].error.clone().expect("error");
    assert!(
        e.contains("disk.img") && e.contains(&small.name) && e.contains("holds only"),
        "{e}"
    );
    assert!(
        small.contents().iter().all(|b| *b == 0xEE),
        "the small drive was written"
    );
    assert_eq!(r.targets[1].phase, Phase::Done, "{r:#?}");

    // A gzip image has no size up front: the write stops at the drive's end.
    let d = dir.0.display();
    assert!(
        Command::new("sh")
            .args(["-c", &format!("gzip -c {d}/disk.img > {d}/disk.img.gz")])
            .status()
            .expect("gzip")
            .success()
    );
    let mut p = CopyPlan::new(dir.path("disk.img.gz"), vec![small.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    assert!(
        r.targets[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("holds only"),
        "{r:#?}"
    );
}

#[test]
fn a_failing_drive_fails_alone_while_the_other_completes() {
    let dir = TempDir::new("eio");
    // A 32 MiB sparse file on an 8 MiB tmpfs: writes past 8 MiB fail.
    let mnt = dir.path("small-tmpfs");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    run(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "size=8M",
            "tmpfs",
            mnt.to_str().expect("utf-8"),
        ],
    );
    let _m = Mounted(mnt.clone());
    let backing = mnt.join("bad.img");
    std::fs::File::create(&backing)
        .and_then(|f| f.set_len(32 << 20))
        .expect("sparse file");
    let bad = Loop::over(&backing, 512, false);
    let good = Loop::new(&dir, 32 << 20, 512);
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(20 << 20, 11));

    let mut p = CopyPlan::new(&img, vec![bad.name.clone(), good.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed, "{r:#?}");
    let e = r.targets[0].error.clone().expect("error");
    assert!(e.contains(&bad.name), "{e}");
    // The first MiB is written last: the drive that failed half-way does not
    // hold the image's boot sector, only the zeros of the capacity probe.
    let head = crate::util::read_dev(&bad.dev, 1 << 20);
    assert!(
        head.iter().all(|b| *b == 0),
        "the first MiB was written before the rest"
    );
    let mid = crate::util::read_dev(&bad.dev, 4 << 20);
    assert_eq!(
        &mid[(2 << 20)..],
        &std::fs::read(&img).expect("image")[(2 << 20)..(4 << 20)],
        "later chunks were written"
    );
    assert_eq!(r.targets[1].phase, Phase::Done, "{r:#?}");
    assert!(r.targets[1].verified);
    assert!(cmp(&img, &good.dev, 20 << 20));
    assert_eq!(r.source_error, None);
}

#[test]
fn a_drive_pulled_mid_write_does_not_stop_the_others() {
    let dir = TempDir::new("pull");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(24 << 20, 12));
    let mut pulled = Loop::new(&dir, 32 << 20, 512);
    let good = Loop::new(&dir, 32 << 20, 512);
    let pulled_dev = pulled.dev.clone();
    let once = std::sync::Once::new();
    let progress = |u: TargetUpdate| {
        if u.index == 0 && u.progress.phase == Phase::Write {
            once.call_once(|| {
                let _ = Command::new("losetup").args(["-d", &pulled_dev]).status();
            });
        }
    };
    let mut p = CopyPlan::new(&img, vec![pulled.name.clone(), good.name.clone()]);
    p.discover = loops_allowed();
    p.queue_depth = 1;
    let r = copy(&p, &CancelToken::new(), &progress);
    assert!(once.is_completed(), "the drive was never pulled");
    // The kernel defers detaching an open loop device until it is closed, so the
    // pulled drive may finish; either way it ends in a final phase and nothing panics.
    assert!(r.targets[0].phase.is_final(), "{r:#?}");
    assert_eq!(r.targets[1].phase, Phase::Done, "{r:#?}");
    assert!(cmp(&img, &good.dev, 24 << 20));
    // The kernel detaches it once the job has closed it.
    pulled.wait_released();

    // A drive that is gone before the job opens it fails with a clear message.
    let mut p = CopyPlan::new(&img, vec!["sdzz9".into(), good.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    assert_eq!(r.targets[0].error.as_deref(), Some("no drive named sdzz9"));
    assert_eq!(r.targets[1].phase, Phase::Done);
}

#[test]
fn a_drive_opened_exclusively_elsewhere_is_refused() {
    let dir = TempDir::new("excl");
    let l = Loop::new(&dir, 16 << 20, 512);
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(1 << 20, 13));
    let held = copyunit_drives::blockdev::Disk::open(
        std::path::Path::new(&l.dev),
        copyunit_drives::blockdev::Access::WriteExclusive,
    )
    .expect("first exclusive open");
    let mut p = CopyPlan::new(&img, vec![l.name.clone()]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed);
    assert!(
        r.targets[0]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("in use"),
        "{r:#?}"
    );
    drop(held);
    assert!(matches!(
        check_target("nosuchdrive0", &loops_allowed()),
        Err(Error::NoSuchDrive(_))
    ));
}

/// Limits O_DIRECT writes to a device through the blkio cgroup (v1, root
/// group); lifted on drop.
struct Throttle(String);

impl Throttle {
    fn new(dev_name: &str, bytes_per_sec: u64) -> Throttle {
        let majmin =
            std::fs::read_to_string(format!("/sys/block/{dev_name}/dev")).expect("dev number");
        let t = Throttle(majmin.trim().to_owned());
        std::fs::write(
            "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device",
            format!("{} {bytes_per_sec}", t.0),
        )
        .expect("blkio throttle");
        t
    }
}

impl Drop for Throttle {
    fn drop(&mut self) {
        let _ = std::fs::write(
            "/sys/fs/cgroup/blkio/blkio.throttle.write_bps_device",
            format!("{} 0", self.0),
        );
    }
}

#[test]
fn a_drive_that_stops_taking_data_is_dropped_and_the_others_finish() {
    let dir = TempDir::new("stall");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(16 << 20, 15));
    let slow = Loop::new(&dir, 32 << 20, 512);
    let fast = Loop::new(&dir, 32 << 20, 512);
    // 2 MiB/s: each 4 MiB chunk takes two seconds, longer than the stall limit.
    let _t = Throttle::new(&slow.name, 2 << 20);
    let mut p = CopyPlan::new(&img, vec![slow.name.clone(), fast.name.clone()]);
    p.discover = loops_allowed();
    p.queue_depth = 1;
    p.stall_timeout = std::time::Duration::from_millis(700);
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed, "{r:#?}");
    let e = r.targets[0].error.clone().expect("error");
    assert!(
        e.contains(&slow.name) && e.contains("not responding"),
        "{e}"
    );
    assert_eq!(r.targets[1].phase, Phase::Done, "{r:#?}");
    assert!(cmp(&img, &fast.dev, 16 << 20));
    assert_eq!(r.source_error, None);
}

/// Issue 13, defect 1: a copy plan carried drive names only, and the writer
/// looked the name up again at open: a stick pulled and another inserted
/// under the same name after the copy was planned was written.
#[test]
fn a_swapped_drive_can_be_written() {
    let dir = TempDir::new("swap");
    let img = dir.path("disk.img");
    write_file(&img, &image_bytes(1 << 20, 13));
    let mut l = Loop::new(&dir, 8 << 20, 512);
    let planned = copyunit_drives::discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    let mut p = CopyPlan::for_drives(&img, std::slice::from_ref(&planned));
    p.discover = loops_allowed();
    // Between the plan and the open: another medium under the same name.
    let other = dir.path("other.img");
    write_file(&other, &vec![0xEEu8; 8 << 20]);
    l.reattach(&other);
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Failed, "{r:#?}");
    let e = r.targets[0].error.clone().unwrap_or_default();
    assert!(
        e.contains(&format!(
            "drive {} changed since the copy was planned",
            l.name
        )) && e.contains("diskseq")
            && e.contains("refusing to write"),
        "{e}"
    );
    assert!(
        l.contents().iter().all(|b| *b == 0xEE),
        "the swapped-in drive was written"
    );
    // The same drive, planned now, is written.
    let now = copyunit_drives::discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    let mut p = CopyPlan::for_drives(&img, &[now]);
    p.discover = loops_allowed();
    let r = copy(&p, &CancelToken::new(), &quiet);
    assert_eq!(r.targets[0].phase, Phase::Done, "{r:#?}");
}

/// Issue 13, defect 1, for wipes: the drive checked when the wipe was asked
/// for is the only one erased.
#[test]
fn a_swapped_drive_can_be_wiped() {
    let dir = TempDir::new("swapwipe");
    let mut l = Loop::new(&dir, 8 << 20, 512);
    let planned = copyunit_drives::discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    let other = dir.path("other.img");
    write_file(&other, &vec![0xEEu8; 8 << 20]);
    l.reattach(&other);
    let planned = copyunit_model::DriveIdentity::of(&planned);
    let progress = |_: copyunit_drives::Progress| {};
    let err = copyunit_drives::wipe_planned(
        &planned,
        false,
        &loops_allowed(),
        &CancelToken::new(),
        &progress,
    )
    .expect_err("refused");
    assert!(
        err.to_string().contains(&format!(
            "drive {} changed since the wipe was planned",
            l.name
        )),
        "{err}"
    );
    assert!(l.contents().iter().all(|b| *b == 0xEE), "it was wiped");
}
