//! copyunit-init: PID 1 of the unit image.
//!
//! Boot order: mounts -> modules for every device present (and, from then on, for every
//! hotplugged one) -> boot partition (unit.toml, authorized_keys) -> hostname -> network on
//! every wired NIC -> image store -> unitd, supervised. SIGUSR2 powers off, SIGTERM/SIGINT
//! reboot, SIGUSR1 halts (busybox's convention, which unitd's `poweroff`/`reboot` use).

#![deny(unsafe_code)]

mod config;
mod console;
mod dhcp;
mod entropy;
mod glob;
mod modules;
mod net;
mod store;
mod supervise;
/// The only `unsafe` in init (ARCHITECTURE.md): each syscall wrapped once.
#[allow(unsafe_code)]
mod sys;
mod uevent;

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::reboot::{RebootMode, reboot};
use nix::sys::signal::{SigSet, Signal};

use config::Config;

const STORE_DIR: &str = "/store";
const BOOT_DIR: &str = "/boot";
const SSH_PORT: u16 = 22;
/// Modules with no device alias needed before unitd starts: the store's and the boot
/// partition's filesystems with their codepages and checksums, and the disk drivers.
const EARLY: &[&str] = &[
    "crc32c_generic",
    "ext4",
    "vfat",
    "nls_cp437",
    "nls_utf8",
    "nls_iso8859_1",
    "nls_ascii",
    "sd_mod",
    "usb_storage",
];
/// Modules loaded while unitd starts: discs, SCSI generic (optical drives), loop, exFAT.
const LATE: &[&str] = &[
    "crc32c_intel",
    "exfat",
    "isofs",
    "sr_mod",
    "sg",
    "loop",
    "uas",
    "af_packet",
];

/// Addresses the unit can be reached at, for the console banner.
static ADDRESSES: Mutex<Vec<(String, Ipv4Addr)>> = Mutex::new(Vec::new());

fn main() {
    // Block the signals PID 1 handles before any thread exists, so every thread inherits the
    // mask and they stay queued for `sigtimedwait` in the main loop (a PID 1 signal with the
    // default action would otherwise be dropped by the kernel).
    let signals = handled_signals();
    if let Err(e) = signals.thread_block() {
        eprintln!("copyunit-init: cannot block signals: {e}");
    }
    mount_basics();
    console::open();
    say!("copyunit {} starting", env!("CARGO_PKG_VERSION"));
    let mut unitd = boot();
    main_loop(&signals, &mut unitd);
}

fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        set.add(s);
    }
    set
}

fn mount_basics() {
    let m = |src: &str, dst: &str, fs: &str, flags: MsFlags, data: Option<&str>| {
        let _ = std::fs::create_dir_all(dst);
        if let Err(e) = mount(Some(src), dst, Some(fs), flags, data) {
            // EBUSY: already mounted (init restarted by hand during development).
            if e != nix::errno::Errno::EBUSY {
                eprintln!("copyunit-init: mount {fs} at {dst}: {e}");
            }
        }
    };
    let nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    m("proc", "/proc", "proc", nodev, None);
    m("sysfs", "/sys", "sysfs", nodev, None);
    m(
        "devtmpfs",
        "/dev",
        "devtmpfs",
        MsFlags::MS_NOSUID,
        Some("mode=0755"),
    );
    m(
        "devpts",
        "/dev/pts",
        "devpts",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        Some("mode=0620,ptmxmode=0666"),
    );
    m(
        "tmpfs",
        "/dev/shm",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    );
    m(
        "tmpfs",
        "/run",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    );
    m(
        "tmpfs",
        "/tmp",
        "tmpfs",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    );
}

