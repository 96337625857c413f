//! `cargo xtask qemu [--sticks N] [--port P] [--iso FILE] [--uefi|--secure-boot|--direct]
//! [--pc] [--authorized-keys FILE]`:
//! boots the unit image in QEMU (TCG) with a store disk, USB sticks and a CD, and prints how to
//! reach it. `cargo xtask qemu --bench` measures boot times into BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use copyunit_image_build::qemu::{self, Boot, Machine, Serial, Spec};

use crate::{image, util};

struct Options {
    sticks: usize,
    port: u16,
    iso: Option<PathBuf>,
    boot: &'static str,
    machine: Machine,
    image: image::Options,
    bench: bool,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options {
        sticks: 2,
        port: 2222,
        iso: None,
        boot: "bios",
        machine: Machine::Q35,
        image: image::Options::default(),
        bench: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = || {
            it.next()
                .cloned()
                .with_context(|| format!("{a} needs a value"))
        };
        match a.as_str() {
            "--sticks" => o.sticks = value()?.parse().context("--sticks takes a number")?,
            "--port" => o.port = value()?.parse().context("--port takes a port number")?,
            "--iso" => o.iso = Some(value()?.into()),
            "--authorized-keys" => o.image.authorized_keys = Some(value()?.into()),
            "--unitd" => o.image.unitd = Some(value()?.into()),
            "--uefi" => o.boot = "uefi",
            "--secure-boot" => o.boot = "secure-boot",
            "--bios" => o.boot = "bios",
            "--direct" => o.boot = "direct",
            "--pc" => o.machine = Machine::PcNoRng,
            "--bench" => o.bench = true,
            other => bail!("qemu: unknown option {other}"),
        }
    }
    Ok(o)
}

/// What `cargo xtask qemu` runs besides the image build's [`image::TOOLS`]: QEMU, the demo
/// disc's maker, the client it prints (the tidy test checks this list against the code).
pub const TOOLS: &[(&str, &str)] = &[
    ("qemu-system-x86_64", "qemu-system-x86"),
    ("xorriso", "xorriso"),
    ("ssh", "openssh-client"),
];

/// QEMU, its firmware, and the tools for the virtual disks.
pub fn ensure_tools() -> Result<()> {
    image::ensure_tools()?;
    util::ensure_apt(TOOLS)?;
    util::ensure_apt_files(&[(qemu::OVMF_CODE, "ovmf")])
}

/// A small ISO 9660 disc for the CD drive when none is given.
pub fn demo_iso(dir: &Path) -> Result<PathBuf> {
    let iso = dir.join("demo.iso");
    if iso.exists() {
        return Ok(iso);
    }
    let content = dir.join("demo-iso");
    std::fs::create_dir_all(&content)?;
    std::fs::write(
        content.join("README.TXT"),
        "A demo source disc for copyunit under QEMU.\n",
    )?;
    std::fs::write(content.join("DATA.BIN"), vec![0x5au8; 1 << 20])?;
    util::run(
        Command::new("xorriso")
            .args(["-as", "mkisofs", "-quiet", "-V", "COPYUNIT_DEMO", "-o"])
            .arg(&iso)
            .arg(&content),
    )?;
    Ok(iso)
}

/// Copies the built image to the VM's writable copy `to` unless `to` was copied from an image
/// built from the same inputs (the unit's own edits to its boot partition then survive a
/// restart). Judged by content (`Built::inputs_key`, recorded beside the copy), never by mtime.
fn refresh_copy(built: &copyunit_image_build::Built, to: &Path) -> Result<()> {
    let stamp = copyunit_image_build::cache::stamp_path(to);
    let copied_from = std::fs::read_to_string(&stamp).unwrap_or_default();
    if to.exists() && !built.inputs_key.is_empty() && copied_from.trim() == built.inputs_key {
        return Ok(());
    }
    let _ = std::fs::remove_file(&stamp);
    std::fs::copy(&built.image, to)
        .with_context(|| format!("copying {} to {}", built.image.display(), to.display()))?;
    std::fs::write(&stamp, format!("{}\n", built.inputs_key))
        .with_context(|| format!("writing {}", stamp.display()))?;
    Ok(())
}

