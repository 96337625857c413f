//! `cargo xtask image [--authorized-keys FILE] [--unit-toml FILE] [--out PATH] [--unitd PATH]
//! [--update-lock]`: builds the static binaries, then the bootable unit image (image-build).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use copyunit_image_build as ib;

use crate::util;

/// The Rust target the image's binaries are built for, statically linked.
const TARGET: &str = "x86_64-unknown-linux-gnu";

#[derive(Debug, Default)]
pub struct Options {
    pub authorized_keys: Option<PathBuf>,
    pub unit_toml: Option<PathBuf>,
    pub out: Option<PathBuf>,
    /// Use this unitd instead of building one (must be static).
    pub unitd: Option<PathBuf>,
    pub update_lock: bool,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options::default();
        let mut it = args.iter();
        while let Some(a) = it.next() {
            let mut value = || {
                it.next()
                    .map(PathBuf::from)
                    .with_context(|| format!("{a} needs a value"))
            };
            match a.as_str() {
                "--authorized-keys" => o.authorized_keys = Some(value()?),
                "--unit-toml" => o.unit_toml = Some(value()?),
                "--out" => o.out = Some(value()?),
                "--unitd" => o.unitd = Some(value()?),
                "--update-lock" => o.update_lock = true,
                other => bail!("image: unknown option {other}"),
            }
        }
        Ok(o)
    }
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = Options::parse(args)?;
    if opts.update_lock {
        return update_lock();
    }
    let t = Instant::now();
    let built = build(&opts, true)?;
    print_summary(&built);
    eprintln!("xtask image: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

pub fn print_summary(b: &ib::Built) {
    println!(
        "image      {} ({:.1} MiB)",
        b.image.display(),
        b.image_bytes as f64 / 1048576.0
    );
    println!("kernel     {} ({})", b.kernel.display(), b.kernel_version);
    println!(
        "initramfs  {} ({:.1} MiB, {} modules)",
        b.initrd.display(),
        b.initrd_bytes as f64 / 1048576.0,
        b.modules
    );
    println!(
        "write it:  dd if={} of=/dev/sdX bs=4M conv=fsync",
        b.image.display()
    );
}

/// Host programs the build runs, and the Debian package of each (the tidy test checks that
/// every program image-build runs is here).
pub const TOOLS: &[(&str, &str)] = &[
    ("apt-get", "apt"),
    ("apt-cache", "apt"),
    ("dpkg-deb", "dpkg"),
    ("depmod", "kmod"),
    ("mkfs.fat", "dosfstools"),
    ("mcopy", "mtools"),
    ("mkfs.ext4", "e2fsprogs"),
    ("strip", "binutils"),
    ("cpio", "cpio"),
];

pub fn ensure_tools() -> Result<()> {
    util::ensure_apt(TOOLS)
}

fn update_lock() -> Result<()> {
    ensure_tools()?;
    util::run(Command::new("apt-get").args(["update", "-qq"]))?;
    let cache = util::root().join("target/image-build/debs");
    let lock = ib::lock::update(&cache)?;
    lock.write(&ib::default_lock())?;
    for p in &lock.packages {
        println!("{:<32} {}", p.name, p.version);
    }
    println!(
        "pinned in {}: boot it (cargo xtask qemu), then commit it",
        ib::default_lock().display()
    );
    Ok(())
}

/// Builds copyunit-init and unitd statically for the image; returns their paths.
fn build_binaries(skip_unitd: bool) -> Result<(PathBuf, PathBuf)> {
    let root = util::root();
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(&root)
        .args([
            "build",
            "--release",
            "--target",
            TARGET,
            "-p",
            "copyunit-init",
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static");
    if !skip_unitd {
        c.args(["-p", "unitd"]);
    }
    util::run(&mut c).context("building the image's static binaries")?;
    let dir = root.join("target").join(TARGET).join("release");
    Ok((dir.join("copyunit-init"), dir.join("unitd")))
}

/// Builds (or, with `force` false, reuses when nothing changed) the image.
pub fn build(opts: &Options, force: bool) -> Result<ib::Built> {
    ensure_tools()?;
    let root = util::root();
    let (init, built_unitd) = build_binaries(opts.unitd.is_some())?;
    let unitd = opts.unitd.clone().unwrap_or(built_unitd);
    let out = opts
        .out
        .clone()
        .unwrap_or_else(|| root.join("target/unit.img"));
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(ib::DEFAULT_EPOCH);
    let inputs = ib::Inputs {
        lock: ib::default_lock(),
        cache: root.join("target/image-build/debs"),
        work: root.join("target/image-build/work"),
        init,
        unitd,
        authorized_keys: opts.authorized_keys.clone(),
        unit_toml: opts.unit_toml.clone(),
        out: out.clone(),
        epoch,
    };
    // The builder is an input too: this program holds image-build's code.
    let builder: Vec<PathBuf> = std::env::current_exe().into_iter().collect();
    let (built, reused) = ib::cache::build_cached(&inputs, &builder, force)?;
    if reused {
        eprintln!(
            "xtask: {} reused: built from the same inputs",
            out.display()
        );
    } else {
        eprintln!("xtask: assembled {}", out.display());
    }
    Ok(built)
}
