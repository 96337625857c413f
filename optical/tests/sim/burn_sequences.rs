//! The command sequence per media type, and what ends up on the disc.

use copyunit_model::Phase;
use copyunit_optical::mmc::DiscStatus;
use copyunit_optical::{BurnOptions, Media, SimDisc, SimDrive, WriteMode};

use crate::{burn_ok, disc_bytes, image, opts, run_burn, sha, strs};

const CD_BLOCKS: u32 = 359_847;
const DVD_BLOCKS: u32 = 2_295_104;
const BD_BLOCKS: u32 = 12_219_392;

/// LBAs of every WRITE(10) the drive received, in order.
fn write_lbas(drive: &SimDrive) -> Vec<i32> {
    drive
        .log()
        .iter()
        .filter(|l| l.name == "WRITE(10)")
        .map(|l| i32::from_be_bytes([l.cdb[2], l.cdb[3], l.cdb[4], l.cdb[5]]))
        .collect()
}

#[test]
fn cd_r_is_written_session_at_once_from_the_pregap() {
    let img = image(400 * 2048 + 100, 1);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    let r = burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "MODE SELECT write Sao",
            "SEND CUE SHEET",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "ALLOW REMOVAL"
        ])
    );
    assert_eq!(write_lbas(&d)[0], -150, "SAO starts with the 2 s pregap");
    assert_eq!(r.mode, WriteMode::Sao);
    assert_eq!(r.blocks, 401);
    assert!(r.verified);
    assert_eq!(r.sha256, sha(&img));
    let disc = d.disc().unwrap();
    assert_eq!(disc.status, DiscStatus::Complete);
    assert_eq!(disc.tracks.len(), 1);
    assert_eq!(disc.tracks[0].blocks, 401);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
    assert_eq!(
        disc.read(400, 1)[100..],
        vec![0u8; 1948][..],
        "last block padded with zeros"
    );
}

#[test]
fn cd_rw_falls_back_to_tao_when_the_drive_has_no_sao() {
    let img = image(350 * 2048, 2);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdRw, CD_BLOCKS));
    d.config_mut().sao = false;
    let r = burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "MODE SELECT write Tao",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "CLOSE SESSION",
            "ALLOW REMOVAL"
        ])
    );
    assert!(
        d.commands().contains(&"READ TRACK INFORMATION"),
        "TAO writes at the NWA"
    );
    assert_eq!(write_lbas(&d)[0], 0);
    assert_eq!(r.mode, WriteMode::Tao);
    assert_eq!(d.disc().unwrap().status, DiscStatus::Complete);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn cd_falls_back_to_tao_when_sao_is_refused() {
    let img = image(320 * 2048, 3);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    d.config_mut().sao_works = false;
    let r = burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "MODE SELECT write Sao",
            "MODE SELECT write Tao",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "CLOSE SESSION",
            "ALLOW REMOVAL"
        ])
    );
    assert_eq!(r.mode, WriteMode::Tao);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn short_cd_track_is_padded_to_300_blocks() {
    let img = image(10 * 2048, 4);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    let r = burn_ok(&mut d, &img, &opts());
    assert_eq!(r.blocks, 300);
    assert_eq!(d.disc().unwrap().tracks[0].blocks, 300);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn cd_left_appendable_when_not_finalizing() {
    let img = image(300 * 2048, 5);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    d.config_mut().sao = false;
    let o = BurnOptions {
        finalize: false,
        ..opts()
    };
    burn_ok(&mut d, &img, &o);
    assert_eq!(d.actions()[1], "MODE SELECT write Tao multi");
    assert_eq!(d.disc().unwrap().status, DiscStatus::Appendable);
}

#[test]
fn dvd_minus_r_and_rw_sequential_are_written_disc_at_once() {
    for media in [Media::DvdR, Media::DvdRwSequential] {
        let img = image(1000 * 2048 + 5, 6);
        let mut d = SimDrive::with_disc("sr2", SimDisc::blank(media, DVD_BLOCKS));
        let r = burn_ok(&mut d, &img, &opts());
        // 1001 blocks, padded to whole 16-block packets.
        assert_eq!(r.blocks, 1008);
        assert_eq!(
            d.actions(),
            strs(&[
                "PREVENT REMOVAL",
                "MODE SELECT write Sao",
                "RESERVE TRACK 1008",
                "WRITE(10)",
                "SYNCHRONIZE CACHE",
                "ALLOW REMOVAL"
            ]),
            "{media:?}"
        );
        assert_eq!(r.mode, WriteMode::Dao);
        let disc = d.disc().unwrap();
        assert_eq!(disc.status, DiscStatus::Complete, "{media:?}");
        assert_eq!(disc.tracks[0].reserved, Some(1008));
        assert_eq!(disc_bytes(&d, 0, img.len()), img);
    }
}

#[test]
fn dvd_plus_r_is_closed_and_finalized() {
    let img = image(700 * 2048, 7);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, DVD_BLOCKS));
    let r = burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "CLOSE TRACK 1",
            "FINALIZE",
            "ALLOW REMOVAL"
        ])
    );
    let finalize = d
        .log()
        .iter()
        .find(|l| l.action.as_deref() == Some("FINALIZE"))
        .unwrap();
    assert_eq!(
        finalize.cdb[2] & 7,
        0b101,
        "DVD+R finalizes with close function 101b"
    );
    assert!(
        !d.commands().contains(&"MODE SELECT"),
        "DVD+R takes no mode page 05h"
    );
    assert_eq!(r.mode, WriteMode::Sequential);
    assert_eq!(d.disc().unwrap().status, DiscStatus::Complete);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn dvd_plus_r_stays_appendable_without_finalize() {
    let img = image(64 * 2048, 8);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, DVD_BLOCKS));
    let o = BurnOptions {
        finalize: false,
        ..opts()
    };
    burn_ok(&mut d, &img, &o);
    assert!(d.actions().contains(&"CLOSE SESSION".to_string()));
    assert_eq!(d.disc().unwrap().status, DiscStatus::Appendable);
}

