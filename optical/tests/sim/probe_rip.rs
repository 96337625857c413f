//! Drive discovery data, ripping source discs and disc-to-disc copies.

use std::ops::ControlFlow;

use copyunit_model::{DriveRole, OpticalMedia};
use copyunit_optical::{
    DiscReader, DriveConfig, Error, Fault, Media, RipOptions, SimDisc, SimDrive, Timing, burn,
    probe, rip,
};

use crate::{disc_bytes, image, opts, sha};

fn rip_opts() -> RipOptions {
    RipOptions {
        retry_delay: std::time::Duration::ZERO,
        timing: Timing::immediate(),
        ..RipOptions::default()
    }
}

#[test]
fn empty_burner_is_a_burner_without_media() {
    let mut d = SimDrive::new("sr1");
    let info = probe(&mut d).unwrap();
    assert_eq!(info.role, DriveRole::Burner);
    assert!(
        info.capabilities.write_cd && info.capabilities.write_dvd && info.capabilities.write_bd
    );
    assert!(info.capabilities.sao);
    assert_eq!(info.inquiry.vendor, "COPYUNIT");
    assert_eq!(info.inquiry.peripheral_type, 5);
    assert_eq!(info.media, None);
}

#[test]
fn reader_with_a_pressed_dvd_is_a_source() {
    let data = image(1000 * 2048, 50);
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::pressed(Media::DvdRom, &data));
    let info = probe(&mut d).unwrap();
    assert_eq!(info.role, DriveRole::Source);
    assert!(!info.capabilities.can_write());
    assert_eq!(
        info.media,
        Some(OpticalMedia {
            media_type: "DVD-ROM".into(),
            status: "complete".into(),
            erasable: false,
            capacity_bytes: data.len() as u64,
            free_bytes: 0,
        })
    );
    assert_eq!(info.readable_bytes, data.len() as u64);
}

#[test]
fn blank_and_written_recordables_are_described() {
    let mut d = SimDrive::new("sr1");
    d.insert(SimDisc::blank(Media::CdRw, 359_847));
    let m = probe(&mut d).unwrap().media.unwrap();
    assert_eq!(
        (m.media_type.as_str(), m.status.as_str(), m.erasable),
        ("CD-RW", "blank", true)
    );
    assert_eq!(m.free_bytes, 359_847 * 2048);
    assert_eq!(m.capacity_bytes, 359_847 * 2048);

    let img = image(300 * 2048, 51);
    let r = burn(&mut d, &img[..], img.len() as u64, &opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    let info = probe(&mut d).unwrap();
    let m = info.media.unwrap();
    assert_eq!(m.status, "complete");
    assert_eq!(info.readable_bytes, u64::from(r.blocks) * 2048);

    let mut ram = SimDrive::with_disc("sr2", SimDisc::formatted(Media::BdRe, 12_219_392));
    let m = probe(&mut ram).unwrap().media.unwrap();
    assert_eq!(
        (m.media_type.as_str(), m.status.as_str()),
        ("BD-RE", "formatted")
    );
    assert_eq!(m.free_bytes, 12_219_392 * 2048);
}

#[test]
fn rip_hashes_the_whole_disc() {
    let data = image(777 * 2048, 52);
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::pressed(Media::CdRom, &data));
    let mut out = vec![];
    let r = rip(&mut d, &mut out, &rip_opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out, data);
    assert_eq!(r.sha256, sha(&data));
    assert_eq!(r.bytes, data.len() as u64);
    assert!(r.unreadable.is_empty());
}

#[test]
fn rip_retries_a_flaky_sector() {
    let data = image(100 * 2048, 53);
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::pressed(Media::DvdRom, &data));
    d.add_fault(Fault::ReadError { lba: 40, times: 3 });
    let mut out = vec![];
    let r = rip(&mut d, &mut out, &rip_opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(out, data);
    assert!(r.unreadable.is_empty());
}

#[test]
fn rip_fails_on_a_bad_sector_by_default() {
    let data = image(100 * 2048, 54);
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::pressed(Media::DvdRom, &data));
    d.add_fault(Fault::ReadError {
        lba: 65,
        times: u32::MAX,
    });
    let e = rip(&mut d, Vec::new(), &rip_opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    match &e {
        Error::Unreadable { lbas, .. } => assert_eq!(lbas, &vec![65]),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        e.to_string(),
        "1 unreadable sector(s) on the disc in sr0, first at LBA 65"
    );
}

#[test]
fn rip_zero_fills_only_when_asked_and_lists_the_sectors() {
    let data = image(100 * 2048, 55);
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::pressed(Media::DvdRom, &data));
    d.add_fault(Fault::ReadError {
        lba: 65,
        times: u32::MAX,
    });
    d.add_fault(Fault::ReadError {
        lba: 99,
        times: u32::MAX,
    });
    let o = RipOptions {
        zero_fill: true,
        ..rip_opts()
    };
    let mut out = vec![];
    let r = rip(&mut d, &mut out, &o, &mut |_| ControlFlow::Continue(())).unwrap();
    assert_eq!(r.unreadable, vec![65, 99]);
    let mut want = data.clone();
    want[65 * 2048..66 * 2048].fill(0);
    want[99 * 2048..].fill(0);
    assert_eq!(out, want);
    assert_eq!(r.sha256, sha(&want));
}

