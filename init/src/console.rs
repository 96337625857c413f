//! The console: every line PID 1 says goes to tty1 (the screen) and ttyS0 (the serial line tests read).
//!
//! PID 1's console output is the unit's user interface before anyone connects, not a log,
//! so it is written directly rather than through `tracing`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

static SINKS: Mutex<Vec<File>> = Mutex::new(Vec::new());

/// The screen (tty1), once unitd draws its dashboard there: from then on
/// PID 1's lines go to the serial line only, so they cannot tear the screen.
pub const SCREEN: &str = "/dev/tty1";

/// Stops writing to the screen; unitd owns it now.
pub fn hand_screen_to_unitd() {
    if let Ok(mut sinks) = SINKS.lock() {
        let screen = std::fs::metadata(SCREEN)
            .ok()
            .map(|m| std::os::unix::fs::MetadataExt::rdev(&m));
        sinks.retain(|f| {
            let rdev = f
                .metadata()
                .ok()
                .map(|m| std::os::unix::fs::MetadataExt::rdev(&m));
            rdev.is_none() || rdev != screen
        });
    }
}

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

/// Waits up to `limit` for someone to type `word` and Enter on the screen's keyboard or the
/// serial line. The consoles are only read during the question, so later readers get their
/// input.
pub fn confirm(word: &str, limit: Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut ttys: Vec<File> = ["/dev/tty1", "/dev/ttyS0"]
        .iter()
        .filter_map(|p| {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
                .open(p)
                .ok()
        })
        .collect();
    let mut typed: Vec<Vec<u8>> = vec![Vec::new(); ttys.len()];
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !ttys.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds: Vec<PollFd> = ttys
            .iter()
            .map(|t| PollFd::new(t.as_fd(), PollFlags::POLLIN))
            .collect();
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            return false;
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| r.contains(PollFlags::POLLIN)))
            .collect();
        drop(fds);
        for (i, r) in ready.into_iter().enumerate() {
            if !r {
                continue;
            }
            let mut buf = [0u8; 256];
            if let Ok(n) = ttys[i].read(&mut buf) {
                typed[i].extend_from_slice(&buf[..n]);
            }
            while let Some(end) = typed[i].iter().position(|&b| b == b'\n' || b == b'\r') {
                let line: Vec<u8> = typed[i].drain(..=end).collect();
                if String::from_utf8_lossy(&line).trim() == word {
                    return true;
                }
            }
        }
    }
    false
}
