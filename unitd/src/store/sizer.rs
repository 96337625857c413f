//! The sizer: one thread that decodes compressed images once, to record
//! their decoded size (`content_size`) in the catalog.
//!
//! gzip, bzip2 and zstd files do not record a size that can be trusted
//! (gzip's is modulo 4 GiB and per member, zstd's per frame), so each is
//! decoded once after it is published (or at start, for one the catalog
//! has no size for yet), away from the runtime and the upload's close. A
//! file that does not decode is recorded as such (`decode_error`), which
//! flags the image corrupt before any copy starts.

use std::sync::Weak;
use std::sync::mpsc;

use super::Shared;
use super::catalog::Order;

/// The sizer's queue of image names.
pub struct Queue(mpsc::Sender<String>);

impl Queue {
    /// Starts the thread. It holds the store only weakly, and ends when the
    /// store is dropped (its queue closes).
    pub(super) fn start(store: Weak<Shared>) -> Queue {
        let (tx, rx) = mpsc::channel::<String>();
        let spawned = std::thread::Builder::new()
            .name("store sizer".into())
            .spawn(move || {
                while let Ok(name) = rx.recv() {
                    let Some(store) = store.upgrade() else { return };
                    size_one(&store, &name);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the store's sizer thread: {e}");
        }
        Queue(tx)
    }

    pub fn push(&self, name: String) {
        let _ = self.0.send(name);
    }
}

fn size_one(store: &Shared, name: &str) {
    let Some(entry) = store.catalog.get(name) else {
        return;
    };
    if !entry.needs_sizing() {
        return;
    }
    let path = store.images.join(name);
    let started = std::time::Instant::now();
    let result = copyunit_drives::content_sha256(&path, &copyunit_drives::CancelToken::new());
    let (size, error) = match result {
        Ok((size, _)) => (Some(size), None),
        Err(
            e @ (copyunit_drives::Error::Corrupt { .. }
            | copyunit_drives::Error::Unsupported { .. }),
        ) => (None, Some(e.to_string())),
        Err(e) => {
            // Not the image's fault (a read error): try again at next start.
            tracing::warn!("cannot decode {name} to learn its size: {e}");
            return;
        }
    };
    match (&size, &error) {
        (Some(s), _) => tracing::info!(
            "{name}: {s} bytes once decompressed (decoded in {:.1} s)",
            started.elapsed().as_secs_f64()
        ),
        (_, Some(e)) => tracing::warn!("{name} does not decompress: {e}"),
        _ => {}
    }
    let inode = entry.inode;
    let _ = store.catalog.change(
        Order::ActFirst,
        |entries| {
            // Only the file that was decoded: not one that replaced it since.
            if let Some(e) = entries.get_mut(name)
                && e.inode == inode
            {
                e.content_size = size;
                e.decode_error = error;
            }
            Ok(())
        },
        || Ok(()),
    );
}
