//! Helpers shared by the fuzz targets: scratch directories, a unit over a
//! temporary store, and a byte cursor for structured inputs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// A fresh scratch directory (on tmpfs where possible), removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // `cargo xtask fuzz` mounts a small tmpfs for the stores
        // (COPYUNIT_FUZZ_SCRATCH): the store caps sizes and holes by its free
        // space, so there no input can make a unit hash gigabytes of holes.
        // Else tmpfs where there is one: the store fsyncs every metadata write.
        let shm = Path::new("/dev/shm");
        let base = match std::env::var_os("COPYUNIT_FUZZ_SCRATCH") {
            Some(dir) => PathBuf::from(dir),
            None if shm.is_dir() => shm.to_path_buf(),
            None => std::env::temp_dir(),
        };
        let dir = base.join(format!("copyunit-fuzz-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Default for TempDir {
    fn default() -> TempDir {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One single-threaded tokio runtime for the whole fuzzing process.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the tokio runtime")
    })
}

/// Images every fuzzed store starts with, so reads, stats and renames have
/// something to find.
pub const IMAGES: &[(&str, &[u8])] = &[("a.img", &[0xa5; 4096]), ("b.iso", b"CD001 a small disc")];

/// A unit over a new store in `dir` holding [`IMAGES`], no drives, no keys.
/// Must be called inside the runtime.
pub fn unit(dir: &Path) -> Arc<unitd::unit::Unit> {
    let store = dir.join("store");
    std::fs::create_dir_all(&store).expect("creating the store");
    for (name, bytes) in IMAGES {
        std::fs::write(store.join(name), bytes).expect("writing a store image");
    }
    let flags = unitd::config::Flags {
        store: Some(store.clone()),
        authorized_keys: Some(dir.join("authorized_keys")),
        host_key: Some(dir.join("host_key")),
        name: Some("fuzz".into()),
        ..Default::default()
    };
    let config = unitd::config::Config::resolve(flags).expect("a valid config");
    let store = unitd::store::Store::open(&store, false).expect("opening the store");
    let keys = unitd::ssh::auth::Keys::new(&config.authorized_keys);
    unitd::unit::Unit::new(config, store, keys, "SHA256:fuzz".into())
}

/// Reads structured values off the front of a fuzz input; past the end
/// every read gives zeros.
pub struct Cursor<'a> {
    data: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor { data }
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    pub fn u8(&mut self) -> u8 {
        let (first, rest) = self.data.split_first().unwrap_or((&0, &[]));
        self.data = rest;
        *first
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.data.split_at(n.min(self.data.len()));
        self.data = rest;
        head
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// A unit with two drives, two images, an upload and a running job: enough
/// for every pane and dialog of the dashboard to have something to show.
pub fn sample_snapshot() -> copyunit_model::Snapshot {
    use copyunit_model::{Drive, Image, Job, JobState, JobTarget, Phase, Snapshot, Upload};
    let drive = |name: &str| Drive {
        name: name.into(),
        path: format!("/dev/{name}"),
        size: 8 << 30,
        removable: true,
        eligible: true,
        ..Drive::default()
    };
    let image = |name: &str, size| Image {
        name: name.into(),
        size,
        sha256: "ab".repeat(32),
        ..Image::default()
    };
    Snapshot {
        drives: vec![drive("sdb"), drive("sdc")],
        images: vec![image("debian.iso", 700 << 20), image("a.img", 4096)],
        uploads: vec![Upload {
            name: "big.img".into(),
            bytes: 1 << 20,
            expected: Some(4 << 20),
            started: 1,
            rate_bps: 1 << 20,
        }],
        jobs: vec![Job {
            id: 1,
            source: "debian.iso".into(),
            state: JobState::Running,
            targets: vec![JobTarget {
                drive: "sdb".into(),
                phase: Phase::Write,
                bytes_done: 1 << 20,
                bytes_total: Some(700 << 20),
                ..JobTarget::default()
            }],
            ..Job::default()
        }],
        ..Snapshot::default()
    }
}