#[test]
fn bd_r_is_finalized_with_its_own_close_function() {
    let img = image(3000 * 2048, 9);
    let mut d = SimDrive::with_disc("sr3", SimDisc::blank(Media::BdR, BD_BLOCKS));
    burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "CLOSE TRACK 1",
            "FINALIZE",
            "ALLOW REMOVAL"
        ])
    );
    let finalize = d
        .log()
        .iter()
        .find(|l| l.action.as_deref() == Some("FINALIZE"))
        .unwrap();
    assert_eq!(finalize.cdb[2] & 7, 0b110);
    assert_eq!(d.disc().unwrap().status, DiscStatus::Complete);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn formatted_overwrite_media_are_written_in_place() {
    for media in [
        Media::DvdRam,
        Media::BdRe,
        Media::DvdRwRestricted,
        Media::DvdPlusRw,
    ] {
        let img = image(500 * 2048 + 77, 10);
        let mut disc = SimDisc::formatted(media, DVD_BLOCKS);
        // Old contents beyond the image stay; the image overwrites the start.
        disc.nwa = 0;
        let mut d = SimDrive::with_disc("sr1", disc);
        let r = burn_ok(&mut d, &img, &opts());
        let mut want = strs(&["PREVENT REMOVAL", "WRITE(10)", "SYNCHRONIZE CACHE"]);
        if media == Media::DvdPlusRw {
            want.push("CLOSE SESSION".into());
        }
        want.push("ALLOW REMOVAL".into());
        assert_eq!(d.actions(), want, "{media:?}");
        assert_eq!(r.mode, WriteMode::Overwrite);
        assert_eq!(write_lbas(&d)[0], 0);
        assert_eq!(disc_bytes(&d, 0, img.len()), img, "{media:?}");
        assert!(d.disc().unwrap().formatted);
    }
}

#[test]
fn unformatted_dvd_plus_rw_is_formatted_first() {
    let img = image(200 * 2048, 11);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusRw, DVD_BLOCKS));
    burn_ok(&mut d, &img, &opts());
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "FORMAT UNIT type 26",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "CLOSE SESSION",
            "ALLOW REMOVAL"
        ])
    );
    let disc = d.disc().unwrap();
    assert!(disc.formatted);
    assert_eq!(
        disc.bg_format, 1,
        "background formatting stopped by CLOSE SESSION"
    );
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn unformatted_bd_re_is_formatted_and_polled_before_writing() {
    let img = image(100 * 2048, 12);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::BdRe, BD_BLOCKS));
    let (r, seen) = run_burn(&mut d, &img, &opts());
    r.unwrap();
    assert_eq!(
        d.actions(),
        strs(&[
            "PREVENT REMOVAL",
            "FORMAT UNIT type 00",
            "WRITE(10)",
            "SYNCHRONIZE CACHE",
            "ALLOW REMOVAL"
        ])
    );
    let format_polls = seen
        .iter()
        .filter(|p| p.phase == Phase::Prepare && p.bytes_done > 0)
        .count();
    assert!(format_polls >= 2, "format progress was reported: {seen:?}");
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn restricted_overwrite_dvd_rw_gets_whole_packets() {
    let img = image(17 * 2048, 13);
    let mut d = SimDrive::with_disc(
        "sr1",
        SimDisc::formatted(Media::DvdRwRestricted, DVD_BLOCKS),
    );
    let r = burn_ok(&mut d, &img, &opts());
    // The simulator refuses writes not aligned to 32 KiB on this media.
    assert_eq!(r.blocks, 32);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn progress_goes_through_the_phases_in_order() {
    let img = image(600 * 2048, 14);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, DVD_BLOCKS));
    let (r, seen) = run_burn(&mut d, &img, &opts());
    r.unwrap();
    let mut phases: Vec<Phase> = seen.iter().map(|p| p.phase).collect();
    phases.dedup();
    assert_eq!(
        phases,
        vec![
            Phase::Prepare,
            Phase::Write,
            Phase::Sync,
            Phase::Close,
            Phase::Verify,
            Phase::Done
        ]
    );
    let writes: Vec<u64> = seen
        .iter()
        .filter(|p| p.phase == Phase::Write)
        .map(|p| p.bytes_done)
        .collect();
    assert!(writes.windows(2).all(|w| w[0] < w[1]), "bytes_done grows");
    assert_eq!(*writes.last().unwrap(), img.len() as u64);
    assert!(seen.iter().all(|p| p.bytes_total == img.len() as u64));
    assert!(
        seen.iter().any(|p| p.buffer_fill.is_some()),
        "buffer fill is reported"
    );
}

#[test]
fn eject_when_done_unlocks_and_opens_the_tray() {
    let img = image(300 * 2048, 15);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    let o = BurnOptions {
        eject: true,
        ..opts()
    };
    burn_ok(&mut d, &img, &o);
    let actions = d.actions();
    assert_eq!(
        &actions[actions.len() - 2..],
        &strs(&["ALLOW REMOVAL", "EJECT"])[..]
    );
    assert!(d.tray_open());
    assert!(!d.removal_prevented());
}

#[test]
fn no_verify_reads_nothing_back() {
    let img = image(300 * 2048, 16);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, CD_BLOCKS));
    let o = BurnOptions {
        verify: false,
        ..opts()
    };
    let r = burn_ok(&mut d, &img, &o);
    assert!(!r.verified);
    assert!(!d.commands().contains(&"READ(10)"));
}
