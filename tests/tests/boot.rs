//! Boot tests of the unit image (issue 6): build `unit.img`, boot it in QEMU (TCG) by direct
//! kernel boot and through firmware (SeaBIOS and OVMF), and drive the booted unit over SSH
//! through the forwarded port.
//!
//! The boots share one machine's two cores, so they run one at a time (`QEMU` lock). Waits
//! are for console markers; the time limits only give up on a hung VM.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use copyunit_image_build::qemu::{self, Boot, Machine, Serial, Spec, Vm};
use copyunit_tests::{Key, keygen, random_file, sha256sum, workspace_root};

/// Give up on a boot after this long (TCG on a loaded 2-core machine).
const BOOT_GIVE_UP: Duration = Duration::from_secs(600);
const STICK_BYTES: u64 = 64 << 20;

static QEMU: Mutex<()> = Mutex::new(());

struct Built {
    dir: PathBuf,
    image: PathBuf,
    kernel: PathBuf,
    initrd: PathBuf,
    key: Key,
}

/// Builds the image once for all tests, with a test key embedded.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = workspace_root();
        let dir = root.join("target/boot-test");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("target/boot-test");
        let key = keygen(&dir, "admin_key");
        let pubkey = dir.join("admin_key.pub");
        let image = dir.join("unit.img");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .args([
                "run",
                "--quiet",
                "-p",
                "xtask",
                "--",
                "image",
                "--authorized-keys",
            ])
            .arg(&pubkey)
            .arg("--out")
            .arg(&image)
            .status()
            .expect("cargo xtask image");
        assert!(status.success(), "cargo xtask image failed");
        let size = std::fs::metadata(&image).expect("unit.img").len();
        assert!(size <= 64 << 20, "unit.img is {size} bytes, over 64 MiB");
        Built {
            kernel: dir.join("unit-vmlinuz"),
            initrd: dir.join("unit-initrd.img"),
            dir,
            image,
            key,
        }
    })
}

/// One booted unit and how to talk to it.
struct Booted {
    vm: Vm,
    port: u16,
    key: PathBuf,
}

