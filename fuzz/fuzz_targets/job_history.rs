//! Job history loading: the input is `.copyunit/jobs.json`; it is loaded
//! (running jobs become interrupted), saved and loaded again.
#![no_main]

use copyunit_fuzz::TempDir;
use libfuzzer_sys::fuzz_target;
use unitd::jobs::history::History;

fuzz_target!(|data: &[u8]| {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.path().join(".copyunit")).expect("creating the store");
    std::fs::write(dir.path().join(".copyunit/jobs.json"), data).expect("writing the history");
    let history = History::new(dir.path());
    let (jobs, next) = history.load();
    assert!(jobs.iter().all(|j| j.id < next), "next id {next} is taken");
    history.save(&jobs, next);
    let (again, next_again) = history.load();
    // Saving keeps the last 500.
    assert_eq!(again.len(), jobs.len().min(500));
    assert_eq!(next_again, next);
});
