//! The simulator refuses what a real drive refuses, so a burn sequence that
//! passes against it is not passing by accident.

use copyunit_optical::mmc::{WriteParams, WriteType, close};
use copyunit_optical::{Condition, Media, Mmc, SimDisc, SimDrive};

fn tao() -> WriteParams {
    WriteParams {
        write_type: WriteType::Tao,
        buffer_underrun_free: false,
        multi_session: false,
        track_mode: 4,
        data_block_type: 8,
        dvd_incremental: false,
    }
}

fn cond(r: Result<(), copyunit_optical::Error>) -> Option<Condition> {
    r.expect_err("the drive must refuse").condition()
}

#[test]
fn cd_write_without_write_parameters_is_refused() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    let mut m = Mmc::new(&mut d);
    assert_eq!(
        cond(m.write10(0, &[0; 2048])),
        Some(Condition::IllegalModeForTrack)
    );
}

#[test]
fn write_off_the_next_writable_address_is_refused() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    let mut m = Mmc::new(&mut d);
    m.set_write_params(&tao()).unwrap();
    assert_eq!(
        cond(m.write10(16, &[0; 2048])),
        Some(Condition::InvalidWriteAddress { lba: Some(16) })
    );
    m.write10(0, &[0; 2048]).unwrap();
    assert!(
        m.write10(0, &[0; 2048]).is_err(),
        "no rewriting a write-once block"
    );
}

#[test]
fn sao_needs_a_cue_sheet_and_the_pregap_first() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    let mut m = Mmc::new(&mut d);
    m.set_write_params(&WriteParams {
        write_type: WriteType::Sao,
        ..tao()
    })
    .unwrap();
    assert_eq!(
        cond(m.write10(-150, &[0; 2048])),
        Some(Condition::SequenceError)
    );
    m.send_cue_sheet(&copyunit_optical::mmc::data_cue_sheet(300))
        .unwrap();
    assert!(m.write10(0, &[0; 2048]).is_err(), "data before the pregap");
    m.write10(-150, &[0; 2048]).unwrap();
}

#[test]
fn dvd_r_disc_at_once_needs_a_reservation() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::DvdR, 2_295_104));
    let mut m = Mmc::new(&mut d);
    m.set_write_params(&WriteParams {
        write_type: WriteType::Sao,
        track_mode: 5,
        ..tao()
    })
    .unwrap();
    assert_eq!(
        cond(m.write10(0, &[0; 2048 * 16])),
        Some(Condition::SequenceError)
    );
    m.reserve_track(16).unwrap();
    m.write10(0, &[0; 2048 * 16]).unwrap();
    assert!(
        m.write10(16, &[0; 2048 * 16]).is_err(),
        "beyond the reservation"
    );
}

#[test]
fn finalized_disc_refuses_writes_and_closing() {
    let mut d = SimDrive::with_disc(
        "sr1",
        SimDisc::finalized(Media::DvdPlusR, 2_295_104, &[1; 4096]),
    );
    let mut m = Mmc::new(&mut d);
    assert!(matches!(
        cond(m.write10(2, &[0; 2048])),
        Some(Condition::InvalidWriteAddress { .. })
    ));
    assert_eq!(
        cond(m.close_track_session(close::SESSION, 0, false)),
        Some(Condition::SessionFixation)
    );
}

#[test]
fn unformatted_overwrite_disc_and_pressed_disc_refuse_writes() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::BdRe, 12_219_392));
    assert_eq!(
        cond(Mmc::new(&mut d).write10(0, &[0; 2048])),
        Some(Condition::NotFormatted)
    );
    let mut p = SimDrive::with_disc("sr1", SimDisc::pressed(Media::DvdRom, &[7; 8192]));
    assert_eq!(
        cond(Mmc::new(&mut p).write10(0, &[0; 2048])),
        Some(Condition::IncompatibleMedium)
    );
    let mut buf = [0u8; 2048 * 8];
    assert!(Mmc::new(&mut p).read10(0, &mut buf[..8192]).is_ok());
    assert!(
        matches!(
            Mmc::new(&mut p)
                .read10(4, &mut buf[..2048])
                .unwrap_err()
                .condition(),
            Some(Condition::LbaOutOfRange { .. })
        ),
        "reading past the end"
    );
}

#[test]
fn tray_locked_refuses_eject() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdR, 359_847));
    let mut m = Mmc::new(&mut d);
    m.prevent_removal(true).unwrap();
    assert!(m.start_stop(false).is_err());
    m.eject().unwrap();
    assert!(d.tray_open());
}

#[test]
fn mode_sense_returns_the_page_that_was_selected() {
    let mut d = SimDrive::with_disc("sr1", SimDisc::blank(Media::CdRw, 359_847));
    let mut m = Mmc::new(&mut d);
    let before = WriteParams::from_page(&m.mode_sense(0x05).unwrap()).unwrap();
    assert_eq!(before.write_type, WriteType::Tao, "drive default");
    let sao = WriteParams {
        write_type: WriteType::Sao,
        multi_session: true,
        ..tao()
    };
    m.set_write_params(&sao).unwrap();
    assert_eq!(
        WriteParams::from_page(&m.mode_sense(0x05).unwrap()),
        Some(sao)
    );
}
