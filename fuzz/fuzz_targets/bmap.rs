//! bmap parsing: the input is a `.bmap` sidecar.
#![no_main]

use copyunit_drives::bmap::BlockMap;
use copyunit_fuzz::TempDir;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = TempDir::new();
    let path = dir.path().join("image.bmap");
    std::fs::write(&path, data).expect("writing the bmap");
    if let Ok(map) = BlockMap::load(&path) {
        let mut end = 0;
        for r in &map.ranges {
            assert!(r.offset >= end && r.len > 0, "ranges overlap or are empty");
            end = r.offset + r.len;
        }
        assert!(end <= map.image_size, "a range lies past the image end");
        assert!(map.mapped_bytes() <= map.image_size);
    }
});
