//! Catalog loading: the input is `.copyunit/catalog.json` of a store that
//! holds two images; the store is opened (reconciling the catalog with the
//! files) and listed.
#![no_main]

use copyunit_fuzz::{IMAGES, TempDir};
use libfuzzer_sys::fuzz_target;
use unitd::store::{ImageName, Store};

fuzz_target!(|data: &[u8]| {
    let dir = TempDir::new();
    let root = dir.path();
    std::fs::create_dir_all(root.join(".copyunit")).expect("creating the store");
    std::fs::write(root.join(".copyunit/catalog.json"), data).expect("writing the catalog");
    for (name, bytes) in IMAGES {
        std::fs::write(root.join(name), bytes).expect("writing a store image");
    }
    let Ok(store) = Store::open(root, false) else {
        return;
    };
    let _ = store.catalog();
    let _ = store.usage();
    for entry in store.entries() {
        if let Ok(Some(name)) = ImageName::from_client_path(&entry.name) {
            let _ = store.stat(&name);
        }
    }
});
