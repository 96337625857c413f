//! The unit image builder: a pinned Debian kernel, the modules a PC needs, an initramfs whose
//! /init is copyunit-init, and a hybrid BIOS/UEFI disk image, all without root.
//!
//! `build` is the whole pipeline (`cache::build_cached` reuses an image built from the same
//! inputs); `qemu` boots the result for `cargo xtask qemu` and the tests.

#![forbid(unsafe_code)]

pub mod cache;
mod cmd;
pub mod cpio;
pub mod disk;
pub mod error;
pub mod kmods;
pub mod lock;
pub mod qemu;

use std::path::{Path, PathBuf};

use error::io;
pub use error::{Error, Result};
use lock::{Lock, Role};

/// Default SOURCE_DATE_EPOCH (2025-01-01T00:00:00Z): every timestamp in the image.
pub const DEFAULT_EPOCH: u64 = 1_735_689_600;
/// Kernel command line shared by every boot path; disk boots add `copyunit.boot=disk`.
/// `random.trust_*`: RDRAND and a boot loader's seed (EFI RNG) count as entropy, so a PC that has
/// either needs no waiting for the host key (Debian's defaults, made explicit so a kernel pin
/// move cannot silently change them).
pub const CMDLINE: &str =
    "console=tty0 console=ttyS0,115200 loglevel=4 random.trust_cpu=on random.trust_bootloader=on";

/// The unit.toml written when none is given.
pub const DEFAULT_UNIT_TOML: &str = "# copyunit unit settings. Edit from any computer before booting the unit.\n\
\n\
# The unit's name: its host name and the name on the dashboard.\n\
name = \"copyunit\"\n\
\n\
# SSH login name of the admin (default admin):\n\
# user = \"admin\"\n\
\n\
# Images are kept on the filesystem with this label (ext4 recommended):\n\
# store_label = \"COPYUNIT-STORE\"\n\
\n\
# How much the unit logs on its serial line: \"info\" (default), \"debug\" or \"trace\"\n\
# (copyunit.log=debug on the boot line does the same):\n\
# log = \"info\"\n\
\n\
[network]\n\
# Every wired network port gets an address by DHCP. For a fixed address instead, uncomment:\n\
# address = \"192.168.1.50/24\"\n\
# gateway = \"192.168.1.1\"\n\
# interface = \"eth0\"   # default: the first wired port\n\
# dns = [\"192.168.1.1\"]\n";

/// The authorized_keys header written when no keys are given (comments only: no key).
pub const DEFAULT_AUTHORIZED_KEYS: &str = "# OpenSSH public keys allowed to log in as admin, one per line.\n\
# With no key here, the unit shows a one-time pairing code on its screen instead.\n";

/// Everything `build` needs.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// kernel.lock
    pub lock: PathBuf,
    /// Download cache for the pinned .debs (kept between builds).
    pub cache: PathBuf,
    /// Scratch folder, emptied at the start of each build.
    pub work: PathBuf,
    /// The static copyunit-init binary.
    pub init: PathBuf,
    /// The static unitd binary.
    pub unitd: PathBuf,
    pub authorized_keys: Option<PathBuf>,
    pub unit_toml: Option<PathBuf>,
    /// The disk image to write (target/unit.img); the kernel and initramfs go beside it.
    pub out: PathBuf,
    /// Every timestamp in the image (SOURCE_DATE_EPOCH).
    pub epoch: u64,
}

/// What `build` made.
#[derive(Debug, Clone)]
pub struct Built {
    pub image: PathBuf,
    /// The kernel and initramfs, also beside the image, for direct kernel boot.
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// Command line for direct kernel boot (the disk's loaders add `copyunit.boot=disk`).
    pub cmdline: String,
    pub kernel_version: String,
    pub modules: usize,
    pub image_bytes: u64,
    pub initrd_bytes: u64,
    /// SHA-256 of every input's content (see [`cache`]); empty from a plain [`build`].
    pub inputs_key: String,
}

/// The pinned lock file in this crate.
pub fn default_lock() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernel.lock")
}

fn read_or(path: &Option<PathBuf>, default: &str) -> Result<Vec<u8>> {
    match path {
        Some(p) => std::fs::read(p).map_err(io("reading", p)),
        None => Ok(default.as_bytes().to_vec()),
    }
}

