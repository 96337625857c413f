//! Discovery and the safety rules on real devices.

use copyunit_drives::{DiscoverOptions, Error, check_target, discover};
use copyunit_model::{DriveKind, DriveRole};

use crate::util::{Loop, Mounted, TempDir, loops_allowed, run};

#[test]
fn loop_devices_are_listed_only_when_allowed() {
    let dir = TempDir::new("disc");
    let l512 = Loop::new(&dir, 16 << 20, 512);
    let l4k = Loop::new(&dir, 16 << 20, 4096);
    assert!(
        !discover(&DiscoverOptions::default())
            .iter()
            .any(|d| d.name == l512.name)
    );
    let err = check_target(&l512.name, &DiscoverOptions::default()).expect_err("loop refused");
    assert!(err.to_string().contains("allow-loop-devices"), "{err}");

    let drives = discover(&loops_allowed());
    let d = drives
        .iter()
        .find(|d| d.name == l512.name)
        .expect("loop listed");
    assert_eq!(d.kind, DriveKind::Loop);
    assert_eq!(d.role, DriveRole::Target);
    assert_eq!(d.size, 16 << 20);
    assert_eq!(d.path, l512.dev);
    assert_eq!(d.logical_sector_size, 512);
    assert!(d.eligible, "{:?}", d.reason);
    assert!(d.diskseq.is_some());
    let d4 = drives
        .iter()
        .find(|d| d.name == l4k.name)
        .expect("4k loop listed");
    assert_eq!(d4.logical_sector_size, 4096);
    assert_eq!(
        check_target(&l4k.dev, &loops_allowed())
            .expect("eligible")
            .name,
        l4k.name
    );
}

#[test]
fn the_system_disk_is_never_eligible_and_refused_when_named() {
    let drives = discover(&DiscoverOptions::default());
    // Whatever backs / on this machine (vda here) is listed as System.
    let root = run("findmnt", &["-n", "-o", "SOURCE", "/"]);
    let Some(name) = root.strip_prefix("/dev/") else {
        // FIXME: a root without a block device (overlay, 9p) has no system disk to find.
        return;
    };
    let sys = drives
        .iter()
        .find(|d| d.name == name || name.starts_with(&d.name))
        .expect("root disk listed");
    assert_eq!(sys.role, DriveRole::System);
    assert!(!sys.eligible);
    let err = check_target(&sys.name, &loops_allowed()).expect_err("system disk refused");
    assert!(matches!(err, Error::Refused { .. }), "{err}");
    assert!(err.to_string().contains("system disk"), "{err}");
}

#[test]
fn a_store_on_a_drive_makes_it_the_store_disk() {
    let dir = TempDir::new("store");
    let l = Loop::new(&dir, 32 << 20, 512);
    run("mkfs.ext4", &["-q", "-L", "STORE", &l.dev]);
    let mnt = dir.path("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    run("mount", &[&l.dev, mnt.to_str().expect("utf-8")]);
    let _m = Mounted(mnt.clone());
    let opts = DiscoverOptions {
        allow_loop_devices: true,
        store_path: Some(mnt.clone()),
        ..Default::default()
    };
    let d = discover(&opts)
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    assert_eq!(d.role, DriveRole::Store);
    assert!(!d.eligible);
    assert!(check_target(&l.name, &opts).is_err());
}

#[test]
fn a_mounted_drive_is_refused_with_its_mount_point() {
    let dir = TempDir::new("mounted");
    let l = Loop::new(&dir, 32 << 20, 512);
    run("mkfs.ext4", &["-q", "-L", "CUTEST", &l.dev]);
    let mnt = dir.path("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    run("mount", &[&l.dev, mnt.to_str().expect("utf-8")]);
    let _m = Mounted(mnt.clone());

    let d = discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == l.name)
        .expect("listed");
    assert!(!d.eligible);
    let reason = d.reason.expect("reason");
    assert!(reason.contains(mnt.to_str().expect("utf-8")), "{reason}");
    let err = check_target(&l.name, &loops_allowed()).expect_err("refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("mounted at {}", mnt.display()))
            && msg.ends_with("refusing to write"),
        "{msg}"
    );
}

#[test]
fn partitions_show_filesystem_type_and_label() {
    let dir = TempDir::new("label");
    let file = dir.path("parted.img");
    // One MBR partition from sector 2048 to the end, written by hand.
    let size = 32u64 << 20;
    let mut disk = vec![0u8; size as usize];
    let e = &mut disk[446..462];
    e[4] = 0x83;
    e[8..12].copy_from_slice(&2048u32.to_le_bytes());
    e[12..16].copy_from_slice(&((size / 512 - 2048) as u32).to_le_bytes());
    disk[510] = 0x55;
    disk[511] = 0xAA;
    crate::util::write_file(&file, &disk);
    let dev = run(
        "losetup",
        &["-f", "--show", "-P", file.to_str().expect("utf-8")],
    );
    let _detach = Detach(dev.clone());
    let name = dev.trim_start_matches("/dev/").to_owned();
    if !std::path::Path::new(&format!("/sys/block/{name}/{name}p1")).exists() {
        // FIXME: this kernel has no MBR partition parser (seen on the CI
        // machine's kernel): the drive shows no partitions at all.
        let d = discover(&loops_allowed())
            .into_iter()
            .find(|d| d.name == name)
            .expect("listed");
        assert!(d.partitions.is_empty());
        return;
    }
    run(
        "mkfs.ext4",
        &["-q", "-L", "PARTLABEL1", &format!("{dev}p1")],
    );
    let d = discover(&loops_allowed())
        .into_iter()
        .find(|d| d.name == name)
        .expect("listed");
    assert_eq!(d.partitions.len(), 1, "{:?}", d.partitions);
    assert_eq!(d.partitions[0].name, format!("{name}p1"));
    assert_eq!(d.partitions[0].size, size - 2048 * 512);
    assert_eq!(d.partitions[0].fstype.as_deref(), Some("ext4"));
    assert_eq!(d.partitions[0].label.as_deref(), Some("PARTLABEL1"));
    assert!(d.eligible);
}

/// Detaches a loop device by path on drop.
struct Detach(String);
impl Drop for Detach {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

#[test]
fn loop_devices_can_be_limited_to_files_under_a_directory() {
    let mine = TempDir::new("mine");
    let other = TempDir::new("other");
    let a = Loop::new(&mine, 8 << 20, 512);
    let b = Loop::new(&other, 8 << 20, 512);
    let opts = DiscoverOptions {
        allow_loop_devices: true,
        loop_devices_under: vec![mine.0.clone()],
        ..DiscoverOptions::default()
    };
    let names: Vec<String> = discover(&opts).into_iter().map(|d| d.name).collect();
    assert!(names.contains(&a.name), "{names:?}");
    assert!(!names.contains(&b.name), "{names:?}");
    assert!(check_target(&a.name, &opts).is_ok());
    assert!(matches!(
        check_target(&b.name, &opts),
        Err(Error::NoSuchDrive(_))
    ));
}
