//! Entropy for unitd: its SSH host key and every key exchange need the kernel's random number
//! generator initialised, and `getrandom()` blocks until it is.
//!
//! A PC with RDRAND (`random.trust_cpu=on`), a TPM or virtio-rng has entropy at once. An old PC
//! without any, or QEMU's `pc` machine under TCG, has not, and unitd never got it: unitd is a
//! static glibc binary, where the `getrandom` crate's `dlsym("getrandom")` finds nothing, so it
//! falls back to `poll()`ing /dev/random until the pool is ready. A poll only waits: the kernel
//! runs its jitter entropy collector (`try_to_generate_entropy`) only for a *blocking*
//! `getrandom()` or read of /dev/random, so an idle unit with few interrupts waited for ever,
//! silently. So:
//!
//! - PID 1 does that blocking read in a thread while the pool is not ready (the collector then
//!   needs about a second, also under TCG), and says on the console that it is waiting;
//! - a seed is kept on the image store (`random-seed`), written only from an initialised pool
//!   (at boot once the pool is ready, and at power-off);
//! - at boot the seed is removed from the store *before* it is credited, so one seed is never
//!   credited twice (a crash in between loses it instead); it is mixed with what tells this PC
//!   apart (MAC addresses, DMI ids, the clock), as systemd-random-seed does with the machine id,
//!   so a cloned store does not give two units the same pool.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{say, sys};

/// The seed file on the store.
pub const SEED_FILE: &str = "random-seed";
/// Bytes in a seed (the input pool holds 256 bits; more does no harm).
const SEED_BYTES: usize = 512;
/// The first line of a seed file: written by copyunit from an initialised pool.
const MAGIC: &[u8] = b"copyunit random seed v1\n";

/// True when the kernel's random number generator is initialised (reads would not block).
pub fn ready() -> bool {
    let Ok(mut f) = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("/dev/random")
    else {
        return false;
    };
    let mut b = [0u8; 1];
    // Before the pool is initialised a non-blocking read fails with EAGAIN.
    f.read(&mut b).is_ok()
}

/// What a seed file must hold to be credited: the magic line and a full seed after it.
pub fn parse_seed(bytes: &[u8]) -> Option<&[u8]> {
    let seed = bytes.strip_prefix(MAGIC)?;
    (seed.len() >= 32).then_some(seed)
}

/// A seed file's content.
fn seed_file(seed: &[u8]) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.extend_from_slice(seed);
    v
}

/// What tells this PC apart from another booted from a copy of the same store: mixed into the
/// pool, not credited.
fn machine_bits() -> Vec<u8> {
    let mut v = Vec::new();
    for f in [
        "/sys/class/dmi/id/product_uuid",
        "/sys/class/dmi/id/product_serial",
        "/sys/class/dmi/id/board_serial",
    ] {
        if let Ok(b) = std::fs::read(f) {
            v.extend_from_slice(&b);
        }
    }
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for e in entries.flatten() {
            if let Ok(b) = std::fs::read(e.path().join("address")) {
                v.extend_from_slice(&b);
            }
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    v.extend_from_slice(&now.as_nanos().to_le_bytes());
    v
}

/// Mixes `data` into the pool, crediting `bits` (0: mix only).
fn feed(data: &[u8], bits: u32) -> io::Result<()> {
    let f = File::options().write(true).open("/dev/urandom")?;
    if bits == 0 {
        return (&f).write_all(data);
    }
    sys::add_entropy(f.as_raw_fd(), data, bits)
}

/// Removes the seed file for good (the directory entry too) before its seed is credited.
fn consume(path: &Path) -> io::Result<()> {
    std::fs::remove_file(path)?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    File::open(dir)?.sync_all()
}

/// Writes a fresh seed from the (initialised) pool, atomically and durably.
pub fn save_seed(store: &Path) -> io::Result<()> {
    if !ready() {
        return Err(io::Error::other("the random number generator is not ready"));
    }
    let mut seed = vec![0u8; SEED_BYTES];
    File::open("/dev/urandom")?.read_exact(&mut seed)?;
    let path = store.join(SEED_FILE);
    let tmp = store.join(format!("{SEED_FILE}.tmp"));
    {
        let mut f = File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&seed_file(&seed))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, &path)?;
    File::open(store)?.sync_all()
}

