//! The exec command line parser (`ssh admin@unit CMD ARGS`): shell-style
//! splitting, then clap, as `unitd::commands::run` does before it runs
//! anything. Nothing is executed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // SSH delivers the exec request as bytes; unitd takes UTF-8 only.
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = unitd::commands::parse(line);
    }
});