/// Everything from modules to unitd's first start.
fn boot() -> supervise::Unitd {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let arg = |key: &str| {
        cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .map(str::to_string)
    };
    let release = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    let index = match modules::Index::load(&Path::new("/lib/modules").join(&release)) {
        Ok(i) => Arc::new(Mutex::new(i)),
        Err(e) => {
            say!("no module index for kernel {release}: {e}; only built-in drivers will work");
            Arc::new(Mutex::new(modules::Index::empty()))
        }
    };
    let (nic_tx, nic_rx) = channel::<String>();
    match uevent::Listener::open() {
        Ok(l) => {
            let index = index.clone();
            let tx = nic_tx.clone();
            let debug = cmdline.split_whitespace().any(|w| w == "copyunit.debug");
            dhcp::DEBUG.store(debug, std::sync::atomic::Ordering::Relaxed);
            std::thread::spawn(move || hotplug(l, index, tx, debug));
        }
        Err(e) => say!("no hotplug events ({e}): devices plugged in later need a reboot"),
    }
    let started = Instant::now();
    if let Ok(mut idx) = index.lock() {
        for m in EARLY {
            if let Err(e) = idx.load_module(m) {
                say!("{e}");
            }
        }
        let mut n = 0;
        for alias in modules::sysfs_modaliases(Path::new("/sys/devices")) {
            n += idx.load_alias(&alias).len();
        }
        say!("loaded {n} drivers in {} ms", started.elapsed().as_millis());
    }
    let _ = net::up("lo");

    // The boot partition: the unit's editable settings and keys. A disk boot says so on the
    // kernel command line, so only then is it worth waiting for the stick to show up.
    let boot_wait = if arg("copyunit.boot").as_deref() == Some("disk") {
        15
    } else {
        0
    };
    let boot_dev = wait_for(Duration::from_secs(boot_wait), |b| {
        store::find_label(b, store::BOOT_LABEL).cloned()
    });
    let boot_mounted = match &boot_dev {
        Some(b) => match store::mount_block(b, BOOT_DIR) {
            Ok(()) => {
                say!("boot partition {} mounted at {BOOT_DIR}", b.name);
                true
            }
            Err(e) => {
                say!("{e}");
                false
            }
        },
        None => false,
    };
    let config = load_config(boot_mounted);
    if let Err(e) = nix::unistd::sethostname(&config.name) {
        say!("cannot set host name {:?}: {e}", config.name);
    }
    for nic in net::wired_nics() {
        let _ = nic_tx.send(nic);
    }
    drop(nic_tx);
    let net_config = Arc::new(config);
    {
        let c = net_config.clone();
        std::thread::spawn(move || network(nic_rx, c));
    }

    let store_wait: u64 = arg("copyunit.store_wait")
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let store_kind = setup_store(
        &net_config.store_label,
        Duration::from_secs(store_wait),
        arg("copyunit.format").as_deref() == Some("yes"),
    );
    let _ = std::fs::create_dir_all("/run/copyunit");
    let _ = std::fs::write("/run/copyunit/store", format!("{store_kind}\n"));
    // Before unitd: its host key needs the random number generator ready.
    entropy::at_boot((store_kind != "ram").then(|| Path::new(STORE_DIR).to_path_buf()));

    let keys = authorized_keys(boot_mounted);
    let config_file = unitd_config(boot_mounted);
    let images = format!("{STORE_DIR}/images");
    let _ = std::fs::create_dir_all(&images);
    let mut args = vec![
        "--listen".into(),
        format!("0.0.0.0:{SSH_PORT}"),
        "--store".into(),
        images,
        "--authorized-keys".into(),
        keys,
        "--host-key".into(),
        format!("{STORE_DIR}/ssh_host_ed25519_key"),
        "--config".into(),
        config_file,
        "--name".into(),
        net_config.name.clone(),
        "--appliance".into(),
    ];
    // Info on the serial line unless unit.toml or the boot line asks for more.
    let (log_flags, log_warning) =
        config::unitd_log_flags(arg("copyunit.log").as_deref(), net_config.log.as_deref());
    if let Some(w) = log_warning {
        say!("{w}");
    }
    args.extend(log_flags);
    // The dashboard on the unit's screen (view-only); PID 1 keeps the serial line.
    if std::path::Path::new(console::SCREEN).exists() {
        args.push("--console".into());
        args.push(console::SCREEN.into());
    }
    if store_kind == "ram" {
        args.push("--volatile-store".into());
    }
    say!(
        "boot took {} ms after the kernel; starting unitd",
        started.elapsed().as_millis()
    );
    std::thread::spawn(move || {
        if let Ok(mut idx) = index.lock() {
            for m in LATE {
                if let Err(e) = idx.load_module(m) {
                    say!("{e}");
                }
            }
        }
    });
    let unitd = supervise::Unitd::new("/bin/unitd", args);
    console::hand_screen_to_unitd();
    unitd
}

