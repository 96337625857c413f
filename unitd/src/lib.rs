//! unitd: the copy unit daemon.
//!
//! One model of the unit ([`unit::Unit`]) and three SSH doors onto it:
//! exec commands ([`commands`]), the pty dashboard ([`dashboard`]) and SFTP
//! ([`sftp`]). See ARCHITECTURE.md for the map and its invariants.

pub mod commands;
pub mod config;
pub mod dashboard;
pub mod jobs;
pub mod optical;
pub mod sftp;
pub mod ssh;
pub mod store;
pub mod unit;

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

/// Runs unitd with the given configuration until the listener fails.
pub async fn run(config: config::Config) -> Result<ExitCode> {
    let store = store::Store::open(&config.store, config.volatile_store)
        .with_context(|| format!("opening the image store at {}", config.store.display()))?;
    let host_key = ssh::hostkey::load_or_create(&config.host_key)?;
    let fingerprint = ssh::hostkey::fingerprint(&host_key);
    let keys = ssh::auth::Keys::new(&config.authorized_keys);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let unit = unit::Unit::new(config, store, keys, fingerprint.clone());
    unit.spawn_publisher();
    unit.spawn_drive_watcher();
    announce(&unit, &listener);
    if let Some(tty) = unit.config.console.clone() {
        let (u, control) = (unit.clone(), unit.config.console_control);
        tokio::spawn(async move {
            if let Err(e) = dashboard::console::run(u, &tty, control).await {
                tracing::warn!("no dashboard on {}: {e}", tty.display());
            }
        });
    }
    tokio::select! {
        r = ssh::server::serve(unit.clone(), host_key, listener) => r.map(|()| ExitCode::SUCCESS),
        _ = shutdown_signal() => {
            tracing::info!("stopping");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What the person at the unit needs to reach it: logged, and on stderr
/// (which the appliance's init shows on the console).
fn announce(unit: &Arc<unit::Unit>, listener: &tokio::net::TcpListener) {
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or(unit.config.listen.port());
    tracing::info!(
        name = %unit.config.name,
        port,
        fingerprint = %unit.host_fingerprint,
        store = %unit.config.store.display(),
        "unitd {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr().map(|a| a.to_string()).unwrap_or_default()
    );
    eprintln!(
        "copyunit: ssh {}@<address> -p {port}   host key {}",
        unit.config.user, unit.host_fingerprint
    );
    if let Some(code) = unit.keys.pairing_code() {
        tracing::warn!("no authorized SSH key: pairing code {code}");
        eprintln!(
            "copyunit: no SSH key installed yet. Pairing code: {code}\n          (ssh {}@<address>, type the code, then `keys add < ~/.ssh/id_ed25519.pub`)",
            unit.config.user
        );
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
