//! SCSI sense decoding (fixed and descriptor formats) and what unitd makes
//! of it, plus the write parameters mode page a drive returns.
#![no_main]

use copyunit_optical::Sense;
use copyunit_optical::mmc::WriteParams;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(sense) = Sense::parse(data) {
        let condition = sense.condition();
        let _ = condition.is_retryable();
        let _ = condition.describe("sr0", "WRITE(10)", &sense);
        let _ = sense.to_string();
        // The fixed form says the same (INFORMATION is 32 bits there).
        let again = Sense::parse(&sense.to_fixed()).expect("fixed sense parses");
        assert_eq!(
            (again.key, again.asc, again.ascq, again.progress),
            (sense.key, sense.asc, sense.ascq, sense.progress)
        );
        assert_eq!(
            again.information,
            sense.information.map(|i| u64::from(i as u32))
        );
    }
    if let Some(params) = WriteParams::from_page(data) {
        let _ = params.page();
    }
});
