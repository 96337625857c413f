//! authorized_keys parsing: the input is the file unitd reads; every key
//! found is listed and removed again, and the input is also offered to
//! `keys add` (what `ssh unit keys add < FILE` sends).
#![no_main]

use copyunit_fuzz::TempDir;
use libfuzzer_sys::fuzz_target;
use unitd::ssh::auth::Keys;

fuzz_target!(|data: &[u8]| {
    let dir = TempDir::new();
    let path = dir.path().join("authorized_keys");
    std::fs::write(&path, data).expect("writing authorized_keys");
    let keys = Keys::new(&path);
    let listed = keys.list();
    let _ = keys.pairing();
    // Line by line, as sshd reads it (bytes: a Latin-1 comment is fine).
    for line in data.split(|b| *b == b'\n') {
        let _ = unitd::ssh::authorized_keys::parse_line(line);
    }
    let _ = keys.add(data);
    for key in listed {
        let _ = keys.remove(&key.fingerprint);
    }
    let _ = keys.list();
});
