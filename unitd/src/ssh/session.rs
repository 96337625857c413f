//! One SSH connection: authentication, then the three doors.
//!
//! - exec (`ssh admin@unit images --json`) -> [`crate::commands`]
//! - shell with a pty (`ssh admin@unit`) -> the dashboard
//! - subsystem `sftp` (sftp, scp) -> [`crate::sftp`]
//!
//! Each channel gets a pump as it opens ([`super::channel`]), so no channel
//! can hold up the connection; then it is handed to its door's task, which
//! sends exit-status before EOF and close. Requests we do not serve (x11,
//! env, agent and port forwarding) are answered with failure at once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use russh::keys::HashAlg;
use russh::server::{
    Auth, ChannelOpenHandle, Msg, Response, Session as RusshSession, VerifiedPublicKey,
};
use russh::{Channel, ChannelId, ChannelMsg, MethodKind, MethodSet};
use tokio::sync::{mpsc, oneshot};

use super::auth;
use super::authorized_keys::{KeyOptions, Run};
use super::channel::{self, Backpressure, Door, Slot};
use crate::commands::{self, Io, Stdin, StdinMsg};
use crate::dashboard;
use crate::limited;
use crate::unit::Unit;

/// Channels one connection may have open at once.
const MAX_CHANNELS: usize = 10;

/// How far each door may fall behind the client (see [`channel`]). SFTP: a
/// client has at most its pipeline outstanding (OpenSSH: 64 requests of up
/// to 255 KiB), so far more than that is a client not reading its replies.
const SFTP_BUDGET: usize = 64 << 20;
/// A command's stdin (`upload < file`) is held back at disk speed.
const EXEC_BUDGET: usize = 8 << 20;
const PTY_BUDGET: usize = 1 << 20;

pub struct Session {
    unit: Arc<Unit>,
    peer: SocketAddr,
    authed: Option<oneshot::Sender<()>>,
    /// Opened, pumped, not yet given to a door.
    channels: HashMap<ChannelId, Door>,
    /// Every channel's slot, until the client closes it.
    slots: HashMap<ChannelId, Arc<Slot>>,
    ptys: HashMap<ChannelId, dashboard::Pty>,
    resizes: HashMap<ChannelId, mpsc::UnboundedSender<(u16, u16)>>,
    /// SFTP channels: they need an exit-status when the client is done.
    sftp: HashSet<ChannelId>,
    /// Channels held now (see [`Slot`]).
    open: Arc<AtomicUsize>,
    /// What the key's authorized_keys line allows (all for the pairing code).
    access: KeyOptions,
}

impl Session {
    pub fn new(unit: Arc<Unit>, peer: SocketAddr, authed: oneshot::Sender<()>) -> Session {
        Session {
            unit,
            peer,
            authed: Some(authed),
            channels: HashMap::new(),
            slots: HashMap::new(),
            ptys: HashMap::new(),
            resizes: HashMap::new(),
            sftp: HashSet::new(),
            open: Arc::new(AtomicUsize::new(0)),
            access: KeyOptions::default(),
        }
    }

    /// Methods worth trying next: passwords only while pairing is on.
    fn reject(&self) -> Auth {
        let methods: &[MethodKind] = if self.unit.keys.pairing() {
            &[
                MethodKind::PublicKey,
                MethodKind::KeyboardInteractive,
                MethodKind::Password,
            ]
        } else {
            &[MethodKind::PublicKey]
        };
        Auth::Reject {
            proceed_with_methods: Some(MethodSet::from(methods)),
            partial_success: false,
        }
    }

    fn is_admin(&self, user: &str) -> bool {
        user == self.unit.config.user
    }

    fn pairing_login(&self, user: &str, code: &str) -> Auth {
        if self.is_admin(user) && self.unit.keys.check_code(code) {
            tracing::info!(peer = %self.peer, "admin logged in with the pairing code");
            Auth::Accept
        } else {
            limited!(info, "login refused", peer = %self.peer, user, "pairing code refused");
            self.reject()
        }
    }

    fn take(&mut self, id: ChannelId) -> Option<Door> {
        self.channels.remove(&id)
    }
}

