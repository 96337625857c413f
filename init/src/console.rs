//! The console: every line PID 1 says goes to tty1 (the screen) and ttyS0 (the serial line tests read).
//!
//! PID 1's console output is the unit's user interface before anyone connects, not a log,
//! so it is written directly rather than through `tracing`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

static SINKS: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// Opens the screen and the serial line. Falls back to /dev/console when neither opens.
pub fn open() {
    let mut sinks = Vec::new();
    for path in ["/dev/tty1", "/dev/ttyS0"] {
        if let Ok(f) = OpenOptions::new().write(true).open(path) {
            sinks.push(f);
        }
    }
    if sinks.is_empty()
        && let Ok(f) = OpenOptions::new().write(true).open("/dev/console")
    {
        sinks.push(f);
    }
    if let Ok(mut guard) = SINKS.lock() {
        *guard = sinks;
    }
}

/// Writes one line to every console (with `\r\n`, since nothing translates newlines on a raw tty).
pub fn line(text: &str) {
    let mut out = String::with_capacity(text.len() + 2);
    out.push_str(text.trim_end_matches(['\n', '\r']));
    out.push_str("\r\n");
    match SINKS.lock() {
        Ok(mut sinks) if !sinks.is_empty() => {
            for s in sinks.iter_mut() {
                // A console that went away must not stop the unit.
                let _ = s.write_all(out.as_bytes());
            }
        }
        _ => {
            let _ = std::io::stderr().write_all(out.as_bytes());
        }
    }
}

/// `say!("...")`: format and print one console line, prefixed with `copyunit: `.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::console::line(&format!("copyunit: {}", format_args!($($arg)*)))
    };
}
