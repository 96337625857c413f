//! Booting the unit image in QEMU (always `-accel tcg`: KVM is not usable on the build
//! machines): for `cargo xtask qemu` and the boot tests.
//!
//! The VM is a q35 PC: AHCI with a store disk and a CD drive, an xHCI controller with USB
//! sticks (the boot stick first, on firmware boots), one virtio NIC behind user networking
//! with a host port forwarded to the unit's SSH port, and virtio-rng. Or, with
//! [`Machine::PcNoRng`], QEMU's default `pc`: the image and the store on IDE, an e1000 NIC, no
//! random number device and a CPU without RDRAND, like an old spare PC.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::cmd;
use crate::error::{Error, Result, io};

/// The line PID 1 prints once unitd listens for SSH.
pub const READY_MARKER: &str = "copyunit: ssh service ready on port 22";
/// The line PID 1 prints when it starts unitd (before the SSH server listens).
pub const UNITD_STARTED_MARKER: &str = "copyunit: unitd started";

pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";
/// OVMF built for Secure Boot (needs SMM), and variables with Microsoft's keys enrolled.
pub const OVMF_CODE_SECURE: &str = "/usr/share/OVMF/OVMF_CODE_4M.ms.fd";
pub const OVMF_VARS_SECURE: &str = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd";
/// What the kernel's EFI stub prints when the firmware booted it with Secure Boot on.
pub const SECURE_BOOT_MARKER: &str = "EFI stub: UEFI Secure Boot is enabled.";
/// The label PID 1 looks for on the store.
pub const STORE_LABEL: &str = "COPYUNIT-STORE";

/// How the VM gets to the kernel.
#[derive(Debug, Clone)]
pub enum Boot {
    /// `-kernel/-initrd`: fast, skips the firmware and the boot loaders.
    Direct {
        kernel: PathBuf,
        initrd: PathBuf,
        cmdline: String,
    },
    /// SeaBIOS from the boot stick (syslinux).
    Bios,
    /// OVMF from the boot stick (shim, grub), Secure Boot off.
    Uefi,
    /// OVMF with Microsoft's keys enrolled and Secure Boot on.
    UefiSecureBoot,
}

/// The PC the VM is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Machine {
    /// q35: AHCI, xHCI, a virtio NIC and virtio-rng.
    #[default]
    Q35,
    /// QEMU's default `pc` (i440FX, what `qemu-system-x86_64 unit.img` boots): the boot image
    /// and the store on IDE, an e1000 NIC, no virtio-rng, `-cpu qemu64,-rdrand`: no entropy
    /// source the kernel trusts, like an old PC.
    PcNoRng,
}

/// Where the serial console goes.
#[derive(Debug, Clone)]
pub enum Serial {
    /// The terminal (interactive `cargo xtask qemu`; Ctrl-A X quits).
    Stdio,
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub boot: Boot,
    pub machine: Machine,
    /// The unit image as a USB stick (needed for Bios/Uefi; optional for Direct).
    pub image: Option<PathBuf>,
    /// Throw away writes to the boot stick when QEMU exits (they survive guest reboots).
    pub image_snapshot: bool,
    pub ssh_port: u16,
    pub store: Option<PathBuf>,
    pub sticks: Vec<PathBuf>,
    pub iso: Option<PathBuf>,
    pub memory_mib: u32,
    pub serial: Serial,
    /// Scratch folder (the UEFI variable store copy).
    pub work: PathBuf,
}