impl Booted {
    fn ssh_args(&self) -> Vec<String> {
        [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=30",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(["-i".to_string(), self.key.display().to_string()])
        .collect()
    }

    fn ssh(&self, command: &str) -> Output {
        Command::new("ssh")
            .args(self.ssh_args())
            .args(["-p", &self.port.to_string(), "admin@127.0.0.1", command])
            .output()
            .expect("ssh runs")
    }

    fn ok(&self, command: &str) -> String {
        let out = self.ssh(command);
        assert!(
            out.status.success(),
            "`{command}` failed: {}\n{}\nconsole:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.vm.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, command: &str) -> serde_json::Value {
        let text = self.ok(command);
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("`{command}` gave no JSON ({e}): {text}"))
    }

    fn sftp_put(&self, file: &Path) {
        let out = Command::new("sftp")
            .args(self.ssh_args())
            .args(["-P", &self.port.to_string(), "-b", "-", "admin@127.0.0.1"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                if let Some(mut i) = c.stdin.take() {
                    i.write_all(format!("put {}\n", file.display()).as_bytes())?;
                }
                c.wait_with_output()
            })
            .expect("sftp runs");
        assert!(
            out.status.success(),
            "sftp put failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Waits for the console's ready line, then for the SSH banner through the forward.
    fn wait_ready(&mut self) -> Duration {
        let t = self
            .vm
            .wait_for(qemu::READY_MARKER, BOOT_GIVE_UP)
            .expect("unit ready");
        for _ in 0..300 {
            if qemu::ssh_banner(self.port) {
                return t;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "console says ready but no SSH banner on port {}:\n{}",
            self.port,
            self.vm.log()
        );
    }

    fn images(&self) -> Vec<(String, String)> {
        let v = self.json("images --json");
        let list = v
            .as_array()
            .cloned()
            .or_else(|| v.get("images").and_then(|i| i.as_array()).cloned());
        list.unwrap_or_default()
            .iter()
            .map(|i| {
                (
                    i["name"].as_str().unwrap_or_default().to_string(),
                    i["sha256"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// Asks for power-off over SSH and waits for QEMU to exit by itself.
    fn poweroff(mut self) {
        // The connection may drop as the unit goes down: the exit is what counts.
        let _ = self.ssh("poweroff");
        self.vm
            .wait_exit(Duration::from_secs(120))
            .expect("QEMU exits after poweroff");
        assert!(
            self.vm.log().contains("copyunit: powering off now"),
            "{}",
            self.vm.log()
        );
    }
}

fn boot(
    name: &str,
    boot: Boot,
    machine: Machine,
    sticks: &[PathBuf],
    iso: Option<PathBuf>,
    blank_store: bool,
) -> Booted {
    // Direct kernel boot needs no boot stick: without one, every USB stick is a target.
    let with_image = !matches!(boot, Boot::Direct { .. });
    let b = built();
    let store = b.dir.join(format!("{name}-store.img"));
    if blank_store {
        qemu::make_stick(&store, 512 << 20).expect("blank store disk");
    } else {
        qemu::make_store(&store, 512 << 20).expect("store disk");
    }
    let port = qemu::free_port().expect("port");
    let spec = Spec {
        boot,
        machine,
        image: with_image.then(|| b.image.clone()),
        image_snapshot: true,
        ssh_port: port,
        store: Some(store),
        sticks: sticks.to_vec(),
        iso,
        memory_mib: 1024,
        serial: Serial::File(b.dir.join(format!("{name}.console.log"))),
        work: b.dir.join(name),
    };
    let vm = Vm::start(&spec).expect("QEMU starts");
    Booted {
        vm,
        port,
        key: b.key.private.clone(),
    }
}

fn direct(b: &Built) -> Boot {
    Boot::Direct {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        // The store disk is blank: PID 1 formats it, confirmed on the command line.
        cmdline: format!("{} copyunit.format=yes", copyunit_image_build::CMDLINE),
    }
}

/// Direct kernel boot with two USB sticks and a CD: upload, list, copy, reboot keeps the image,
/// power-off over SSH, sticks hold the image.
#[test]
fn direct_boot_upload_copy_reboot_poweroff() {
    let b = built();
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let sticks: Vec<PathBuf> = (0..2)
        .map(|i| {
            let p = b.dir.join(format!("direct-stick{i}.img"));
            qemu::make_stick(&p, STICK_BYTES).expect("stick");
            p
        })
        .collect();
    // Any file is a disc to QEMU's CD drive: the unit must see a drive with media.
    let iso = random_file(&b.dir, "disc.iso", 2 << 20);
    let mut unit = boot("direct", direct(b), Machine::Q35, &sticks, Some(iso), true);
    let t = unit.wait_ready();
    eprintln!(
        "direct boot: ready {:.1} s after QEMU started",
        t.as_secs_f64()
    );
    let console = unit.vm.log();
    assert!(
        console.contains("image store: /dev/sda (0.5 GiB) formatted and mounted"),
        "blank store disk not formatted:\n{console}"
    );
    assert!(
        console.contains("eth0: 10.0.2.15/24 (DHCP)"),
        "no DHCP lease:\n{console}"
    );

    let status = unit.json("status --json");
    assert!(status.is_object(), "{status}");

    let img = random_file(&b.dir, "boot-test.img", 8 << 20);
    let hash = sha256sum(&img);
    unit.sftp_put(&img);
    let listed = unit.images();
    assert!(
        listed.contains(&("boot-test.img".to_string(), hash.clone())),
        "{listed:?}"
    );

    let drives = unit.json("drives --json");
    let list = drives.as_array().cloned().unwrap_or_default();
    let usb: Vec<String> = list
        .iter()
        .filter(|d| d["kind"] == "usb")
        .filter_map(|d| d["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(usb.len(), 2, "two USB sticks expected: {drives}");
    let cd = list
        .iter()
        .find(|d| d["kind"] == "optical")
        .unwrap_or_else(|| panic!("no CD drive: {drives}"));
    assert_eq!(
        cd["role"], "source",
        "a read-only CD drive is the source drive: {cd}"
    );
    assert!(
        cd["media"].is_object(),
        "the disc is seen through MMC: {cd}"
    );
    assert!(
        list.iter()
            .all(|d| !(d["name"] == "sda" && d["eligible"] == true)),
        "the store disk is offered as a target: {drives}"
    );
    // The source disc straight to the sticks through SG_IO (read once,
    // written to both, read back and compared), then the image over it.
    let cd_name = cd["name"].as_str().expect("cd name").to_string();
    unit.ok(&format!("copy {cd_name} {} --wait", usb.join(" ")));
    unit.ok(&format!("copy boot-test.img {} --wait", usb.join(" ")));

    // The source disc, ripped through SG_IO into the store (patent: copy
    // from the unit's own source disc).
    unit.ok(&format!("read {cd_name} disc.iso --wait"));
    let listed = unit.images();
    assert!(
        listed.contains(&("disc.iso".to_string(), sha256sum(&b.dir.join("disc.iso")))),
        "the ripped disc has the ISO's SHA-256: {listed:?}"
    );

    // Reboot: PID 1 stops unitd, unmounts the store, reboots; the image is still there.
    let _ = unit.ssh("reboot");
    unit.vm
        .wait_for("copyunit: rebooting now", Duration::from_secs(120))
        .expect("reboot");
    unit.wait_ready();
    let listed = unit.images();
    assert!(
        listed.contains(&("boot-test.img".to_string(), hash.clone())),
        "image lost across reboot: {listed:?}"
    );

    unit.poweroff();
    let want = std::fs::read(&img).expect("image");
    for s in &sticks {
        let got = std::fs::read(s).expect("stick");
        assert_eq!(
            &got[..want.len()],
            &want[..],
            "{} differs from the image",
            s.display()
        );
    }
}

/// The stick the unit booted from is listed but never eligible as a copy target.
fn boot_stick_not_offered(unit: &Booted) {
    let help = unit.ok("help");
    if !help
        .lines()
        .any(|l| l.split_whitespace().next() == Some("drives"))
    {
        eprintln!("PENDING: unitd has no `drives` command yet; boot stick exclusion not checked");
        return;
    }
    let drives = unit.json("drives --json");
    let list = drives.as_array().cloned().unwrap_or_default();
    let boot: Vec<&serde_json::Value> = list
        .iter()
        .filter(|d| d["serial"] == "COPYUNITBOOT")
        .collect();
    assert_eq!(boot.len(), 1, "boot stick not listed: {drives}");
    assert_eq!(
        boot[0]["eligible"], false,
        "the boot stick is offered as a target: {drives}"
    );
    let store: Vec<&serde_json::Value> = list.iter().filter(|d| d["role"] == "store").collect();
    assert!(
        store.iter().all(|d| d["eligible"] == false),
        "the store is offered as a target: {drives}"
    );
}

/// The image boots through SeaBIOS (syslinux) from a USB stick.
#[test]
fn bios_boot_from_the_image() {
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let mut unit = boot("bios", Boot::Bios, Machine::Q35, &[], None, false);
    let t = unit.wait_ready();
    eprintln!(
        "BIOS boot: ready {:.1} s after QEMU started",
        t.as_secs_f64()
    );
    let console = unit.vm.log();
    assert!(
        console.contains("boot partition sd"),
        "boot partition not mounted:\n{console}"
    );
    assert!(unit.json("status --json").is_object());
    boot_stick_not_offered(&unit);
    unit.poweroff();
}

/// The image boots through OVMF (systemd-boot) from a USB stick.
#[test]
fn uefi_boot_from_the_image() {
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let mut unit = boot("uefi", Boot::Uefi, Machine::Q35, &[], None, false);
    let t = unit.wait_ready();
    eprintln!(
        "UEFI boot: ready {:.1} s after QEMU started",
        t.as_secs_f64()
    );
    let console = unit.vm.log();
    assert!(
        console.contains("boot partition sd"),
        "boot partition not mounted:\n{console}"
    );
    assert!(unit.json("status --json").is_object());
    boot_stick_not_offered(&unit);
    unit.poweroff();
}

/// The image boots with Secure Boot on (OVMF with Microsoft's keys): Microsoft-signed shim,
/// Debian-signed grub and kernel, Debian-signed modules under lockdown.
#[test]
fn secure_boot_from_the_image() {
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let mut unit = boot(
        "secureboot",
        Boot::UefiSecureBoot,
        Machine::Q35,
        &[],
        None,
        false,
    );
    let t = unit.wait_ready();
    eprintln!(
        "Secure Boot: ready {:.1} s after QEMU started",
        t.as_secs_f64()
    );
    let console = unit.vm.log();
    assert!(
        console.contains(qemu::SECURE_BOOT_MARKER),
        "Secure Boot was not on:\n{console}"
    );
    assert!(
        console.contains("image store: /dev/sda"),
        "store not mounted:\n{console}"
    );
    assert!(unit.json("status --json").is_object());
    unit.poweroff();
}

/// True when the console carries unitd's debug lines (tracing's ` DEBUG ` level field).
fn has_debug_lines(console: &str) -> bool {
    console.lines().any(|l| l.contains(" DEBUG "))
}

/// Issue 14: on QEMU's default `pc` machine (IDE disks, e1000, no virtio-rng, a CPU without
/// RDRAND) unitd blocked before generating its host key and the console showed nothing after
/// "unitd started". It must come up there, saying so if it has to wait for entropy, and the
/// seed it saves on the store must make the next boot credit it. Also issue 15: with nothing
/// asked for, the serial line carries no debug lines.
#[test]
fn unit_without_entropy_source_comes_up_on_pc_machine() {
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let mut unit = boot("pc", Boot::Bios, Machine::PcNoRng, &[], None, false);
    let t = unit.wait_ready();
    eprintln!(
        "pc machine, no RNG: ready {:.1} s after QEMU started",
        t.as_secs_f64()
    );
    let console = unit.vm.log();
    assert!(
        console.contains("eth0: 10.0.2.15/24 (DHCP)"),
        "no DHCP lease on the e1000:\n{console}"
    );
    assert!(
        console.contains("image store: /dev/sd"),
        "the IDE store is not mounted:\n{console}"
    );
    assert!(
        !console.contains("random seed from the store credited"),
        "a fresh store has no seed to credit:\n{console}"
    );
    let status = unit.json("status --json");
    assert!(status.is_object(), "{status}");
    assert!(
        !has_debug_lines(&console),
        "debug lines on the serial line by default:\n{console}"
    );

    // The seed saved at this boot is credited at the next one, which then needs no waiting.
    let _ = unit.ssh("reboot");
    unit.vm
        .wait_for("copyunit: rebooting now", Duration::from_secs(120))
        .expect("reboot");
    unit.vm
        .wait_for("random seed from the store credited", BOOT_GIVE_UP)
        .expect("the seed saved at the first boot is credited at the second");
    let t2 = unit.wait_ready();
    eprintln!(
        "pc machine, second boot: ready at {:.1} s",
        t2.as_secs_f64()
    );
    let second = unit.vm.log();
    let after_reboot = &second[second.rfind("copyunit: rebooting now").unwrap_or(0)..];
    assert!(
        !after_reboot.contains("waiting for entropy"),
        "the credited seed should make waiting unnecessary:\n{after_reboot}"
    );
    assert!(unit.json("status --json").is_object());
    unit.poweroff();
}

/// Issue 15: `copyunit.log=debug` on the boot line turns unitd's debug lines on.
#[test]
fn appliance_logs_debug_when_the_boot_line_asks() {
    let b = built();
    let _one = QEMU.lock().unwrap_or_else(|p| p.into_inner());
    let boot_debug = Boot::Direct {
        kernel: b.kernel.clone(),
        initrd: b.initrd.clone(),
        cmdline: format!(
            "{} copyunit.format=yes copyunit.log=debug",
            copyunit_image_build::CMDLINE
        ),
    };
    // A CD drive: its first probe meets a unit attention, which unitd logs at debug.
    let iso = random_file(&b.dir, "debuglog.iso", 1 << 20);
    let mut unit = boot("debuglog", boot_debug, Machine::Q35, &[], Some(iso), true);
    unit.wait_ready();
    // A request logs at debug in unitd; give its line a moment to reach the console.
    assert!(unit.json("status --json").is_object());
    let mut console = unit.vm.log();
    for _ in 0..100 {
        if has_debug_lines(&console) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
        console = unit.vm.log();
    }
    assert!(
        has_debug_lines(&console),
        "copyunit.log=debug gave no debug lines:\n{console}"
    );
    unit.poweroff();
}