/// Polls the block devices until `pick` finds one or `limit` passes.
fn wait_for<T>(limit: Duration, pick: impl Fn(&[store::Block]) -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(t) = pick(&store::scan()) {
            return Some(t);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn load_config(boot_mounted: bool) -> Config {
    let candidates = [
        format!("{BOOT_DIR}/unit.toml"),
        "/etc/copyunit/unit.toml".to_string(),
    ];
    let files = if boot_mounted {
        &candidates[..]
    } else {
        &candidates[1..]
    };
    for f in files {
        if let Ok(text) = std::fs::read_to_string(f) {
            match Config::parse(&text) {
                Ok(c) => return c,
                Err(e) => say!("{f}: {e}; using the defaults"),
            }
        }
    }
    Config::default()
}

/// unitd's settings file: unit.toml (the boot partition's, else the built-in one) without the
/// keys that are PID 1's, since unitd rejects keys it does not know.
fn unitd_config(boot_mounted: bool) -> String {
    let source = if boot_mounted && Path::new("/boot/unit.toml").exists() {
        "/boot/unit.toml"
    } else {
        "/etc/copyunit/unit.toml"
    };
    let text = std::fs::read_to_string(source).unwrap_or_default();
    let filtered = config::for_unitd(&text).unwrap_or_else(|e| {
        say!("{source}: {e}; unitd starts with its defaults");
        String::new()
    });
    let out = "/run/copyunit/unitd.toml";
    let _ = std::fs::create_dir_all("/run/copyunit");
    if let Err(e) = std::fs::write(out, filtered) {
        say!("{out}: {e}");
    }
    out.into()
}

/// The authorized_keys file unitd uses: the boot partition's (editable from any OS) or, with no
/// boot partition (direct kernel boot), a writable copy of the one built into the image.
fn authorized_keys(boot_mounted: bool) -> String {
    if boot_mounted {
        return format!("{BOOT_DIR}/authorized_keys");
    }
    let run = "/run/copyunit/authorized_keys";
    let _ = std::fs::create_dir_all("/run/copyunit");
    let built_in = std::fs::read("/etc/copyunit/authorized_keys").unwrap_or_default();
    let _ = std::fs::write(run, built_in);
    run.into()
}

/// Mounts the image store; returns what it is ("disk sda1" or "ram").
/// How long the console offers to format a blank internal disk.
const CONFIRM: Duration = Duration::from_secs(30);

fn setup_store(label: &str, wait: Duration, preconfirmed: bool) -> String {
    if let Some(b) = wait_for(wait, |b| store::find_label(b, label).cloned()) {
        match store::mount_block(&b, STORE_DIR) {
            Ok(()) => {
                say!(
                    "image store: /dev/{} ({}) mounted at {STORE_DIR}",
                    b.name,
                    model_bytes(b.size_bytes)
                );
                return format!("disk {}", b.name);
            }
            Err(e) => say!("{e}"),
        }
    }
    let blank = store::blank_internal_disks(&store::scan());
    if let Some(disk) = blank.first() {
        let size = model_bytes(disk.size_bytes);
        let yes = if preconfirmed {
            say!(
                "copyunit.format=yes on the kernel command line: {} ({size}) becomes the image store",
                disk.name
            );
            true
        } else {
            say!(
                "internal disk {} ({size}) is blank: it can become the image store.",
                disk.name
            );
            say!(
                "type YES and Enter within {} s to format it (ext2, label {label}); anything else keeps it untouched",
                CONFIRM.as_secs()
            );
            console::confirm("YES", CONFIRM)
        };
        if yes {
            say!(
                "formatting /dev/{} as the image store: this can take a few minutes on a big disk",
                disk.name
            );
            match store::format(&disk.name, label) {
                Ok(()) => {
                    if let Some(b) = store::find_label(&store::scan(), label).cloned() {
                        match store::mount_block(&b, STORE_DIR) {
                            Ok(()) => {
                                say!(
                                    "image store: /dev/{} ({size}) formatted and mounted at {STORE_DIR}",
                                    b.name
                                );
                                return format!("disk {}", b.name);
                            }
                            Err(e) => say!("{e}"),
                        }
                    }
                }
                Err(e) => say!("{e}"),
            }
        } else {
            say!("{} left untouched", disk.name);
        }
    }
    match store::mount_ram(STORE_DIR) {
        Ok(()) => say!("NO IMAGE STORE FOUND: images are kept in RAM and are lost at power-off"),
        Err(e) => say!("{e}"),
    }
    "ram".into()
}

fn model_bytes(n: u64) -> String {
    format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64)
}

/// Loads drivers for hotplugged devices and hands new NICs to the network thread.
fn hotplug(
    l: uevent::Listener,
    index: Arc<Mutex<modules::Index>>,
    nics: Sender<String>,
    debug: bool,
) {
    loop {
        let ev = match l.next() {
            Ok(ev) => ev,
            Err(e) => {
                say!("hotplug events stopped: {e}");
                return;
            }
        };
        if debug {
            say!("uevent {ev:?}");
        }
        if ev.action != "add" {
            continue;
        }
        if let Some(alias) = &ev.modalias
            && let Ok(mut idx) = index.lock()
        {
            idx.load_alias(alias);
        }
        if ev.subsystem == "net"
            && let Some(ifname) = ev.interface
            && net::is_wired(&Path::new("/sys/class/net").join(&ifname))
        {
            let _ = nics.send(ifname);
        }
    }
}

/// Configures every wired NIC it is told about, once each: static address or DHCP.
fn network(nics: Receiver<String>, config: Arc<Config>) {
    let mut seen = HashSet::new();
    let mut static_used = false;
    for ifname in nics {
        if !seen.insert(ifname.clone()) {
            continue;
        }
        if let Err(e) = net::up(&ifname) {
            say!("{ifname}: cannot bring it up: {e}");
            continue;
        }
        let n = &config.network;
        let wants_static = n.address.is_some()
            && match &n.interface {
                Some(i) => *i == ifname,
                None => !static_used,
            };
        if wants_static {
            static_used = true;
            configure_static(&ifname, n);
            continue;
        }
        say!("{ifname}: asking for an address by DHCP");
        let name = config.name.clone();
        std::thread::spawn(move || dhcp_loop(&ifname, &name));
    }
}

fn configure_static(ifname: &str, n: &config::Network) {
    let parsed = config::parse_cidr(n.address.as_deref().unwrap_or_default());
    let result = parsed.and_then(|(addr, mask)| {
        net::set_address(ifname, addr, mask).map_err(|e| e.to_string())?;
        if let Some(gw) = n.gateway {
            net::default_route(ifname, gw).map_err(|e| e.to_string())?;
        }
        Ok((addr, mask))
    });
    match result {
        Ok((addr, mask)) => {
            write_resolv_conf(&n.dns);
            announce(ifname, addr, mask, "static");
        }
        Err(e) => say!("{ifname}: static address: {e}"),
    }
}

fn dhcp_loop(ifname: &str, hostname: &str) {
    dhcp::debug_line(&format!("{ifname}: DHCP thread running"));
    let Some(mac) = net::mac(ifname) else {
        say!("{ifname}: no MAC address; not configuring it");
        return;
    };
    let mut failures = 0u32;
    let mut current = None;
    loop {
        match dhcp::acquire(ifname, &mac, hostname) {
            Ok(lease) => {
                failures = 0;
                if current.as_ref() != Some(&lease.address) {
                    if let Err(e) = net::set_address(ifname, lease.address, lease.netmask) {
                        say!("{ifname}: cannot set {}: {e}", lease.address);
                    }
                    if let Some(gw) = lease.router
                        && let Err(e) = net::default_route(ifname, gw)
                    {
                        say!("{ifname}: cannot route via {gw}: {e}");
                    }
                    write_resolv_conf(&lease.dns);
                    announce(ifname, lease.address, lease.netmask, "DHCP");
                    current = Some(lease.address);
                }
                // Renew at half the lease (at least a minute, to never spin on odd servers).
                std::thread::sleep((lease.lease / 2).max(Duration::from_secs(60)));
            }
            Err(e) => {
                failures += 1;
                if failures == 1 || failures.is_multiple_of(10) {
                    say!("{ifname}: DHCP: {e} (cable plugged in? still trying)");
                }
                std::thread::sleep(Duration::from_secs(u64::from(failures.min(6)) * 5));
            }
        }
    }
}

fn write_resolv_conf(dns: &[Ipv4Addr]) {
    if dns.is_empty() {
        return;
    }
    let _ = std::fs::create_dir_all("/etc");
    let text: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
    let _ = std::fs::write("/etc/resolv.conf", text);
}

fn announce(ifname: &str, addr: Ipv4Addr, mask: Ipv4Addr, how: &str) {
    say!(
        "{ifname}: {addr}/{} ({how}): ssh admin@{addr}",
        net::prefix_len(mask)
    );
    if let Ok(mut a) = ADDRESSES.lock() {
        a.retain(|(i, _)| i != ifname);
        a.push((ifname.to_string(), addr));
    }
}

fn main_loop(signals: &SigSet, unitd: &mut supervise::Unitd) {
    let mut ready = false;
    loop {
        unitd.tick();
        let tick = if ready {
            Duration::from_secs(1)
        } else {
            Duration::from_millis(100)
        };
        match sys::sigtimedwait(signals, tick) {
            Some(libc::SIGCHLD) | None => {}
            Some(libc::SIGUSR2) | Some(libc::SIGPWR) => {
                shutdown(unitd, RebootMode::RB_POWER_OFF, "powering off")
            }
            Some(libc::SIGTERM) | Some(libc::SIGINT) => {
                shutdown(unitd, RebootMode::RB_AUTOBOOT, "rebooting")
            }
            Some(libc::SIGUSR1) => shutdown(unitd, RebootMode::RB_HALT_SYSTEM, "halting"),
            Some(_) => {}
        }
        for status in supervise::reap() {
            unitd.exited(status);
        }
        let addrs: Vec<String> = ADDRESSES
            .lock()
            .map(|a| a.iter().map(|(i, ip)| format!("{i} {ip}")).collect())
            .unwrap_or_default();
        // Ready means reachable: unitd listens and the unit has an address.
        let up = unitd.pid().is_some() && !addrs.is_empty() && supervise::listening(SSH_PORT);
        if up && !ready {
            say!(
                "ssh service ready on port {SSH_PORT} ({})",
                addrs.join(", ")
            );
        }
        ready = up;
    }
}

fn shutdown(unitd: &mut supervise::Unitd, mode: RebootMode, what: &str) -> ! {
    say!("{what}: stopping unitd");
    unitd.stop(Duration::from_secs(10));
    // Everything else (shells, helpers) gets a moment to finish, then is killed.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGTERM);
    std::thread::sleep(Duration::from_millis(300));
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-1), Signal::SIGKILL);
    supervise::reap();
    // A fresh seed for the next boot (a RAM store has no /store/random-seed to refresh).
    if Path::new(STORE_DIR).join(entropy::SEED_FILE).exists() {
        let _ = entropy::save_seed(Path::new(STORE_DIR));
    }
    sys::sync();
    for dir in [STORE_DIR, BOOT_DIR] {
        if umount2(dir, MntFlags::empty()).is_err() {
            // Still busy: detach, and remount read-only so the data is consistent on disk.
            let _ = mount(
                None::<&str>,
                dir,
                None::<&str>,
                MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY,
                None::<&str>,
            );
            let _ = umount2(dir, MntFlags::MNT_DETACH);
        }
    }
    sys::sync();
    say!("{what} now");
    match reboot(mode) {
        Ok(never) => match never {},
        Err(e) => {
            say!("reboot(2) failed: {e}; halted, power off by hand");
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
    }
}
