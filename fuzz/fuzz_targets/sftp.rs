//! SFTP request handling over the store: the input is the byte stream a
//! client sends after its SSH_FXP_INIT (length-prefixed packets, or
//! garbage), served by unitd's handler over a fresh store holding two images.
#![no_main]

use copyunit_fuzz::{TempDir, runtime, unit};
use libfuzzer_sys::fuzz_target;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// SSH_FXP_INIT, version 3.
const INIT: [u8; 9] = [0, 0, 0, 5, 1, 0, 0, 0, 3];

fuzz_target!(|data: &[u8]| {
    let dir = TempDir::new();
    runtime().block_on(async {
        let unit = unit(dir.path());
        let (client, server) = tokio::io::duplex(64 * 1024);
        unitd::sftp::serve(unit, server, Box::pin(tokio::io::sink())).await;
        let (mut rx, mut tx) = tokio::io::split(client);
        // Drain the replies while sending, so neither side waits on the other.
        let replies = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = rx.read_to_end(&mut sink).await;
        });
        let _ = tx.write_all(&INIT).await;
        let _ = tx.write_all(data).await;
        let _ = tx.shutdown().await;
        // The server ends its session at EOF and closes its end.
        let _ = replies.await;
    });
});
