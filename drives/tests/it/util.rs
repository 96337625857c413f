//! Real loop devices on /dev/shm files, test images and cleanup guards.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use copyunit_drives::DiscoverOptions;

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Runs a command, panicking with its stderr when it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A directory removed (with everything in it) on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = PathBuf::from(format!(
            "/dev/shm/copyunit-drives-{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&p).expect("mkdir");
        TempDir(p)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A loop device over a file; detached and deleted on drop.
pub struct Loop {
    pub dev: String,
    pub name: String,
    pub file: PathBuf,
    detached: bool,
}

impl Loop {
    /// A `size`-byte loop device with `sector`-byte logical sectors, filled
    /// with 0xEE so untouched ranges are recognisable.
    pub fn new(dir: &TempDir, size: u64, sector: u32) -> Loop {
        let file = dir.path(&format!("disk-{}.img", SEQ.fetch_add(1, Ordering::Relaxed)));
        fs::write(&file, vec![0xEEu8; size as usize]).expect("backing file");
        Loop::over(&file, sector, false)
    }

    /// A loop device over an existing file.
    pub fn over(file: &Path, sector: u32, read_only: bool) -> Loop {
        let f = file.to_str().expect("utf-8 path");
        let ss = sector.to_string();
        let mut args = vec!["-f", "--show", "--sector-size", &ss];
        if read_only {
            args.push("-r");
        }
        args.push(f);
        let dev = run("losetup", &args);
        let name = dev.trim_start_matches("/dev/").to_owned();
        Loop {
            dev,
            name,
            file: file.to_owned(),
            detached: false,
        }
    }

    /// Detaches the device if it still belongs to this guard's file (the
    /// kernel may have let it go and given the number to someone else).
    pub fn detach(&mut self) {
        if !self.detached && self.bound_to_us() {
            let _ = Command::new("losetup")
                .args(["-d", &self.dev])
                .stderr(std::process::Stdio::null())
                .status();
            self.detached = true;
        }
    }

    /// For a device detached while open (autoclear): waits until the kernel
    /// has let it go, then never touches the number again (it may already
    /// be another test's device).
    pub fn wait_released(&mut self) {
        for _ in 0..200 {
            if !self.bound_to_us() {
                self.detached = true;
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Another medium under the same name: the device is detached and
    /// attached again over `file` (the kernel gives it a new diskseq), as a
    /// stick pulled and another plugged into the same port. The old
    /// backing file is removed; the guard now owns `file`.
    pub fn reattach(&mut self, file: &Path) {
        let f = file.to_str().expect("utf-8 path");
        run("losetup", &["-d", &self.dev]);
        let _ = fs::remove_file(&self.file);
        self.file = file.to_owned();
        // udev-less detach is asynchronous: retry while the number is busy.
        for _ in 0..100 {
            let ok = Command::new("losetup")
                .args([&self.dev, f])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("cannot attach {} again over {f}", self.dev);
    }

    fn bound_to_us(&self) -> bool {
        let backing = fs::read_to_string(format!("/sys/block/{}/loop/backing_file", self.name))
            .unwrap_or_default();
        Path::new(backing.trim()) == self.file.as_path()
            || fs::canonicalize(&self.file).is_ok_and(|f| Path::new(backing.trim()) == f)
    }

    /// Bytes of the device (read through its backing file).
    pub fn contents(&self) -> Vec<u8> {
        fs::read(&self.file).expect("read backing file")
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        self.detach();
        let _ = fs::remove_file(&self.file);
    }
}

/// Unmounts (lazily) on drop.
pub struct Mounted(pub PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

/// Deterministic image bytes: random-looking blocks mixed with text and
/// zeros, so compressors have work and every offset differs.
pub fn image_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut block = 0u64;
    while out.len() < len {
        let want = (len - out.len()).min(64 * 1024);
        match block % 3 {
            0 => {
                for _ in 0..want {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.push(x as u8);
                }
            }
            1 => {
                let line = format!("copyunit test image block {block} seed {seed}\n");
                out.extend(line.bytes().cycle().take(want));
            }
            _ => out.extend(std::iter::repeat_n(0u8, want)),
        }
        block += 1;
    }
    out
}

pub fn write_file(path: &Path, bytes: &[u8]) {
    let mut f = fs::File::create(path).expect("create");
    f.write_all(bytes).expect("write");
}

/// `cmp -n LEN a b` succeeds.
pub fn cmp(a: &Path, b: &str, len: u64) -> bool {
    Command::new("cmp")
        .args(["-n", &len.to_string()])
        .arg(a)
        .arg(b)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

pub fn loops_allowed() -> DiscoverOptions {
    DiscoverOptions {
        allow_loop_devices: true,
        ..DiscoverOptions::default()
    }
}

/// A copy of `image` to `targets`, loop devices allowed.
pub fn plan(image: &Path, targets: &[&Loop]) -> copyunit_drives::CopyPlan {
    let mut p =
        copyunit_drives::CopyPlan::new(image, targets.iter().map(|l| l.name.clone()).collect());
    p.discover = loops_allowed();
    p
}

/// Swallows progress.
pub fn quiet(_: copyunit_drives::TargetUpdate) {}

/// The first `len` bytes of a block device, read through the page cache.
pub fn read_dev(dev: &str, len: usize) -> Vec<u8> {
    use std::io::Read;
    let mut buf = vec![0u8; len];
    fs::File::open(dev)
        .and_then(|mut f| f.read_exact(&mut buf))
        .expect("read device");
    buf
}
