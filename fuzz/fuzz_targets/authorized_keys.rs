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
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keys.add(text);
    }
    for key in listed {
        let _ = keys.remove(&key.fingerprint);
    }
    let _ = keys.list();
});
