//! Preflight: discs that must not be written are refused before any WRITE.

use copyunit_optical::{BurnOptions, DriveConfig, Error, Media, SimDisc, SimDrive};

use crate::{image, opts, run_burn};

/// Burn and expect a refusal with no WRITE sent; returns the message.
fn refused(d: &mut SimDrive, size_blocks: usize, o: &BurnOptions) -> (Error, String) {
    let img = image(size_blocks * 2048, 30);
    let (r, _) = run_burn(d, &img, o);
    let e = r.expect_err("must be refused");
    assert!(
        !d.commands().contains(&"WRITE(10)"),
        "refused before writing: {:?}",
        d.commands()
    );
    assert!(!d.removal_prevented());
    let msg = e.to_string();
    (e, msg)
}

#[test]
fn finalized_disc_is_refused() {
    let mut d = SimDrive::new("sr1");
    d.insert(SimDisc::finalized(Media::CdR, 359_847, &image(5000, 1)));
    let (e, msg) = refused(&mut d, 300, &opts());
    assert!(matches!(e, Error::Finalized { .. }));
    assert_eq!(msg, "the CD-R in sr1 is finalized: not writable");
}

#[test]
fn too_small_disc_is_refused() {
    let mut d = SimDrive::with_disc("sr2", SimDisc::blank(Media::DvdR, 100));
    let (e, msg) = refused(&mut d, 200, &opts());
    assert!(matches!(e, Error::TooSmall { .. }));
    assert_eq!(
        msg,
        "the DVD-R in sr2 is too small: the image needs 409600 bytes, the disc has 204800 free"
    );
}

#[test]
fn too_small_overwrite_disc_is_refused() {
    let mut d = SimDrive::with_disc("sr2", SimDisc::formatted(Media::BdRe, 64));
    let (e, _) = refused(&mut d, 100, &opts());
    assert!(matches!(e, Error::TooSmall { .. }), "{e:?}");
}

#[test]
fn empty_drive_is_refused() {
    let mut d = SimDrive::new("sr1");
    let (e, msg) = refused(&mut d, 10, &opts());
    assert!(e.is_no_disc());
    assert_eq!(msg, "no disc in sr1");
    let mut open = SimDrive::new("sr3");
    open.take_disc();
    let (_, msg) = refused(&mut open, 10, &opts());
    assert_eq!(msg, "no disc in sr3");
}

#[test]
fn appendable_disc_is_refused_as_not_blank() {
    let mut disc = SimDisc::finalized(Media::CdRw, 359_847, &image(5000, 2));
    disc.status = copyunit_optical::mmc::DiscStatus::Appendable;
    let mut d = SimDrive::with_disc("sr1", disc);
    let (e, msg) = refused(&mut d, 300, &opts());
    assert!(matches!(e, Error::NotBlank { .. }));
    assert_eq!(
        msg,
        "the CD-RW in sr1 is not blank (appendable; it can be blanked): blank it first or use a blank disc"
    );
}

#[test]
fn pressed_disc_is_not_writable() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::pressed(Media::DvdRom, &image(10_000, 3)));
    let (e, msg) = refused(&mut d, 10, &opts());
    assert!(matches!(e, Error::NotWritable { .. }));
    assert_eq!(
        msg,
        "the DVD-ROM in sr1 is not writable: a pressed or read-only disc, or one this drive cannot write"
    );
}

#[test]
fn reader_drive_cannot_burn_a_blank_disc() {
    let mut d = SimDrive::with_config("sr0", DriveConfig::reader());
    d.insert(SimDisc::blank(Media::CdR, 359_847));
    let (e, msg) = refused(&mut d, 300, &opts());
    assert!(matches!(e, Error::NotWritable { .. }), "{e:?}");
    // A read-only drive reports a recordable CD as CD-ROM.
    assert!(
        msg.starts_with("the CD-ROM in sr0 is not writable"),
        "{msg}"
    );
}

#[test]
fn unformatted_disc_is_refused_when_formatting_is_not_allowed() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdRam, 2_295_104));
    let o = BurnOptions {
        format_if_needed: false,
        ..opts()
    };
    let (_, msg) = refused(&mut d, 10, &o);
    assert_eq!(
        msg,
        "the DVD-RAM in sr1 is not writable: not formatted (format it first)"
    );
    assert!(!d.commands().contains(&"FORMAT UNIT"));
}

#[test]
fn every_finalized_write_once_type_is_refused() {
    for media in [
        Media::CdR,
        Media::CdRw,
        Media::DvdR,
        Media::DvdRwSequential,
        Media::DvdPlusR,
        Media::BdR,
    ] {
        let mut d =
            SimDrive::with_disc("sr4", SimDisc::finalized(media, 2_000_000, &image(8192, 5)));
        let (e, msg) = refused(&mut d, 300, &opts());
        assert!(matches!(e, Error::Finalized { .. }), "{media:?}: {e:?}");
        assert_eq!(
            msg,
            format!("the {} in sr4 is finalized: not writable", media.name())
        );
    }
}

#[test]
fn cd_too_small_counts_the_300_block_minimum() {
    // 200 blocks of image still need a 300-block track.
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 250));
    let (e, _) = refused(&mut d, 200, &opts());
    assert!(matches!(e, Error::TooSmall { free: 512_000, .. }), "{e:?}");
}
