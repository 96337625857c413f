//! Kernel uevents for a loop device appearing.

use std::time::{Duration, Instant};

use copyunit_drives::HotplugListener;

use crate::util::{Loop, TempDir};

#[test]
fn attaching_a_loop_device_is_reported() {
    let listener = HotplugListener::open().expect("uevent socket");
    let dir = TempDir::new("hotplug");
    let l = Loop::new(&dir, 4 << 20, 512);
    // A guard against hanging forever, not a performance limit.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < until, "no uevent for {}", l.name);
        if let Some(ev) = listener.next(Duration::from_secs(1)).expect("recv")
            && ev.name == l.name
        {
            break;
        }
    }
}
