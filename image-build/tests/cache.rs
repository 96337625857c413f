//! Issue 13: `cargo xtask qemu` booted a stale image, because its cache judged freshness by
//! modification times. The cache (`cache::build_cached`, what xtask uses) must key on the
//! content of every input.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use copyunit_image_build::cache::build_cached;
use copyunit_image_build::{DEFAULT_AUTHORIZED_KEYS, Inputs, default_lock};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const KEY_A: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3mU1oWmQk6LSLtqfqqiDsFWGuYjxcnLIzZ/XxTTQ8n key-a\n";
const KEY_B: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKc9hHk0cK1kQw3YlVgJzY8yq8K3t7q1n0x9pV6m2s4B key-b\n";

fn inputs(dir: &Path, keys: Option<&Path>) -> Inputs {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    Inputs {
        lock: default_lock(),
        cache: root.join("target/image-build/debs"),
        work: dir.join("work"),
        // Any ELF binaries do for the cache; the boot tests use the real ones.
        init: "/bin/true".into(),
        unitd: "/bin/false".into(),
        authorized_keys: keys.map(Path::to_path_buf),
        unit_toml: None,
        out: dir.join("out/unit.img"),
        epoch: copyunit_image_build::DEFAULT_EPOCH,
    }
}

/// The authorized_keys file on the image's boot partition.
fn keys_in(image: &Path) -> String {
    let offset = copyunit_image_build::disk::PART_START_LBA * 512;
    let out = Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .arg("::/authorized_keys")
        .output()
        .expect("mtools is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

fn set_mtime(p: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(p)
        .and_then(|f| f.set_modified(t))
        .expect("set mtime");
}

#[test]
fn stale_image_cache_rebuilds_for_older_keys_and_for_no_keys() {
    let tmp =
        TempDir(std::env::temp_dir().join(format!("copyunit-image-cache-{}", std::process::id())));
    std::fs::create_dir_all(&tmp.0).expect("dir");
    let builder = vec![PathBuf::from("/bin/true")];
    let (a, b) = (tmp.0.join("keys-a"), tmp.0.join("keys-b"));
    std::fs::write(&a, KEY_A).expect("keys a");
    std::fs::write(&b, KEY_B).expect("keys b");

    let (built, reused) = build_cached(&inputs(&tmp.0, Some(&a)), &builder, false).expect("A");
    assert!(!reused, "nothing to reuse on the first build");
    assert_eq!(keys_in(&built.image), KEY_A);

    // The same inputs again: reused, even after touching the key file.
    set_mtime(&a, SystemTime::now() + Duration::from_secs(3600));
    let (_, reused) = build_cached(&inputs(&tmp.0, Some(&a)), &builder, false).expect("A again");
    assert!(
        reused,
        "same content: the image is reused whatever the mtimes"
    );

    // Keys B in a file older than the image: an mtime cache would reuse the image with A.
    set_mtime(
        &b,
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000),
    );
    let (built, reused) = build_cached(&inputs(&tmp.0, Some(&b)), &builder, false).expect("B");
    assert!(!reused, "other keys: the image must be rebuilt");
    assert_eq!(keys_in(&built.image), KEY_B);

    // No keys at all: the image holds none (the header comments only).
    let (built, reused) = build_cached(&inputs(&tmp.0, None), &builder, false).expect("none");
    assert!(
        !reused,
        "no keys asked for: the image with B must not be reused"
    );
    let keys = keys_in(&built.image);
    assert_eq!(keys, DEFAULT_AUTHORIZED_KEYS);
    assert!(!keys.contains("ssh-"), "{keys}");

    // An image changed after it was built (mounted and edited) is not taken as built.
    let mut img = std::fs::read(&built.image).expect("image");
    let last = img.len() - 1;
    img[last] ^= 0xff;
    std::fs::write(&built.image, &img).expect("edit image");
    let (_, reused) = build_cached(&inputs(&tmp.0, None), &builder, false).expect("edited");
    assert!(!reused, "an edited image is rebuilt");

    // The builder is an input: another builder program means another image.
    let other = vec![PathBuf::from("/bin/false")];
    let (_, reused) = build_cached(&inputs(&tmp.0, None), &other, false).expect("builder");
    assert!(!reused, "a new builder rebuilds");
}