/// Builds the image. Downloads the pinned packages with apt-get on first use.
pub fn build(inp: &Inputs) -> Result<Built> {
    let lock = Lock::read(&inp.lock)?;
    std::fs::create_dir_all(&inp.cache).map_err(io("creating", &inp.cache))?;
    let _ = std::fs::remove_dir_all(&inp.work);
    std::fs::create_dir_all(&inp.work).map_err(io("creating", &inp.work))?;
    let unpack = |role: Role, dir: &str| -> Result<PathBuf> {
        let deb = lock::fetch(&inp.cache, lock.get(role))?;
        let dest = inp.work.join(dir);
        lock::extract(&deb, &dest)?;
        Ok(dest)
    };
    let kernel_root = unpack(Role::Kernel, "kernel")?;
    let syslinux_root = unpack(Role::Syslinux, "syslinux")?;
    let common_root = unpack(Role::SyslinuxCommon, "syslinux-common")?;
    let shim_root = unpack(Role::Shim, "shim")?;
    let grub_root = unpack(Role::GrubSigned, "grub")?;
    let busybox_root = unpack(Role::Busybox, "busybox")?;

    let modules_root = kernel_root.join("lib/modules");
    let version = std::fs::read_dir(&modules_root)
        .map_err(io("listing", &modules_root))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .next()
        .ok_or_else(|| Error::Layout("the kernel package has no lib/modules/VERSION".into()))?;
    let moddir = modules_root.join(&version);
    let vmlinuz = kernel_root.join("boot").join(format!("vmlinuz-{version}"));
    tracing::info!("kernel {version}");

    let selection = kmods::select(&moddir, kmods::WANTED)?;
    let initramfs_tree = inp.work.join("initramfs");
    kmods::install(&moddir, &version, &selection, &initramfs_tree)?;

    let unit_toml = read_or(&inp.unit_toml, DEFAULT_UNIT_TOML)?;
    let keys = read_or(&inp.authorized_keys, DEFAULT_AUTHORIZED_KEYS)?;
    let busybox = busybox_root.join("bin/busybox");
    let busybox = std::fs::read(&busybox).map_err(io("reading", &busybox))?;
    let archive = initramfs(inp, &initramfs_tree, &unit_toml, &keys, busybox)?;
    let cpio = archive.to_bytes(u32::try_from(inp.epoch).unwrap_or(u32::MAX));
    // Level 19, one thread: the smallest image that is still the same bytes every time.
    let compressed = zstd::encode_all(&cpio[..], 19).map_err(io("compressing", "initramfs"))?;

    let out_dir = inp.out.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&out_dir).map_err(io("creating", &out_dir))?;
    let initrd = out_dir.join("unit-initrd.img");
    let kernel = out_dir.join("unit-vmlinuz");
    std::fs::write(&initrd, &compressed).map_err(io("writing", &initrd))?;
    std::fs::copy(&vmlinuz, &kernel).map_err(io("copying", &vmlinuz))?;

    let disk_cmdline = format!("{CMDLINE} copyunit.boot=disk");
    let files = disk::BootFiles {
        vmlinuz: &kernel,
        initrd: &initrd,
        shim: &shim_root.join("usr/lib/shim/shimx64.efi.signed"),
        grub: &grub_root.join("usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed"),
        syslinux: &syslinux_root.join("usr/bin/syslinux"),
        mbr_code: &common_root.join("usr/lib/syslinux/mbr/mbr.bin"),
        cmdline: &disk_cmdline,
        unit_toml: &unit_toml,
        authorized_keys: &keys,
    };
    disk::assemble(&files, &inp.work, &inp.out, inp.epoch)?;
    let image_bytes = std::fs::metadata(&inp.out)
        .map_err(io("reading", &inp.out))?
        .len();
    Ok(Built {
        image: inp.out.clone(),
        kernel,
        initrd,
        cmdline: CMDLINE.to_string(),
        kernel_version: version,
        modules: selection.files.len(),
        image_bytes,
        initrd_bytes: compressed.len() as u64,
        inputs_key: String::new(),
    })
}

/// A binary without its debug information (release builds keep line tables for backtraces;
/// the image has no use for them and they triple its size).
fn stripped(bin: &Path, work: &Path) -> Result<Vec<u8>> {
    let name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let copy = work.join(format!("{name}.stripped"));
    cmd::run(
        std::process::Command::new("strip")
            .arg("--strip-debug")
            .arg("-o")
            .arg(&copy)
            .arg(bin),
    )?;
    std::fs::read(&copy).map_err(io("reading", &copy))
}

/// The initramfs tree: /init, /bin/unitd, the modules, the built-in settings, mount points.
fn initramfs(
    inp: &Inputs,
    tree: &Path,
    unit_toml: &[u8],
    keys: &[u8],
    busybox: Vec<u8>,
) -> Result<cpio::Archive> {
    use cpio::Kind;
    let mut a = cpio::Archive::default();
    a.add("init", Kind::File(stripped(&inp.init, &inp.work)?), 0o755);
    a.add(
        "bin/unitd",
        Kind::File(stripped(&inp.unitd, &inp.work)?),
        0o755,
    );
    a.add("dev/console", Kind::CharDev(5, 1), 0o600);
    a.add("bin/busybox", Kind::File(busybox), 0o755);
    a.add("bin/sh", Kind::Symlink("busybox".into()), 0o777);
    for d in [
        "proc",
        "sys",
        "run",
        "tmp",
        "store",
        "boot",
        "root",
        "etc/copyunit",
    ] {
        a.add(d, Kind::Dir, 0o755);
    }
    a.add(
        "etc/copyunit/unit.toml",
        Kind::File(unit_toml.to_vec()),
        0o644,
    );
    a.add(
        "etc/copyunit/authorized_keys",
        Kind::File(keys.to_vec()),
        0o600,
    );
    a.add("etc/hostname", Kind::File(b"copyunit\n".to_vec()), 0o644);
    // Every file under the module tree, with its path relative to the tree.
    let mut stack = vec![tree.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .map_err(io("listing", &dir))?
            .flatten()
        {
            let p = e.path();
            let rel = p
                .strip_prefix(tree)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            if p.is_dir() {
                a.add(&rel, Kind::Dir, 0o755);
                stack.push(p);
            } else {
                a.add(
                    &rel,
                    Kind::File(std::fs::read(&p).map_err(io("reading", &p))?),
                    0o644,
                );
            }
        }
    }
    Ok(a)
}
