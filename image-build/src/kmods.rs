//! The kernel modules a PC needs, with everything they depend on, copied and depmod'ed.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cmd;
use crate::error::{Error, Result, io};

/// Drivers and filesystems the unit loads: storage controllers and disks, USB hosts, wired NICs,
/// virtio (QEMU), the store's and discs' filesystems, and the keyboard for the local console.
pub const WANTED: &[&str] = &[
    // Storage
    "ahci",
    "ata_piix",
    "ata_generic",
    "nvme",
    "usb_storage",
    "uas",
    "sd_mod",
    "sr_mod",
    "sg",
    "mmc_block",
    "sdhci_pci",
    "sdhci_acpi",
    "rtsx_pci_sdmmc",
    "rtsx_usb_sdmmc",
    "virtio_blk",
    "virtio_scsi",
    "loop",
    // USB host controllers
    "xhci_pci",
    "ehci_pci",
    "ohci_pci",
    "uhci_hcd",
    // Wired NICs (r8169, tg3, bnx2 need non-free firmware for some chips; not shipped)
    "e1000",
    "e1000e",
    "igb",
    "igc",
    "r8169",
    "tg3",
    "bnx2",
    "atl1c",
    "alx",
    "sky2",
    "virtio_net",
    "r8152",
    "ax88179_178a",
    "cdc_ether",
    // virtio transport
    "virtio_pci",
    "virtio_console",
    "virtio_rng",
    // Filesystems and what they need at mount time
    "ext4",
    "vfat",
    "exfat",
    "isofs",
    "nls_cp437",
    "nls_utf8",
    "nls_iso8859_1",
    "nls_ascii",
    "crc32c_generic",
    "crc32c_intel",
    // Keyboard for the local console
    "usbhid",
    "hid_generic",
    "atkbd",
];

/// `usb-storage.ko` -> `usb_storage`.
fn name_of(path: &Path) -> String {
    let base = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    base.split(".ko")
        .next()
        .unwrap_or_default()
        .replace('-', "_")
}

/// The `depends=` entry of a module's .modinfo ELF section.
pub fn modinfo_depends(ko: &[u8]) -> Option<Vec<String>> {
    let info = elf_section(ko, ".modinfo")?;
    let deps = info
        .split(|&b| b == 0)
        .find_map(|f| f.strip_prefix(b"depends="))?;
    Some(
        std::str::from_utf8(deps)
            .ok()?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.replace('-', "_"))
            .collect(),
    )
}

/// The bytes of a named section of a 64-bit little-endian ELF file.
fn elf_section<'a>(elf: &'a [u8], want: &str) -> Option<&'a [u8]> {
    let u16_at = |o: usize| {
        elf.get(o..o + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]) as usize)
    };
    let u32_at = |o: usize| {
        elf.get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| b.try_into().ok())
            .map(|b: [u8; 8]| u64::from_le_bytes(b) as usize)
    };
    if elf.get(..5)? != b"\x7fELF\x02" {
        return None;
    }
    let shoff = u64_at(0x28)?;
    let shentsize = u16_at(0x3a)?;
    let shnum = u16_at(0x3c)?;
    let shstrndx = u16_at(0x3e)?;
    let section = |i: usize| {
        let h = shoff + i * shentsize;
        Some((u32_at(h)?, u64_at(h + 0x18)?, u64_at(h + 0x20)?))
    };
    let (_, stroff, strsize) = section(shstrndx)?;
    let names = elf.get(stroff..stroff + strsize)?;
    for i in 0..shnum {
        let (name, off, size) = section(i)?;
        let n = names.get(name..)?.split(|&b| b == 0).next()?;
        if n == want.as_bytes() {
            return elf.get(off..off + size);
        }
    }
    None
}

/// Result of selecting modules: files relative to the modules dir, in sorted order.
#[derive(Debug)]
pub struct Selection {
    pub files: Vec<PathBuf>,
}

/// Chooses `wanted` and their dependency closure from an unpacked /lib/modules/VERSION.
pub fn select(moddir: &Path, wanted: &[&str]) -> Result<Selection> {
    let mut by_name: HashMap<String, PathBuf> = HashMap::new();
    let mut stack = vec![moddir.join("kernel")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir)
            .map_err(io("listing", &dir))?
            .flatten()
        {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains(".ko") {
                let rel = p.strip_prefix(moddir).unwrap_or(&p).to_path_buf();
                by_name.insert(name_of(&p), rel);
            }
        }
    }
    let builtin: BTreeSet<String> = std::fs::read_to_string(moddir.join("modules.builtin"))
        .map_err(io("reading", moddir.join("modules.builtin")))?
        .lines()
        .map(|l| name_of(Path::new(l)))
        .collect();
    let mut chosen = BTreeSet::new();
    let mut todo: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
    while let Some(name) = todo.pop() {
        if builtin.contains(&name) || chosen.contains(&name) {
            continue;
        }
        let rel = by_name
            .get(&name)
            .ok_or_else(|| Error::MissingModule(name.clone()))?;
        let path = moddir.join(rel);
        let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
        todo.extend(modinfo_depends(&bytes).unwrap_or_default());
        chosen.insert(name);
    }
    let mut files: Vec<PathBuf> = chosen
        .iter()
        .filter_map(|n| by_name.get(n).cloned())
        .collect();
    files.sort();
    Ok(Selection { files })
}

/// Copies the selection into `out/lib/modules/VERSION` and runs depmod there.
/// Keeps modules.dep, modules.alias, modules.builtin and modules.softdep (what PID 1 reads).
pub fn install(moddir: &Path, version: &str, sel: &Selection, out: &Path) -> Result<()> {
    let dest = out.join("lib/modules").join(version);
    for rel in &sel.files {
        let to = dest.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        std::fs::copy(moddir.join(rel), &to).map_err(io("copying", &to))?;
    }
    for f in [
        "modules.builtin",
        "modules.builtin.modinfo",
        "modules.order",
    ] {
        let from = moddir.join(f);
        if from.exists() {
            std::fs::copy(&from, dest.join(f)).map_err(io("copying", &from))?;
        }
    }
    cmd::run(Command::new(depmod()).arg("-b").arg(out).arg(version))?;
    // The binary indexes and the rest are modprobe's; PID 1 reads only the text files.
    for e in std::fs::read_dir(&dest)
        .map_err(io("listing", &dest))?
        .flatten()
    {
        let n = e.file_name().to_string_lossy().into_owned();
        let keep = [
            "modules.dep",
            "modules.alias",
            "modules.builtin",
            "modules.softdep",
        ];
        if e.path().is_file() && !keep.contains(&n.as_str()) {
            std::fs::remove_file(e.path()).map_err(io("removing", e.path()))?;
        }
    }
    Ok(())
}

/// depmod lives in /sbin, which is not on every PATH.
fn depmod() -> PathBuf {
    for p in ["/usr/sbin/depmod", "/sbin/depmod"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    "depmod".into()
}
