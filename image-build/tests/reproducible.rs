//! Builds the real image twice from the pinned packages (downloaded with apt-get on first use)
//! and checks it is the same bytes both times, boots on both firmware kinds by construction
//! (MBR + syslinux + EFI loader present), and carries what PID 1 needs.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use copyunit_image_build::{Inputs, build, default_lock};

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn inputs(dir: &Path, keys: &Path) -> Inputs {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf();
    Inputs {
        lock: default_lock(),
        cache: root.join("target/image-build/debs"),
        work: dir.join("work"),
        // Any ELF binaries do for the layout; the boot tests use the real ones.
        init: "/bin/true".into(),
        unitd: "/bin/false".into(),
        authorized_keys: Some(keys.to_path_buf()),
        unit_toml: None,
        out: dir.join("unit.img"),
        epoch: copyunit_image_build::DEFAULT_EPOCH,
    }
}

fn mdir(image: &Path, dir: &str) -> String {
    let offset = copyunit_image_build::disk::PART_START_LBA * 512;
    let out = Command::new("mdir")
        .arg("-i")
        .arg(format!("{}@@{offset}", image.display()))
        .args(["-a", "-b", dir])
        .output()
        .expect("mtools is needed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn same_inputs_same_bytes_and_a_complete_layout() {
    let tmp =
        TempDir(std::env::temp_dir().join(format!("copyunit-image-test-{}", std::process::id())));
    let (a, b) = (tmp.0.join("a"), tmp.0.join("b"));
    std::fs::create_dir_all(&a).expect("dir a");
    std::fs::create_dir_all(&b).expect("dir b");
    let keys = tmp.0.join("authorized_keys");
    std::fs::write(
        &keys,
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC3mU1oWmQk6LSLtqfqqiDsFWGuYjxcnLIzZ/XxTTQ8n test\n",
    )
    .expect("keys");

    let first = build(&inputs(&a, &keys)).expect("first build");
    let second = build(&inputs(&b, &keys)).expect("second build");
    assert!(first.image_bytes <= 64 << 20, "{} bytes", first.image_bytes);
    let bytes = |p: &Path| std::fs::read(p).expect("read output");
    assert!(
        bytes(&first.initrd) == bytes(&second.initrd),
        "initramfs differs between builds"
    );
    assert!(
        bytes(&first.image) == bytes(&second.image),
        "unit.img differs between builds"
    );

    // MBR: syslinux boot code, an active FAT32 partition at 1 MiB.
    let img = bytes(&first.image);
    assert_eq!(&img[510..512], &[0x55, 0xaa]);
    assert_eq!(img[446], 0x80);
    assert_eq!(img[450], 0x0c);

    let root = mdir(&first.image, "::/");
    for f in [
        "vmlinuz",
        "initrd.img",
        "syslinux.cfg",
        "ldlinux.sys",
        "ldlinux.c32",
        "unit.toml",
        "authorized_keys",
    ] {
        assert!(
            root.contains(&format!("::/{f}")),
            "{f} missing from the boot partition:\n{root}"
        );
    }
    let efi = mdir(&first.image, "::/EFI/BOOT");
    for f in ["BOOTX64.EFI", "grubx64.efi", "grub.cfg"] {
        assert!(efi.contains(f), "{f} missing: {efi}");
    }
    assert!(mdir(&first.image, "::/EFI/debian").contains("grub.cfg"));

    // The initramfs: PID 1, unitd, the console node, the keys, and modules with their index.
    let cpio = zstd::decode_all(&bytes(&first.initrd)[..]).expect("zstd initramfs");
    let listing = Command::new("cpio")
        .args(["-t", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&cpio)?;
            c.wait_with_output()
        })
        .expect("GNU cpio is needed");
    let names = String::from_utf8_lossy(&listing.stdout);
    for want in [
        "init",
        "bin/unitd",
        "bin/busybox",
        "dev/console",
        "etc/copyunit/authorized_keys",
        "etc/copyunit/unit.toml",
    ] {
        assert!(
            names.lines().any(|l| l == want),
            "{want} missing from the initramfs"
        );
    }
    let v = &first.kernel_version;
    for m in [
        "ahci.ko",
        "nvme.ko",
        "usb-storage.ko",
        "uas.ko",
        "xhci-pci.ko",
        "e1000e.ko",
        "r8169.ko",
        "virtio_net.ko",
        "ext4.ko",
        "exfat.ko",
        "isofs.ko",
        "sr_mod.ko",
        "sg.ko",
        "loop.ko",
    ] {
        assert!(
            names
                .lines()
                .any(|l| l.starts_with(&format!("lib/modules/{v}/"))
                    && l.ends_with(&format!("/{m}"))),
            "{m} missing"
        );
    }
    assert!(
        names
            .lines()
            .any(|l| l == format!("lib/modules/{v}/modules.dep"))
    );
    assert!(
        names
            .lines()
            .any(|l| l == format!("lib/modules/{v}/modules.alias"))
    );
}
