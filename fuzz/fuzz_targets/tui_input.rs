//! The terminal input parser and the dashboard's handling of what it
//! parses. The first byte picks how the rest is cut into reads (as an SSH
//! channel delivers them) and when the idle timeout fires (flush_pending).
#![no_main]

use copyunit_fuzz::Cursor;
use copyunit_tui::{Dashboard, Event, InputParser, Options};
use libfuzzer_sys::fuzz_target;

/// Whole input at once, then the idle flush.
fn parse_whole(bytes: &[u8]) -> Vec<Event> {
    let mut p = InputParser::new();
    let mut events = p.feed(bytes);
    events.extend(p.flush_pending());
    events
}

fuzz_target!(|data: &[u8]| {
    let mut input = Cursor::new(data);
    let seed = input.u8();
    let bytes = input.rest();

    // The same bytes in arbitrary reads give the same events (no idle
    // flush in between). Up to 64 bytes: longer unfinished sequences are
    // dropped as garbage, and where that happens depends on the reads.
    let mut p = InputParser::new();
    let mut chunked = Vec::new();
    let mut rest = bytes;
    let mut step = seed;
    while !rest.is_empty() {
        let n = usize::from(step % 7 + 1).min(rest.len());
        let (now, later) = rest.split_at(n);
        chunked.extend(p.feed(now));
        rest = later;
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    chunked.extend(p.flush_pending());
    assert!(!p.has_pending());
    if bytes.len() <= 64 {
        assert_eq!(chunked, parse_whole(bytes), "reads changed the events");
    }

    // The dashboard acting on it, drawing after every read.
    let snap = copyunit_fuzz::sample_snapshot();
    let mut dash = Dashboard::new(Options::default());
    let _ = dash.render(&snap);
    let mut rest = bytes;
    let mut step = seed;
    while !rest.is_empty() {
        let n = usize::from(step % 16 + 1).min(rest.len());
        let (now, later) = rest.split_at(n);
        let _ = dash.handle_input(now, &snap);
        if step % 5 == 0 {
            let _ = dash.flush_pending(&snap);
        }
        let _ = dash.render(&snap);
        rest = later;
        step = step.wrapping_mul(31).wrapping_add(7);
    }
    let _ = dash.flush_pending(&snap);
    let _ = dash.render(&snap);
});