/// The full QEMU command for `spec`.
pub fn command(spec: &Spec) -> Result<Command> {
    let mut c = Command::new("qemu-system-x86_64");
    let pc = spec.machine == Machine::PcNoRng;
    c.args([
        "-accel",
        "tcg",
        "-machine",
        if pc { "pc" } else { "q35" },
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
    ]);
    if pc {
        c.args(["-cpu", "qemu64,-rdrand"]);
    }
    c.args([
        "-m",
        &spec.memory_mib.to_string(),
        "-vga",
        "std",
        "-display",
        "none",
    ]);
    match &spec.serial {
        Serial::Stdio => c.args(["-serial", "mon:stdio"]),
        Serial::File(p) => c.arg("-serial").arg(format!("file:{}", p.display())),
    };
    c.args([
        "-netdev",
        &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22", spec.ssh_port),
    ]);
    if pc {
        c.args(["-device", "e1000,netdev=net0"]);
    } else {
        c.args(["-device", "virtio-net-pci,netdev=net0"]);
        // Entropy for the unit's SSH host key at once (PcNoRng shows how it does without).
        c.args(["-device", "virtio-rng-pci"]);
    }
    c.args(["-device", "qemu-xhci,id=xhci"]);
    match &spec.boot {
        Boot::Direct {
            kernel,
            initrd,
            cmdline,
        } => {
            c.arg("-kernel")
                .arg(kernel)
                .arg("-initrd")
                .arg(initrd)
                .args(["-append", cmdline]);
        }
        Boot::Bios => {}
        Boot::Uefi | Boot::UefiSecureBoot => {
            let secure = matches!(spec.boot, Boot::UefiSecureBoot);
            let (code, vars_src) = if secure {
                (OVMF_CODE_SECURE, OVMF_VARS_SECURE)
            } else {
                (OVMF_CODE, OVMF_VARS)
            };
            std::fs::create_dir_all(&spec.work).map_err(io("creating", &spec.work))?;
            let vars = spec.work.join("OVMF_VARS.fd");
            std::fs::copy(vars_src, &vars).map_err(io("copying", vars_src))?;
            if secure {
                // The Secure Boot build of OVMF keeps its variables safe in SMM.
                c.args([
                    "-machine",
                    "smm=on",
                    "-global",
                    "driver=cfi.pflash01,property=secure,value=on",
                ]);
            }
            c.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={code}"
            ));
            c.arg("-drive").arg(format!(
                "if=pflash,format=raw,unit=1,file={}",
                vars.display()
            ));
        }
    }
    if let Some(img) = &spec.image {
        let snap = if spec.image_snapshot {
            ",snapshot=on"
        } else {
            ""
        };
        c.arg("-drive").arg(format!(
            "if=none,id=bootstick,format=raw,file={}{snap}",
            img.display()
        ));
        // -kernel claims boot index 0 itself.
        let index = if matches!(spec.boot, Boot::Direct { .. }) {
            ""
        } else {
            ",bootindex=0"
        };
        if pc {
            // The image as the first IDE disk, as `qemu-system-x86_64 unit.img` attaches it.
            c.arg("-device").arg(format!(
                "ide-hd,drive=bootstick,bus=ide.0,unit=0,serial=COPYUNITBOOT{index}"
            ));
        } else {
            c.arg("-device").arg(format!(
                "usb-storage,bus=xhci.0,drive=bootstick,serial=COPYUNITBOOT{index}"
            ));
        }
    } else if !matches!(spec.boot, Boot::Direct { .. }) {
        return Err(Error::Layout(
            "a firmware boot needs the unit image as its boot disk".into(),
        ));
    }
    if let Some(store) = &spec.store {
        c.arg("-drive").arg(format!(
            "if=none,id=store,format=raw,file={}",
            store.display()
        ));
        // On `pc` the store is the second disk of the first IDE channel.
        c.args([
            "-device",
            if pc {
                "ide-hd,drive=store,bus=ide.0,unit=1,serial=COPYUNITSTORE"
            } else {
                "ide-hd,drive=store,bus=ide.0,serial=COPYUNITSTORE"
            },
        ]);
    }
    if let Some(iso) = &spec.iso {
        c.arg("-drive").arg(format!(
            "if=none,id=cd,format=raw,media=cdrom,readonly=on,file={}",
            iso.display()
        ));
        c.args(["-device", "ide-cd,drive=cd,bus=ide.1"]);
    }
    for (i, stick) in spec.sticks.iter().enumerate() {
        c.arg("-drive").arg(format!(
            "if=none,id=stick{i},format=raw,file={}",
            stick.display()
        ));
        c.args([
            "-device",
            &format!("usb-storage,bus=xhci.0,drive=stick{i},serial=STICK{i}"),
        ]);
    }
    Ok(c)
}

