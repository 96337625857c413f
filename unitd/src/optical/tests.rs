//! Burning, ripping, disc-to-disc and erasing through the unit's optical
//! layer, against simulated drives (nothing here can burn a real disc).

use std::collections::HashMap;
use std::sync::Mutex;

use copyunit_drives::{CancelToken, CopyPlan, ImageReader, TargetUpdate, copy_from};
use copyunit_model::{Drive, Phase};
use sha2::Digest;

use super::*;

fn data(len: usize, seed: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) ^ seed) as u8)
        .collect()
}

/// An ISO 9660-shaped image of `blocks` blocks (a volume descriptor at LBA
/// 16 with the volume size), as a rip of a burned disc reads it.
fn iso(blocks: u32, seed: u32) -> Vec<u8> {
    let mut d = data(blocks as usize * 2048, seed);
    copyunit_optical::sim::mark_iso_volume(&mut d);
    d
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("unitd-optical-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The simulated drives as the unit lists them, probed.
fn drives(optical: &Optical) -> Vec<Drive> {
    let mut d = Vec::new();
    optical.enrich(&mut d, &HashMap::new());
    d
}

fn disc_bytes(optical: &Optical, name: &str, len: usize) -> Vec<u8> {
    let sim = optical.sims.iter().find(|s| s.name == name).unwrap();
    let drive = sim.drive.lock().unwrap();
    let disc = drive.disc().expect("a disc");
    let blocks = len.div_ceil(2048) as u32;
    let mut out = disc.read(0, blocks);
    out.truncate(len);
    out
}

#[test]
fn simulated_drives_are_listed_with_their_discs_and_eligibility() {
    let dir = temp_dir("list");
    let iso = dir.join("master.iso");
    std::fs::write(&iso, data(2048 * 50, 1)).unwrap();
    let optical = Optical::new(
        &[
            "dvd+r".into(),
            "cd-rw".into(),
            format!("rom={}", iso.display()),
        ],
        true,
    )
    .unwrap();
    let d = drives(&optical);
    assert_eq!(d.len(), 3);
    assert_eq!(d[0].name, "sim0");
    assert_eq!(d[0].role, DriveRole::Burner);
    assert!(d[0].eligible, "{:?}", d[0]);
    let m = d[0].media.as_ref().unwrap();
    assert_eq!(
        (m.media_type.as_str(), m.status.as_str()),
        ("DVD+R", "blank")
    );
    assert!(m.free_bytes > 4_000_000_000);
    assert_eq!(d[1].media.as_ref().unwrap().media_type, "CD-RW");
    for c in ["write_cd", "write_dvd", "write_bd", "sao"] {
        assert!(d[0].capabilities.iter().any(|x| x == c), "{c}: {:?}", d[0]);
    }
    assert!(d[2].capabilities.iter().all(|c| !c.starts_with("write_")));
    // The reader holds a pressed disc: a source, never a target.
    assert_eq!(d[2].role, DriveRole::Source);
    assert!(!d[2].eligible);
    assert_eq!(d[2].size, 2048 * 50);
    assert_eq!(
        d[2].reason.as_deref(),
        Some("a disc reader: it cannot burn")
    );
    assert!(Optical::check_specs(&["dvd+q".into()]).is_err());
    assert!(Optical::check_specs(&["rom=/nonexistent".into()]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn one_image_burns_to_several_burners_and_a_burned_disc_is_no_longer_eligible() {
    let dir = temp_dir("burn");
    let img = dir.join("debian.iso");
    let bytes = data(2048 * 700 + 100, 2);
    std::fs::write(&img, &bytes).unwrap();
    let optical = Optical::new(&["dvd+r".into(), "cd-r".into(), "dvd+rw".into()], false).unwrap();
    let ds = drives(&optical);
    let streams = ds.iter().map(|d| optical.burner(d).unwrap()).collect();
    let seen = Mutex::new(Vec::<(usize, Phase, Option<u8>)>::new());
    let progress = |u: TargetUpdate| {
        seen.lock()
            .unwrap()
            .push((u.index, u.progress.phase, u.progress.buffer_fill))
    };
    let report = copy_from(
        &CopyPlan::new(&img, vec![]),
        ImageReader::open(&img),
        streams,
        &CancelToken::new(),
        &progress,
    );
    assert!(report.all_done(), "{report:#?}");
    for (i, t) in report.targets.iter().enumerate() {
        assert!(t.verified, "{t:?}");
        assert_eq!(disc_bytes(&optical, &format!("sim{i}"), bytes.len()), bytes);
    }
    // Each burner went through the burn phases, with its buffer fill shown.
    let seen = seen.into_inner().unwrap();
    for i in 0..3 {
        let mut phases: Vec<Phase> = seen.iter().filter(|s| s.0 == i).map(|s| s.1).collect();
        phases.dedup();
        assert!(
            phases.starts_with(&[Phase::Prepare, Phase::Write])
                && phases.contains(&Phase::Verify)
                && phases.ends_with(&[Phase::Done]),
            "sim{i}: {phases:?}"
        );
        assert!(
            seen.iter().any(|s| s.0 == i && s.2.is_some()),
            "sim{i}: no buffer fill"
        );
    }
    assert!(seen.iter().any(|s| s.0 == 0 && s.1 == Phase::Close));
    // Write-once discs are now finalized; the DVD+RW can be burned again.
    optical.forget(&["sim0".into(), "sim1".into(), "sim2".into()]);
    let ds = drives(&optical);
    assert!(!ds[0].eligible);
    assert_eq!(
        ds[0].reason.as_deref(),
        Some("the disc in sim0 is finalized: not writable")
    );
    assert!(!ds[1].eligible);
    assert!(ds[2].eligible, "{:?}", ds[2]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_disc_copies_to_burners_and_rips_back_with_the_same_hash() {
    let dir = temp_dir("d2d");
    let master = iso(301, 3);
    let iso = dir.join("master.iso");
    std::fs::write(&iso, &master).unwrap();
    let optical = Optical::new(
        &[
            format!("rom={}", iso.display()),
            "dvd-r".into(),
            "cd-rw".into(),
        ],
        true,
    )
    .unwrap();
    let ds = drives(&optical);
    let source = optical.disc_source(&ds[0]).unwrap();
    let streams = vec![
        optical.burner(&ds[1]).unwrap(),
        optical.burner(&ds[2]).unwrap(),
    ];
    let report = copy_from(
        &CopyPlan::new("/dev/sim0", vec![]),
        Ok(source),
        streams,
        &CancelToken::new(),
        &|_| {},
    );
    assert!(report.all_done(), "{report:#?}");
    let want = hex::encode(sha2::Sha256::digest(&master));
    assert_eq!(report.content_sha256.as_deref(), Some(want.as_str()));

    // The burned copy, ripped like a source disc, is the master. The tray
    // opened after the burn: close it first.
    optical.eject(&ds[1], true).unwrap();
    let out = dir.join("copy.iso");
    let (len, sha) = optical
        .rip(&ds[1], &out, &CancelToken::new(), &|_| {})
        .unwrap();
    assert_eq!(len, master.len() as u64);
    assert_eq!(sha, want);
    assert_eq!(std::fs::read(&out).unwrap(), master);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_rewritable_disc_is_erased_and_burnable_again() {
    let dir = temp_dir("erase");
    let img = dir.join("a.iso");
    std::fs::write(&img, data(2048 * 64, 4)).unwrap();
    let optical = Optical::new(&["cd-rw".into()], false).unwrap();
    let ds = drives(&optical);
    let report = copy_from(
        &CopyPlan::new(&img, vec![]),
        ImageReader::open(&img),
        vec![optical.burner(&ds[0]).unwrap()],
        &CancelToken::new(),
        &|_| {},
    );
    assert!(report.all_done(), "{report:#?}");
    optical.forget(&["sim0".into()]);
    let ds = drives(&optical);
    assert_eq!(
        ds[0].reason.as_deref(),
        Some("the disc in sim0 holds data: `wipe sim0` blanks it")
    );
    let phases = Mutex::new(Vec::new());
    optical
        .erase(&ds[0], false, &CancelToken::new(), &|p| {
            phases.lock().unwrap().push(p.phase)
        })
        .unwrap();
    optical.forget(&["sim0".into()]);
    let ds = drives(&optical);
    assert!(ds[0].eligible, "{:?}", ds[0]);
    assert_eq!(ds[0].media.as_ref().unwrap().status, "blank");
    assert!(!phases.into_inner().unwrap().is_empty());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_source_disc_rips_into_a_file_with_its_sha256() {
    let bytes = data(2048 * 300, 5);
    let mut sim = SimDrive::with_disc("sr0", SimDisc::pressed(Media::DvdRom, &bytes));
    let dir = temp_dir("rip");
    let out = dir.join("disc.iso");
    let seen = Mutex::new(0u64);
    let opts = RipOptions {
        timing: Timing::immediate(),
        ..RipOptions::default()
    };
    let (len, sha) = rip_with(&mut sim, &out, &opts, &CancelToken::new(), &|t| {
        *seen.lock().unwrap() = t.bytes_done
    })
    .unwrap();
    assert_eq!(len, bytes.len() as u64);
    assert_eq!(sha, hex::encode(sha2::Sha256::digest(&bytes)));
    assert_eq!(std::fs::read(&out).unwrap(), bytes);
    assert_eq!(*seen.lock().unwrap(), bytes.len() as u64);
    std::fs::remove_dir_all(&dir).unwrap();
}