/// At boot, once the store is mounted (`store` is None for a RAM store): credits the seed
/// saved at the previous boot, and when the pool is still not ready says so on the console and
/// waits for it in the background, saving a new seed when it is ready.
pub fn at_boot(store: Option<PathBuf>) {
    let _ = feed(&machine_bits(), 0);
    if let Some(dir) = &store {
        let path = dir.join(SEED_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => match parse_seed(&bytes) {
                Some(seed) => match consume(&path) {
                    Ok(()) => {
                        let bits = u32::try_from(seed.len() * 8).unwrap_or(u32::MAX);
                        match feed(seed, bits) {
                            Ok(()) => say!("random seed from the store credited"),
                            Err(e) => say!("random seed: cannot credit it: {e}"),
                        }
                    }
                    // A seed that cannot be removed could be credited again next boot: mix only.
                    Err(e) => {
                        say!(
                            "random seed: cannot remove {} ({e}): mixed in, not credited",
                            path.display()
                        );
                        let _ = feed(seed, 0);
                    }
                },
                None => {
                    say!(
                        "random seed: {} is not a copyunit seed: ignored",
                        path.display()
                    );
                    let _ = std::fs::remove_file(&path);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => say!("random seed: {}: {e}", path.display()),
        }
    }
    if ready() {
        if let Some(dir) = &store
            && let Err(e) = save_seed(dir)
        {
            say!("random seed: cannot save one on the store: {e}");
        }
        return;
    }
    say!(
        "waiting for entropy: this PC gives the kernel no random numbers it trusts (no RDRAND, TPM or virtio-rng), so the SSH host key and service wait until the kernel has gathered enough from timer jitter; later boots use a seed saved on the store"
    );
    std::thread::spawn(move || wait_then_save(store));
}

fn wait_then_save(store: Option<PathBuf>) {
    let started = Instant::now();
    let waiter = std::thread::spawn(|| {
        // A blocking read runs the kernel's jitter entropy collector until the pool is ready.
        let mut b = [0u8; 1];
        let _ = File::open("/dev/random").and_then(|mut f| f.read(&mut b));
    });
    let mut next_note = Duration::from_secs(15);
    while !waiter.is_finished() && !ready() {
        std::thread::sleep(Duration::from_millis(200));
        if started.elapsed() >= next_note {
            say!(
                "still waiting for entropy ({} s): the SSH service starts when the kernel's random number generator is ready",
                started.elapsed().as_secs()
            );
            next_note += Duration::from_secs(30);
        }
    }
    say!(
        "entropy ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Some(dir) = store
        && let Err(e) = save_seed(&dir)
    {
        say!("random seed: cannot save one on the store: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_full_copyunit_seed_is_credited() {
        let seed = vec![7u8; SEED_BYTES];
        assert_eq!(parse_seed(&seed_file(&seed)), Some(&seed[..]));
        assert_eq!(parse_seed(&seed), None, "no magic line: not ours");
        assert_eq!(parse_seed(&seed_file(&seed[..16])), None, "too short");
        assert_eq!(parse_seed(b""), None);
    }

    #[test]
    fn a_saved_seed_is_written_whole_and_private() {
        let dir = std::env::temp_dir().join(format!("copyunit-seed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        // The host's pool is initialised: a seed can be saved.
        assert!(ready());
        save_seed(&dir).expect("save");
        let path = dir.join(SEED_FILE);
        let bytes = std::fs::read(&path).expect("seed");
        assert_eq!(parse_seed(&bytes).map(<[u8]>::len), Some(SEED_BYTES));
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&path).expect("meta").permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        consume(&path).expect("consume");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
