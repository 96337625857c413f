//! Blanking and formatting rewritable discs.

use std::ops::ControlFlow;

use copyunit_model::Phase;
use copyunit_optical::mmc::DiscStatus;
use copyunit_optical::{
    BlankKind, Error, Media, Progress, SimDisc, SimDrive, Timing, blank, erase, format, probe,
};

use crate::{burn_ok, disc_bytes, image, opts, strs};

fn collect() -> (Vec<Progress>, impl FnMut(&Progress) -> ControlFlow<()>) {
    (vec![], |_: &Progress| ControlFlow::Continue(()))
}

#[test]
fn blank_a_cd_rw_then_burn_it_again() {
    let old = image(5000 * 2048, 40);
    let mut d = SimDrive::with_disc("sr1", SimDisc::finalized(Media::CdRw, 359_847, &old));
    let mut seen = vec![];
    blank(&mut d, BlankKind::Fast, &Timing::immediate(), &mut |p| {
        seen.push(*p);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(d.actions(), strs(&["BLANK fast"]));
    let blank_cdb = &d.log().iter().find(|l| l.name == "BLANK").unwrap().cdb;
    assert_eq!(blank_cdb[1], 0x11, "Immed + minimal blank");
    let polls: Vec<u64> = seen
        .iter()
        .filter(|p| p.phase == Phase::Prepare)
        .map(|p| p.bytes_done)
        .collect();
    assert!(
        polls.len() >= 2 && polls.windows(2).all(|w| w[0] < w[1]),
        "progress rises: {polls:?}"
    );
    assert_eq!(seen.last().unwrap().phase, Phase::Done);
    let disc = d.disc().unwrap();
    assert_eq!(disc.status, DiscStatus::Blank);
    assert_eq!(disc.written_blocks(), 0);
    let img = image(300 * 2048, 41);
    burn_ok(&mut d, &img, &opts());
    assert_eq!(disc_bytes(&d, 0, img.len()), img);
}

#[test]
fn format_an_unformatted_dvd_plus_rw() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdPlusRw, 2_295_104));
    assert_eq!(probe(&mut d).unwrap().media.unwrap().status, "unformatted");
    let (_, mut cb) = collect();
    format(&mut d, &Timing::immediate(), &mut cb).unwrap();
    assert!(d.actions().contains(&"FORMAT UNIT type 26".to_string()));
    assert!(d.disc().unwrap().formatted);
    assert_eq!(probe(&mut d).unwrap().media.unwrap().status, "formatted");
}

#[test]
fn erase_picks_blank_or_format_by_media() {
    let cases = [
        (Media::CdRw, "BLANK fast"),
        (Media::DvdRwSequential, "BLANK fast"),
        (Media::DvdPlusRw, "FORMAT UNIT type 26"),
        (Media::DvdRam, "FORMAT UNIT type 00"),
        (Media::BdRe, "FORMAT UNIT type 00"),
    ];
    for (media, action) in cases {
        let mut disc = SimDisc::formatted(media, 2_295_104);
        disc.formatted = media.is_overwrite();
        let mut d = SimDrive::with_disc("sr1", disc);
        let (_, mut cb) = collect();
        assert_eq!(
            erase(&mut d, false, &Timing::immediate(), &mut cb).unwrap(),
            media
        );
        assert_eq!(d.actions(), strs(&[action]), "{media:?}");
    }
}

#[test]
fn full_blank_turns_restricted_overwrite_dvd_rw_sequential() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::formatted(Media::DvdRwRestricted, 2_295_104));
    let (_, mut cb) = collect();
    erase(&mut d, true, &Timing::immediate(), &mut cb).unwrap();
    assert_eq!(d.actions(), strs(&["BLANK full"]));
    let disc = d.disc().unwrap();
    assert_eq!(disc.media, Media::DvdRwSequential);
    assert_eq!(disc.status, DiscStatus::Blank);
}

#[test]
fn write_once_media_cannot_be_erased() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    let (_, mut cb) = collect();
    let e = erase(&mut d, false, &Timing::immediate(), &mut cb).unwrap_err();
    assert!(matches!(e, Error::NotErasable { .. }));
    assert_eq!(
        e.to_string(),
        "the CD-R in sr1 cannot be blanked or formatted"
    );
    let mut empty = SimDrive::new("sr2");
    let e = erase(&mut empty, false, &Timing::immediate(), &mut cb).unwrap_err();
    assert_eq!(e.to_string(), "no disc in sr2");
}

#[test]
fn blank_that_never_finishes_gives_up() {
    let mut d = SimDrive::with_disc(
        "sr1",
        SimDisc::finalized(Media::CdRw, 359_847, &image(4096, 42)),
    );
    d.config_mut().long_op_polls = 1000;
    let timing = Timing {
        poll_limit: 10,
        ..Timing::immediate()
    };
    let (_, mut cb) = collect();
    let e = blank(&mut d, BlankKind::Full, &timing, &mut cb).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sr1 stayed busy (formatting or blanking) after 11 tries"
    );
}
