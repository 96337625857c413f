//! The pty door: `ssh admin@unit` with a terminal.
//!
//! Until the dashboard lands this prints a short status screen and exits 0.

use std::sync::Arc;

use russh::Channel;
use russh::server::Msg;
use tokio::sync::mpsc;

use crate::unit::Unit;

/// The terminal the client asked for.
#[derive(Debug, Clone)]
pub struct Pty {
    pub term: String,
    pub cols: u16,
    pub rows: u16,
}

pub async fn run(
    unit: Arc<Unit>,
    channel: Channel<Msg>,
    _pty: Pty,
    _resize: mpsc::UnboundedReceiver<(u16, u16)>,
) {
    let (mut read, write) = channel.split();
    let drain = tokio::spawn(async move { while read.wait().await.is_some() {} });
    let snap = unit.snapshot();
    let text = crate::commands::status_screen(&snap).replace('\n', "\r\n");
    let _ = write.data_bytes(text.into_bytes()).await;
    let _ = write.exit_status(0).await;
    let _ = write.eof().await;
    let _ = write.close().await;
    drain.abort();
}
