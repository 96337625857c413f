//! Injected faults during a burn: the burn fails (or recovers) and says why.

use std::ops::ControlFlow;

use copyunit_model::Phase;
use copyunit_optical::mmc::DiscStatus;
use copyunit_optical::{Condition, Error, Fault, Media, SimDisc, SimDrive, burn, probe};

use crate::{burn_ok, disc_bytes, image, opts, run_burn};

#[test]
fn media_removed_mid_burn_fails_with_no_disc() {
    let img = image(400 * 2048, 20);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    d.add_fault(Fault::RemoveMediaAt { lba: 100 });
    let (r, seen) = run_burn(&mut d, &img, &opts());
    let e = r.unwrap_err();
    assert!(e.is_no_disc(), "{e:?}");
    assert_eq!(e.to_string(), "no disc in sr1 (tray open)");
    assert_eq!(seen.last().unwrap().phase, Phase::Failed);
    let disc = d.disc().unwrap();
    assert_eq!(
        disc.status,
        DiscStatus::Appendable,
        "left half written, not complete"
    );
    assert_eq!(
        disc.read(0, 100),
        img[..100 * 2048],
        "blocks before the removal landed"
    );
    assert_eq!(disc.written_blocks(), 100);
}

#[test]
fn write_error_names_the_lba() {
    let img = image(500 * 2048, 21);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    d.add_fault(Fault::WriteError { lba: 77 });
    let (r, _) = run_burn(&mut d, &img, &opts());
    let e = r.unwrap_err();
    assert_eq!(e.condition(), Some(Condition::WriteError { lba: Some(77) }));
    assert_eq!(e.to_string(), "write error on the disc in sr1 at LBA 77");
    assert!(!d.removal_prevented(), "tray unlocked after the failure");
    assert!(!d.commands().contains(&"CLOSE TRACK/SESSION"));
}

#[test]
fn long_write_in_progress_is_waited_out() {
    let img = image(2000 * 2048, 22);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdR, 2_295_104));
    // A slow drive: 64-block buffer draining 6 blocks per command; every
    // 16-block WRITE quickly finds it full.
    d.config_mut().buffer_blocks = 64;
    d.config_mut().drain_per_command = 6;
    let (r, seen) = run_burn(&mut d, &img, &opts());
    let r = r.unwrap_or_else(|e| panic!("{e}"));
    let writes = d.commands().iter().filter(|c| **c == "WRITE(10)").count();
    assert!(
        writes > 2000 / 16 + 10,
        "busy WRITEs were retried: {writes}"
    );
    assert!(r.verified);
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
    let max_fill = seen.iter().filter_map(|p| p.buffer_fill).max().unwrap();
    assert!(
        max_fill >= 50,
        "the full buffer shows in progress: {max_fill}%"
    );
}

#[test]
fn long_write_that_never_ends_gives_up_with_a_message() {
    let img = image(64 * 2048, 23);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    d.config_mut().buffer_blocks = 8; // a 16-block WRITE never fits
    let mut o = opts();
    o.timing.busy_limit = 5;
    let (r, _) = run_burn(&mut d, &img, &o);
    let e = r.unwrap_err();
    assert!(matches!(e, Error::Busy { tries: 6, .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "sr1 stayed busy (long write in progress) after 6 tries"
    );
}

#[test]
fn power_loss_mid_burn_and_the_disc_afterwards() {
    let img = image(400 * 2048, 24);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdR, 2_295_104));
    d.add_fault(Fault::PowerLossAt { lba: 50 });
    let (r, _) = run_burn(&mut d, &img, &opts());
    let e = r.unwrap_err();
    assert!(
        matches!(e, Error::Drive { .. }),
        "the failing WRITE itself: {e:?}"
    );
    // Later commands do not reach the drive at all.
    let e2 = probe(&mut d).unwrap_err();
    assert!(
        e2.to_string().starts_with("sr1 disappeared during INQUIRY"),
        "{e2}"
    );
    d.power_on();
    let info = probe(&mut d).unwrap();
    let media = info.media.unwrap();
    assert_eq!(media.media_type, "DVD-R");
    assert_eq!(
        media.status, "appendable",
        "a half-written disc is not blank"
    );
    // And it is refused for a new burn.
    let (r, _) = run_burn(&mut d, &img, &opts());
    assert!(matches!(r, Err(Error::NotBlank { .. })), "{r:?}");
}

#[test]
fn verify_catches_silently_corrupted_data() {
    let img = image(300 * 2048, 25);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    d.add_fault(Fault::SilentCorruption { lba: 123 });
    let (r, seen) = run_burn(&mut d, &img, &opts());
    let e = r.unwrap_err();
    assert!(matches!(e, Error::VerifyMismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("verify failed on sr1: the disc reads back as SHA-256 "),
        "{e}"
    );
    assert_eq!(seen.last().unwrap().phase, Phase::Failed);
}

#[test]
fn cancel_stops_writing_and_unlocks_the_tray() {
    let img = image(1000 * 2048, 26);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    let mut writes = 0;
    let r = burn(&mut d, &img[..], img.len() as u64, &opts(), &mut |p| {
        if p.phase == Phase::Write {
            writes += 1;
            if writes == 3 {
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    assert!(matches!(r, Err(Error::Cancelled)), "{r:?}");
    assert_eq!(d.disc().unwrap().written_blocks(), 48);
    assert!(!d.removal_prevented());
}

#[test]
fn source_shorter_than_announced_is_an_error() {
    let img = image(100 * 2048, 27);
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusR, 2_295_104));
    let r = burn(
        &mut d,
        &img[..],
        img.len() as u64 + 4096,
        &opts(),
        &mut |_| ControlFlow::Continue(()),
    );
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "the image ended after {} of {} bytes",
            img.len(),
            img.len() + 4096
        )
    );
}

#[test]
fn a_new_disc_unit_attention_is_absorbed() {
    let img = image(300 * 2048, 28);
    let mut d = SimDrive::new("sr1");
    d.insert(SimDisc::blank(Media::CdR, 359_847));
    burn_ok(&mut d, &img, &opts());
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}