pub fn run(args: &[String]) -> Result<()> {
    let opts = parse(args)?;
    ensure_tools()?;
    if opts.bench {
        return bench(&opts);
    }
    let built = image::build(&opts.image, false)?;
    let dir = util::root().join("target/qemu");
    std::fs::create_dir_all(&dir)?;
    let boot_img = dir.join("boot.img");
    refresh_copy(&built, &boot_img)?;
    let store = dir.join("store.img");
    if !store.exists() {
        qemu::make_store(&store, 8 << 30)?;
    }
    let mut sticks = Vec::new();
    for i in 0..opts.sticks {
        let s = dir.join(format!("stick{i}.img"));
        if !s.exists() {
            qemu::make_stick(&s, 1 << 30)?;
        }
        sticks.push(s);
    }
    let iso = match &opts.iso {
        Some(i) => i.clone(),
        None => demo_iso(&dir)?,
    };
    let spec = Spec {
        boot: boot_of(opts.boot, &built),
        machine: opts.machine,
        image: Some(boot_img),
        image_snapshot: false,
        ssh_port: opts.port,
        store: Some(store.clone()),
        sticks: sticks.clone(),
        iso: Some(iso.clone()),
        memory_mib: 2048,
        serial: Serial::Stdio,
        work: dir.clone(),
    };
    let p = opts.port;
    let known = dir.join("known_hosts");
    let o = format!(
        "-o UserKnownHostsFile={} -o StrictHostKeyChecking=accept-new",
        known.display()
    );
    println!(
        "\ncopyunit in QEMU ({} boot, TCG): store {}, {} USB stick(s) in {}, CD {}",
        opts.boot,
        store.display(),
        sticks.len(),
        dir.display(),
        iso.display()
    );
    println!("when the console says \"ssh service ready\":");
    println!("  dashboard:  ssh -t -p {p} {o} admin@127.0.0.1");
    println!("  upload:     sftp -P {p} {o} admin@127.0.0.1    (then: put IMAGE)");
    println!("  drives:     ssh -p {p} {o} admin@127.0.0.1 drives");
    println!("  copy:       ssh -p {p} {o} admin@127.0.0.1 copy IMAGE usb0 usb1 --wait");
    println!("  power off:  ssh -p {p} {o} admin@127.0.0.1 poweroff");
    println!(
        "no key embedded (--authorized-keys FILE)? the console shows a one-time pairing code."
    );
    println!("quit QEMU: Ctrl-A then X\n");
    util::run(&mut qemu::command(&spec)?)
}

fn boot_of(kind: &str, built: &copyunit_image_build::Built) -> Boot {
    match kind {
        "direct" => Boot::Direct {
            kernel: built.kernel.clone(),
            initrd: built.initrd.clone(),
            cmdline: built.cmdline.clone(),
        },
        "uefi" => Boot::Uefi,
        "secure-boot" => Boot::UefiSecureBoot,
        _ => Boot::Bios,
    }
}

/// Boots each way once and records QEMU-start-to-SSH-ready times, image and initramfs sizes.
fn bench(opts: &Options) -> Result<()> {
    let built = image::build(&opts.image, false)?;
    let dir = util::root().join("target/qemu-bench");
    std::fs::create_dir_all(&dir)?;
    let store = dir.join("store.img");
    qemu::make_store(&store, 1 << 30)?;
    let mut rows = Vec::new();
    for kind in ["direct", "bios", "uefi", "secure-boot"] {
        let port = qemu::free_port()?;
        let spec = Spec {
            boot: boot_of(kind, &built),
            machine: Machine::Q35,
            image: Some(built.image.clone()),
            image_snapshot: true,
            ssh_port: port,
            store: Some(store.clone()),
            sticks: Vec::new(),
            iso: None,
            memory_mib: 1024,
            serial: Serial::File(dir.join(format!("{kind}.log"))),
            work: dir.clone(),
        };
        let mut vm = qemu::Vm::start(&spec)?;
        let ready = vm.wait_for(qemu::READY_MARKER, Duration::from_secs(300))?;
        while !qemu::ssh_banner(port) {
            if vm.elapsed() > ready + Duration::from_secs(60) {
                bail!("{kind}: the console says ready but no SSH banner on port {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let banner = vm.elapsed();
        println!(
            "{kind:<7} ready {:.1} s, SSH banner {:.1} s",
            ready.as_secs_f64(),
            banner.as_secs_f64()
        );
        rows.push((kind, ready, banner));
    }
    let date = String::from_utf8(
        Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()?
            .stdout,
    )?;
    let mut md = format!(
        "\n## Boot (unit image under QEMU TCG, 1 vCPU) — {}\n\nQEMU start to the console's \"ssh service ready\" and to the first SSH banner on the forwarded port.\n\n| boot | ready | SSH banner | target |\n| --- | --- | --- | --- |\n",
        date.trim()
    );
    for (kind, ready, banner) in &rows {
        let target = if *kind == "direct" {
            "<= 8 s"
        } else {
            "<= 15 s"
        };
        md.push_str(&format!(
            "| {kind} | {:.1} s | {:.1} s | {target} |\n",
            ready.as_secs_f64(),
            banner.as_secs_f64()
        ));
    }
    md.push_str(&format!(
        "\nImage `target/unit.img`: {:.1} MiB (limit 64 MiB). Initramfs (zstd -19): {:.2} MiB. Measured with `cargo xtask qemu --bench` on the 2-core build machine, shared with other builds.\n",
        built.image_bytes as f64 / 1048576.0,
        built.initrd_bytes as f64 / 1048576.0
    ));
    let path = util::root().join("BENCHMARKS.md");
    let mut text = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
    text.push_str(&md);
    std::fs::write(&path, text)?;
    print!("{md}");
    Ok(())
}