#[test]
fn rip_of_an_empty_drive_says_so() {
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    let e = rip(&mut d, Vec::new(), &rip_opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert_eq!(e.to_string(), "no disc in sr0");
}

#[test]
fn disc_to_disc_copy_streams_the_source_into_burners() {
    let data = image(900 * 2048, 56);
    let mut src = SimDrive::with_config("sr0", DriveConfig::reader());
    src.insert(SimDisc::pressed(Media::DvdRom, &data));
    let mut dst = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    let reader = DiscReader::open(&mut src, rip_opts()).unwrap();
    let size = reader.size();
    assert_eq!(size, data.len() as u64);
    let r = burn(&mut dst, reader, size, &opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(r.verified);
    assert_eq!(r.sha256, sha(&data));
    assert_eq!(disc_bytes(&dst, 0, data.len()), data);
}

#[test]
fn a_spinning_up_disc_is_waited_for_or_reported_not_ready() {
    let mut d = SimDrive::new("sr1");
    d.config_mut().spin_up_commands = 5;
    d.insert(SimDisc::blank(Media::DvdPlusR, 2_295_104));
    let info = probe(&mut d).unwrap();
    assert!(info.not_ready, "probe does not wait: it says so");
    assert_eq!(info.media, None);
    // A burn waits "becoming ready" out.
    let img = image(64 * 2048, 57);
    let r = burn(&mut d, &img[..], img.len() as u64, &opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap();
    assert!(r.verified);
    let info = probe(&mut d).unwrap();
    assert!(!info.not_ready);
    assert_eq!(info.media.unwrap().status, "complete");
}

#[test]
fn an_owned_disc_reader_moves_into_a_thread() {
    let data = image(300 * 2048, 58);
    let mut src = SimDrive::with_config("sr0", DriveConfig::reader());
    src.insert(SimDisc::pressed(Media::DvdRom, &data));
    // By value, as unitd does with an SgTransport: a 'static reader.
    let mut reader: DiscReader<'static> = DiscReader::open(src, rip_opts()).unwrap();
    assert_eq!(reader.device(), "sr0");
    let copied = std::thread::spawn(move || {
        let mut out = vec![];
        std::io::copy(&mut reader, &mut out).map(|_| out)
    })
    .join()
    .unwrap()
    .unwrap();
    assert_eq!(copied, data);
}

#[test]
fn unreadable_sector_while_streaming_fails_the_copy() {
    let data = image(100 * 2048, 59);
    let mut src = SimDrive::with_config("sr0", DriveConfig::reader());
    src.insert(SimDisc::pressed(Media::DvdRom, &data));
    src.add_fault(Fault::ReadError {
        lba: 10,
        times: u32::MAX,
    });
    let mut dst = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    let reader = DiscReader::open(&mut src, rip_opts()).unwrap();
    let size = reader.size();
    let e = burn(&mut dst, reader, size, &opts(), &mut |_| {
        ControlFlow::Continue(())
    })
    .unwrap_err();
    assert!(
        e.to_string().starts_with("reading the image failed after 0 of 204800 bytes: 1 unreadable sector(s) on the disc in sr0, first at LBA 10"),
        "{e}"
    );
}

#[test]
fn media_events_tell_insert_and_removal() {
    use copyunit_optical::{MediaEventKind, media_event};
    let mut d = SimDrive::new("sr1");
    let e = media_event(&mut d).unwrap();
    assert_eq!((e.kind, e.present), (MediaEventKind::NoChange, false));
    d.insert(SimDisc::blank(Media::CdR, 359_847));
    let e = media_event(&mut d).unwrap();
    assert_eq!(
        (e.kind, e.present, e.tray_open),
        (MediaEventKind::NewMedia, true, false)
    );
    assert_eq!(
        media_event(&mut d).unwrap().kind,
        MediaEventKind::NoChange,
        "reported once"
    );
    copyunit_optical::Mmc::new(&mut d).eject().unwrap();
    let e = media_event(&mut d).unwrap();
    assert_eq!(
        (e.kind, e.present, e.tray_open),
        (MediaEventKind::MediaRemoval, false, true)
    );
    // Polling consumed no unit attention: probing still works normally.
    assert_eq!(probe(&mut d).unwrap().media, None);
}

/// An ISO 9660 image of `blocks` blocks: a primary volume descriptor at
/// LBA 16 stating the volume size, the rest pseudo-random.
fn iso(blocks: u32, seed: u32) -> Vec<u8> {
    let mut data = image(blocks as usize * 2048, seed);
    copyunit_optical::sim::mark_iso_volume(&mut data);
    data
}

#[test]
fn a_burned_iso_rips_to_the_iso_not_to_the_padded_track() {
    // 41 blocks: a DVD-R pads the track to 48, a CD to 300 blocks (4 s).
    let data = iso(41, 70);
    for media in [Media::DvdR, Media::CdR] {
        let mut d = SimDrive::new("sr1");
        d.insert(SimDisc::blank(media, 100_000));
        burn(&mut d, &data[..], data.len() as u64, &opts(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        let recorded = probe(&mut d).unwrap();
        assert_eq!(recorded.readable_bytes, data.len() as u64, "{media:?}");
        let mut out = Vec::new();
        let r = rip(&mut d, &mut out, &rip_opts(), &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(out, data, "{media:?}");
        assert_eq!(r.sha256, sha(&data));
        // Asked for the whole recorded area, the padding comes too.
        let whole = RipOptions {
            iso_size: false,
            ..rip_opts()
        };
        let reader = DiscReader::open(&mut d, whole).unwrap();
        assert!(reader.size() > data.len() as u64, "{media:?}");
    }
}
