//! The unit core over SSH (issue 13): target sets, sidecars checked as they
//! arrive, and a slow drive that must not freeze the other sessions.

use std::fs;
use std::process::Stdio;

use copyunit_tests::*;

fn refused(unit: &Unit, cmd: &str) -> String {
    let out = unit.ssh(cmd);
    assert_ne!(out.status.code(), Some(0), "{cmd} should fail");
    stderr(&out)
}

/// Defect 2: `wipe all` resolved `all` to every drive and wiped the first.
#[test]
fn wipe_all_wipes_one_arbitrary_drive() {
    let unit = Unit::start_with_loops();
    let (a, b) = (Loop::new(8 << 20), Loop::new(8 << 20));
    fs::write(&a.file, vec![0xAB; 8 << 20]).unwrap();
    fs::write(&b.file, vec![0xAB; 8 << 20]).unwrap();
    let err = refused(&unit, "wipe all");
    assert!(err.contains("by name"), "{err}");
    assert_eq!(unit.json("jobs --json"), serde_json::json!([]));
    for l in [&a, &b] {
        assert!(
            l.head(1 << 20).iter().all(|x| *x == 0xAB),
            "{} wiped",
            l.dev
        );
    }
}

/// Defect 2: `copy IMAGE all sr1` wrote the block drives and silently
/// dropped the burner named beside `all`.
#[test]
fn copy_image_all_sr1_silently_drops_sr1() {
    let unit = Unit::start_with(Options {
        loops: true,
        exclusive_drives: true,
        extra: vec!["--simulate-optical".into(), "dvd+r".into()],
        ..Options::default()
    });
    let target = Loop::new(8 << 20);
    let img = random_file(unit.dir.path(), "disc.iso", 300 * 2048);
    unit.put(&img, "disc.iso");
    let out = unit.ssh("copy disc.iso all sim0 --wait --json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{}",
        stdout(&out),
        stderr(&out),
        unit.log()
    );
    let job: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let drives: Vec<&str> = job["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["drive"].as_str().unwrap())
        .collect();
    assert_eq!(drives, [target.name().as_str(), "sim0"], "{job}");
    assert_eq!(job["state"], "done", "{job}");
    let want = fs::read(&img).unwrap();
    assert_eq!(target.head(want.len()), want);
}

/// Defect 10: a malformed `.bmap` was stored, and the copy that used it
/// panicked in the parser; now it is refused as it arrives, naming its line.
#[test]
fn a_malformed_bmap_sidecar_is_refused_with_the_line_that_is_wrong() {
    let unit = Unit::start();
    let bmap = format!(
        "<?xml version=\"1.0\" ?>\n<bmap version=\"2.0\">\n    <ImageSize> 8192 </ImageSize>\n    \
         <BlockSize> 4096 </BlockSize>\n    <BlocksCount> 2 </BlocksCount>\n    \
         <MappedBlocksCount> 1 </MappedBlocksCount>\n    <ChecksumType> sha256 </ChecksumType>\n    \
         <BmapFileChecksum> {z} </BmapFileChecksum>\n    <BlockMap>\n        \
         <Range chksum=\"{z}\"> one-2 </Range>\n    </BlockMap>\n</bmap>\n",
        z = "0".repeat(64)
    );
    let out = unit.ssh_stdin("upload os.img.bmap", bmap.as_bytes());
    assert_ne!(out.status.code(), Some(0), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 10") && err.contains("one-2"),
        "{err}\n{}",
        unit.log()
    );
    assert!(!unit.store.join("images").join("os.img.bmap").exists());
    let out = unit.ssh("images");
    assert!(!stdout(&out).contains("os.img.bmap"), "{}", stdout(&out));
}

/// An ext4 filesystem on a loop device, mounted; unmounted on drop.
struct Ext4 {
    dir: std::path::PathBuf,
    dev: Loop,
}

impl Ext4 {
    fn new(dir: std::path::PathBuf, size: u64) -> Ext4 {
        let dev = Loop::new(size);
        let ok = std::process::Command::new("mkfs.ext4")
            .args(["-q", "-F", &dev.dev])
            .status()
            .unwrap();
        assert!(ok.success(), "mkfs.ext4");
        fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .arg(&dev.dev)
            .arg(&dir)
            .status()
            .unwrap();
        assert!(ok.success(), "mounting needs root");
        Ext4 { dir, dev }
    }
}

impl Drop for Ext4 {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Defect 5: image inspection, discovery and fsyncs ran inside
/// `Unit::request` on the async runtime: a few requests waiting on one slow
/// disk (here the store's, on a dying stick) held every runtime thread, and
/// no other session was answered. (Since the store records each image's
/// decoded size on arrival, a copy request itself no longer reads the image;
/// the copies wait for their job, which reads the crawling store.)
#[test]
fn blocking_work_runs_on_the_async_runtime() {
    let files = tempfile::tempdir().unwrap();
    let disk = Ext4::new(files.path().join("mnt"), 64 << 20);
    let unit = Unit::start_with(Options {
        store: Some(disk.dir.join("store")),
        loops: true,
        exclusive_drives: true,
        ..Options::default()
    });
    let target = Loop::new(8 << 20);
    let img = random_file(unit.dir.path(), "os.img", 1 << 20);
    unit.put(&img, "os.img");
    // Nothing of the image cached, and reads of the store's disk crawl.
    let stored = unit.store.join("images").join("os.img");
    let dropped = std::process::Command::new("dd")
        .arg(format!("if={}", stored.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()
        .unwrap();
    assert!(dropped.success());
    let throttle = unit.throttle_reads(&disk.dev.dev, 512);
    // More requests that read the image than the runtime has threads.
    let n = 2 * std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut copies: Vec<_> = (0..n)
        .map(|_| {
            let mut c = unit.ssh_command(Some(&unit.key.private));
            c.arg(format!("copy os.img {} --wait", target.name()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            c.spawn().unwrap()
        })
        .collect();
    // Give them time to reach the store: each is a session of its own.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let status = unit.ssh("status");
    let still_waiting = copies
        .iter_mut()
        .map(|c| c.try_wait().unwrap().is_none())
        .filter(|running| *running)
        .count();
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
    assert!(
        still_waiting > 0,
        "the copies were answered before the slow store was read: nothing was slow"
    );
    drop(throttle);
    for mut c in copies {
        let _ = c.wait();
    }
    drop(unit);
}