/// A sparse file formatted ext4 and labelled as the unit's image store.
pub fn make_store(path: &Path, bytes: u64) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io("creating", p))?;
    }
    std::fs::File::create(path)
        .and_then(|f| f.set_len(bytes))
        .map_err(io("creating", path))?;
    let mkfs = ["/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("mkfs.ext4");
    cmd::run(
        Command::new(mkfs)
            .args(["-q", "-F", "-L", STORE_LABEL])
            .arg(path),
    )
    .map(|_| ())
}

/// A zero-filled sparse file: a blank USB stick.
pub fn make_stick(path: &Path, bytes: u64) -> Result<()> {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).map_err(io("creating", p))?;
    }
    std::fs::File::create(path)
        .and_then(|f| f.set_len(bytes))
        .map_err(io("creating", path))
}

/// A free TCP port on 127.0.0.1 for the SSH forward.
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io("binding", "127.0.0.1:0"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(io("reading", "local address"))
}

/// True when an SSH server answers on 127.0.0.1:`port` with its banner.
pub fn ssh_banner(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&(Ipv4Addr::LOCALHOST, port).into(), Duration::from_secs(2))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = [0u8; 8];
    s.read_exact(&mut buf).is_ok() && buf.starts_with(b"SSH-")
}

/// A running VM whose serial console goes to a file. Killed when dropped.
pub struct Vm {
    child: Child,
    serial_log: PathBuf,
    started: Instant,
    /// How much of the log `wait_for` has consumed: markers are searched after it.
    seen: usize,
}

impl Vm {
    /// Starts QEMU; `spec.serial` must be a file.
    pub fn start(spec: &Spec) -> Result<Vm> {
        let Serial::File(log) = &spec.serial else {
            return Err(Error::Layout(
                "Vm::start needs the serial console in a file".into(),
            ));
        };
        let _ = std::fs::remove_file(log);
        std::fs::write(log, b"").map_err(io("creating", log))?;
        let mut c = command(spec)?;
        c.stdin(Stdio::null()).stdout(Stdio::null());
        let child = c.spawn().map_err(|source| Error::Spawn {
            cmd: format!("{c:?}"),
            source,
        })?;
        Ok(Vm {
            child,
            serial_log: log.clone(),
            started: Instant::now(),
            seen: 0,
        })
    }

    /// The serial console so far.
    pub fn log(&self) -> String {
        std::fs::read(&self.serial_log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Time since QEMU started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `marker` appears on the console after what earlier waits consumed;
    /// returns the time since QEMU started. Fails when QEMU exits or `give_up` passes.
    pub fn wait_for(&mut self, marker: &str, give_up: Duration) -> Result<Duration> {
        let deadline = Instant::now() + give_up;
        loop {
            let log = self.log();
            if let Some(i) = log.get(self.seen..).and_then(|rest| rest.find(marker)) {
                self.seen += i + marker.len();
                return Ok(self.started.elapsed());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(Error::Layout(format!(
                    "QEMU exited ({status}) before {marker:?} appeared; console:\n{}",
                    tail(&log)
                )));
            }
            if Instant::now() >= deadline {
                return Err(Error::Layout(format!(
                    "{marker:?} did not appear within {} s; console:\n{}",
                    give_up.as_secs(),
                    tail(&log)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for QEMU to exit by itself (the guest powered off).
    pub fn wait_exit(&mut self, give_up: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + give_up;
        loop {
            if let Some(status) = self.child.try_wait().map_err(io("waiting for", "qemu"))? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(Error::Layout(format!(
                    "QEMU still running {} s after power-off was asked; console:\n{}",
                    give_up.as_secs(),
                    tail(&self.log())
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The last 60 lines of a console log, for error messages.
fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}
