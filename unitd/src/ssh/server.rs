//! The SSH server: our own accept loop around russh, for the limits russh
//! does not have (OpenSSH's MaxStartups, LoginGraceTime, per-source limits),
//! and the russh settings that make SFTP fast.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use russh::keys::PrivateKey;
use russh::{MethodKind, MethodSet, Preferred};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::session::Session;
use crate::unit::Unit;

/// Settings measured to matter for throughput (see docs/notes): no Nagle,
/// big windows, 64 KiB packets, no compression.
pub fn russh_config(unit: &Unit, host_key: PrivateKey) -> russh::server::Config {
    let limits = &unit.config.limits;
    russh::server::Config {
        server_id: russh::SshId::Standard(
            format!("SSH-2.0-copyunit_{}", env!("CARGO_PKG_VERSION")).into(),
        ),
        methods: MethodSet::from(
            &[
                MethodKind::PublicKey,
                MethodKind::KeyboardInteractive,
                MethodKind::Password,
            ][..],
        ),
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        keys: vec![host_key],
        window_size: 8 * 1024 * 1024,
        maximum_packet_size: 65535,
        channel_buffer_size: 256,
        event_buffer_size: 256,
        max_auth_attempts: limits.max_auth_attempts,
        // Dead peers are found by keepalives; a quiet upload is not dead.
        inactivity_timeout: None,
        keepalive_interval: Some(limits.keepalive),
        keepalive_max: 4,
        nodelay: true,
        preferred: Preferred {
            // russh leaves aes128-gcm out by default; OpenSSH offers it and it
            // is among the fastest on CPUs with AES-NI.
            cipher: std::borrow::Cow::Borrowed(&[
                russh::cipher::CHACHA20_POLY1305,
                russh::cipher::AES_256_GCM,
                russh::cipher::AES_128_GCM,
                russh::cipher::AES_256_CTR,
                russh::cipher::AES_192_CTR,
                russh::cipher::AES_128_CTR,
            ]),
            compression: std::borrow::Cow::Borrowed(&[russh::compression::NONE]),
            // server-sig-algs (and host key algorithms): no ssh-rsa (SHA-1).
            key: std::borrow::Cow::Borrowed(super::auth::USER_KEY_ALGORITHMS),
            ..Preferred::default()
        },
        ..Default::default()
    }
}

/// Counts connections per source address.
#[derive(Default)]
struct PerAddress(Mutex<HashMap<IpAddr, usize>>);

impl PerAddress {
    fn try_add(&self, ip: IpAddr, max: usize) -> bool {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= max {
            return false;
        }
        *n += 1;
        true
    }
    fn remove(&self, ip: IpAddr) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }
}

/// Accepts connections until the listener fails.
pub async fn serve(unit: Arc<Unit>, host_key: PrivateKey, listener: TcpListener) -> Result<()> {
    let config = Arc::new(russh_config(&unit, host_key));
    let unauthenticated = Arc::new(Semaphore::new(unit.config.limits.max_unauthenticated));
    let per_address = Arc::new(PerAddress::default());
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let limits = &unit.config.limits;
        let Ok(permit) = unauthenticated.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "refused: {} connections already logging in", limits.max_unauthenticated);
            continue;
        };
        if !per_address.try_add(peer.ip(), limits.max_per_address) {
            tracing::warn!(%peer, "refused: {} connections from this address already", limits.max_per_address);
            continue;
        }
        let (unit, config, per_address) = (unit.clone(), config.clone(), per_address.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(unit, config, socket, peer, permit).await {
                tracing::debug!(%peer, "connection ended: {e:#}");
            }
            per_address.remove(peer.ip());
        });
    }
}

async fn connection(
    unit: Arc<Unit>,
    config: Arc<russh::server::Config>,
    socket: TcpStream,
    peer: SocketAddr,
    permit: OwnedSemaphorePermit,
) -> Result<()> {
    let grace = unit.config.limits.login_grace;
    let (authed_tx, authed_rx) = oneshot::channel();
    let handler = Session::new(unit, peer, authed_tx);
    let running = tokio::time::timeout(grace, russh::server::run_stream(config, socket, handler))
        .await
        .context("no SSH greeting within the login grace time")?
        .context("SSH handshake")?;
    let handle = running.handle();
    let mut running = std::pin::pin!(running);
    tokio::select! {
        r = &mut running => return r.context("session"),
        r = tokio::time::timeout(grace, authed_rx) => {
            if r.is_err() {
                tracing::info!(%peer, "disconnecting: not logged in within {}s", grace.as_secs());
                let _ = handle
                    .disconnect(russh::Disconnect::ByApplication, "login grace time exceeded".into(), "en".into())
                    .await;
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut running).await;
                return Ok(());
            }
        }
    }
    drop(permit);
    running.await.context("session")
}