impl russh::server::Handler for Session {
    type Error = russh::Error;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(self.reject())
    }

    async fn auth_publickey_offered(
        &mut self,
        user: &str,
        offer: russh::server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a probe: say whether a signature is worth making. Authorization
        // happens in auth_publickey, after russh verified the signature.
        let ip = self.peer.ip();
        if self.is_admin(user)
            && auth::authorize(&self.unit, offer.public_key, offer.algorithm, ip)
                .await
                .is_ok()
        {
            Ok(Auth::Accept)
        } else {
            Ok(self.reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fp = key.public_key.fingerprint(HashAlg::Sha256);
        let grant = match self.is_admin(user) {
            true => {
                auth::authorize(&self.unit, key.public_key, key.algorithm, self.peer.ip()).await
            }
            false => Err("not the admin user".into()),
        };
        match grant {
            Ok(grant) => {
                tracing::info!(peer = %self.peer, key = %fp, line = grant.line, "admin logged in");
                self.access = grant.options;
                Ok(Auth::Accept)
            }
            Err(why) => {
                limited!(info, "login refused", peer = %self.peer, user, key = %fp, "public key refused: {why}");
                Ok(self.reject())
            }
        }
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        Ok(self.pairing_login(user, password))
    }

    async fn auth_keyboard_interactive<'a>(
        &'a mut self,
        user: &str,
        _submethods: &str,
        response: Option<Response<'a>>,
    ) -> Result<Auth, Self::Error> {
        if !self.unit.keys.pairing() {
            return Ok(self.reject());
        }
        match response {
            None => Ok(Auth::Partial {
                name: "copyunit pairing".into(),
                instructions:
                    "This unit has no SSH key yet. Type the pairing code shown on its screen."
                        .into(),
                prompts: vec![("Pairing code: ".into(), false)].into(),
            }),
            Some(mut answers) => {
                let code = answers
                    .next()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Ok(self.pairing_login(user, &code))
            }
        }
    }

    async fn auth_succeeded(&mut self, _session: &mut RusshSession) -> Result<(), Self::Error> {
        if let Some(tx) = self.authed.take() {
            let _ = tx.send(());
        }
        Ok(())
    }

    async fn authentication_banner(&mut self) -> Result<Option<String>, Self::Error> {
        Ok(self.unit.keys.pairing().then(|| {
            format!(
                "copyunit {}: no SSH key installed yet. Log in as {} with the pairing code shown on the unit's screen, then run `keys add`.\n",
                self.unit.config.name, self.unit.config.user
            )
        }))
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        self.slots.retain(|_, s| !s.is_released());
        let Some(slot) = Slot::take(&self.open, MAX_CHANNELS) else {
            limited!(info, "channel refused", peer = %self.peer, "refused a channel: {MAX_CHANNELS} open already");
            drop(reply); // rejects
            return Ok(());
        };
        let id = channel.id();
        self.slots.insert(id, slot.clone());
        self.channels
            .insert(id, channel::open(channel, session.handle(), slot));
        reply.accept().await;
        Ok(())
    }

    async fn channel_close(
        &mut self,
        channel: ChannelId,
        _session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        self.channels.remove(&channel);
        self.ptys.remove(&channel);
        self.resizes.remove(&channel);
        self.sftp.remove(&channel);
        if let Some(slot) = self.slots.remove(&channel) {
            slot.release();
        }
        Ok(())
    }

    async fn channel_eof(
        &mut self,
        channel: ChannelId,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        // An SFTP client sends EOF once it has every reply it waited for.
        // scp judges the transfer by the exit status: send 0, then close.
        if self.sftp.remove(&channel) {
            session.exit_status_request(channel, 0)?;
            session.eof(channel)?;
            session.close(channel)?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        channel: ChannelId,
        term: &str,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        if !self.access.pty {
            tracing::info!(peer = %self.peer, "pty refused: the key's line says no-pty (or restrict)");
            session.channel_failure(channel)?;
            return Ok(());
        }
        if !self.channels.contains_key(&channel) {
            // Already given to a door: too late for a terminal.
            session.channel_failure(channel)?;
            return Ok(());
        }
        let (cols, rows) = dashboard::bound_size(col_width, row_height);
        self.ptys.insert(
            channel,
            dashboard::Pty {
                term: term.chars().take(64).collect(),
                cols,
                rows,
            },
        );
        session.channel_success(channel)?;
        Ok(())
    }

    async fn window_change_request(
        &mut self,
        channel: ChannelId,
        col_width: u32,
        row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        let (cols, rows) = dashboard::bound_size(col_width, row_height);
        if let Some(tx) = self.resizes.get(&channel) {
            let _ = tx.send((cols, rows));
        }
        if let Some(p) = self.ptys.get_mut(&channel) {
            p.cols = cols;
            p.rows = rows;
        }
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        // Nothing here draws on X: say so, or paramiko's request_x11 hangs.
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        _variable_name: &str,
        _variable_value: &str,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        // Accepted by no one (OpenSSH's default AcceptEnv is empty).
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        let forced = match self.access.run(None) {
            Run::Refused(why) => {
                tracing::info!(peer = %self.peer, "shell refused: {why}");
                session.channel_failure(channel)?;
                return Ok(());
            }
            Run::Forced(c) => Some(c),
            Run::Requested(_) => None,
        };
        let Some(door) = self.take(channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        let unit = self.unit.clone();
        if let Some(c) = forced {
            tracing::info!(peer = %self.peer, "forced command: {c} (the client asked for a shell)");
            door.input.set_budget(Backpressure::Hold, EXEC_BUDGET);
            tokio::spawn(run_command(unit, door, Some(c)));
            return Ok(());
        }
        match self.ptys.get(&channel).cloned() {
            Some(pty) => {
                door.input.set_budget(Backpressure::Hold, PTY_BUDGET);
                let (tx, rx) = mpsc::unbounded_channel();
                self.resizes.insert(channel, tx);
                tokio::spawn(dashboard::run(unit, door, pty, rx));
            }
            None => {
                // No terminal: there is nothing to draw on. Say what to do.
                door.input.set_budget(Backpressure::Hold, EXEC_BUDGET);
                tokio::spawn(run_command(unit, door, None));
            }
        }
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        data: &[u8],
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        let line = String::from_utf8_lossy(data).into_owned();
        tracing::info!(peer = %self.peer, "exec: {line}");
        let line = match self.access.run(Some(&line)) {
            Run::Requested(line) => line,
            Run::Forced(c) => {
                tracing::info!(peer = %self.peer, "forced command: {c} (SSH_ORIGINAL_COMMAND: {line})");
                Some(c)
            }
            Run::Refused(why) => {
                tracing::info!(peer = %self.peer, "exec refused: {why}");
                session.channel_failure(channel)?;
                return Ok(());
            }
        };
        let Some(door) = self.take(channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        door.input.set_budget(Backpressure::Hold, EXEC_BUDGET);
        tokio::spawn(run_command(self.unit.clone(), door, line));
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut RusshSession,
    ) -> Result<(), Self::Error> {
        if name != "sftp" || !self.access.sftp() {
            session.channel_failure(channel)?;
            return Ok(());
        }
        let Some(door) = self.take(channel) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        door.input.set_budget(Backpressure::Close, SFTP_BUDGET);
        self.sftp.insert(channel);
        tracing::info!(peer = %self.peer, "sftp session");
        let stderr = Box::pin(door.output.writer(Some(1)));
        crate::sftp::serve(self.unit.clone(), door.into_stream(), stderr).await;
        Ok(())
    }
}

/// Runs one exec command on its channel: stdin from the channel, stdout and
/// stderr back, then exit-status, EOF, close - in that order.
async fn run_command(unit: Arc<Unit>, door: Door, line: Option<String>) {
    let Door {
        input: mut read,
        output: write,
    } = door;
    let (tx, rx) = mpsc::channel(64);
    // Drain the channel always: an undrained channel stalls the connection.
    let pump = tokio::spawn(async move {
        let mut tx = Some(tx);
        while let Some(msg) = read.wait().await {
            match msg {
                ChannelMsg::Data { data } => {
                    if let Some(t) = &tx
                        && t.send(StdinMsg::Data(data)).await.is_err()
                    {
                        tx = None;
                    }
                }
                ChannelMsg::Eof => {
                    if let Some(t) = tx.take() {
                        let _ = t.send(StdinMsg::Eof).await;
                    }
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        tracing::debug!("exec channel input ended");
    });
    let mut stdout = write.writer(None);
    let mut stderr = write.writer(Some(1));
    let code = {
        let mut io = Io {
            stdin: Stdin::new(rx),
            stdout: &mut stdout,
            stderr: &mut stderr,
        };
        match line {
            Some(line) if is_legacy_scp(&line) => legacy_scp(&mut io).await,
            Some(line) if line.trim().is_empty() => no_terminal(&unit, &mut io).await,
            Some(line) => commands::run(&unit, &line, &mut io).await,
            None => no_terminal(&unit, &mut io).await,
        }
    };
    use tokio::io::AsyncWriteExt;
    let _ = stdout.flush().await;
    let _ = stderr.flush().await;
    write.finish(code).await;
    pump.abort();
}

async fn no_terminal(unit: &Arc<Unit>, io: &mut Io<'_>) -> u32 {
    use tokio::io::AsyncWriteExt;
    let text = format!(
        "{}\nNo terminal: the dashboard needs one (`ssh -t`). Commands:\n\n{}",
        unit.config.name,
        commands::help()
    );
    let _ = io.stdout.write_all(text.as_bytes()).await;
    commands::EXIT_OK
}

fn is_legacy_scp(line: &str) -> bool {
    let mut words = line.split_whitespace();
    words.next() == Some("scp") && words.any(|w| w.starts_with("-t") || w.starts_with("-f"))
}

/// `scp -O` speaks the old rcp protocol over exec. We answer in that
/// protocol (a `\x01` line is an error the client prints) and explain.
async fn legacy_scp(io: &mut Io<'_>) -> u32 {
    use tokio::io::AsyncWriteExt;
    let msg = "copyunit does not speak the legacy scp protocol (scp -O): use scp without -O (SFTP mode, the default since OpenSSH 9.0) or sftp\n";
    let _ = io
        .stdout
        .write_all(format!("\x01scp: {msg}").as_bytes())
        .await;
    let _ = io.stderr.write_all(msg.as_bytes()).await;
    commands::EXIT_FAILED
}
