//! The SSH server: our own accept loop around russh, for the limits russh
//! does not have (OpenSSH's MaxStartups, LoginGraceTime, per-source limits),
//! and the russh settings that make SFTP fast.
//!
//! Every accepted socket gets TCP_NODELAY (russh sets it only in its own
//! accept loop; without it libssh2 clients wait ~40 ms per round trip),
//! TCP keepalive and a TCP_USER_TIMEOUT, so a write to a vanished client
//! gives up instead of blocking its session for a quarter of an hour.
//!
//! The socket is wrapped in a [`Conn`] that the server can close from
//! outside: at the login deadline, or to make room for a newcomer, the
//! socket itself is dropped (whatever russh is doing, a key exchange
//! included), and only then are its slots given back.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use anyhow::{Context as _, Result};
use russh::keys::PrivateKey;
use russh::{MethodKind, MethodSet, Preferred};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::logs;
use super::session::Session;
use crate::config::Limits;
use crate::limited;
use crate::unit::Unit;

/// Unanswered keepalives before a client counts as gone.
const KEEPALIVE_MAX: usize = 4;

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
        keepalive_max: KEEPALIVE_MAX,
        // Only used by russh's own accept loop; ours sets it in `tune`.
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

/// Socket options for one accepted connection.
fn tune(socket: &TcpStream, limits: &Limits) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    socket.set_nodelay(true)?;
    setsockopt(socket, sockopt::KeepAlive, &true).map_err(io::Error::from)?;
    // Data unacknowledged this long: the client is gone (keepalives cannot
    // tell while russh waits for the socket to take a write).
    let ms = limits
        .keepalive
        .saturating_mul(KEEPALIVE_MAX as u32 + 1)
        .as_millis()
        .min(u32::MAX as u128) as u32;
    setsockopt(socket, sockopt::TcpUserTimeout, &ms).map_err(io::Error::from)?;
    Ok(())
}

/// Accepts one connection and sets its socket options.
async fn accept(listener: &TcpListener, limits: &Limits) -> io::Result<(TcpStream, SocketAddr)> {
    let (socket, peer) = listener.accept().await?;
    if let Err(e) = tune(&socket, limits) {
        tracing::debug!(%peer, "socket options: {e}");
    }
    Ok((socket, peer))
}

// ---------------------------------------------------------------------------
// Admission: per-address limit, MaxStartups-style early drop, fairness.

/// OpenSSH's `MaxStartups start:rate:full`, scaled to our limit on
/// connections that are logging in: past `start` of them, a newcomer is
/// refused with a probability rising from `rate`% to 100% at `full`.
#[derive(Debug, Clone, Copy)]
pub struct Startups {
    pub start: usize,
    pub rate: u32,
    pub full: usize,
}

impl Startups {
    /// OpenSSH's 10:30:100: early drop starts at 10 connections logging in
    /// (at least half of a smaller `full`), so an admin's script running
    /// as many parallel uploads as `max_per_address` allows one address is
    /// never dropped early.
    pub fn for_limit(full: usize) -> Startups {
        let full = full.max(1);
        Startups {
            start: full.min(10).max(full.div_ceil(2)),
            rate: 30,
            full,
        }
    }

    /// Percent chance of refusing a newcomer with `pending` logging in.
    fn drop_percent(&self, pending: usize) -> u32 {
        if pending < self.start {
            return 0;
        }
        if pending >= self.full {
            return 100;
        }
        let span = (self.full - self.start).max(1) as u64;
        let over = (pending - self.start) as u64;
        (self.rate as u64 + (100 - self.rate as u64) * over / span).min(100) as u32
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    PerAddress,
    EarlyDrop,
    Full,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    total: usize,
    pending: usize,
}

#[derive(Default)]
struct State {
    next: u64,
    addrs: HashMap<IpAddr, Counts>,
    /// Connections not logged in yet, oldest first.
    pending: BTreeMap<u64, (IpAddr, Weak<Shared>)>,
}

/// Who may connect now.
struct Admission {
    max_per_address: usize,
    startups: Startups,
    state: Mutex<State>,
}

/// One connection's place in [`Admission`]: given back when dropped.
struct Ticket {
    id: u64,
    ip: IpAddr,
    admission: Arc<Admission>,
}

impl Admission {
    fn new(limits: &Limits) -> Arc<Admission> {
        Arc::new(Admission {
            max_per_address: limits.max_per_address,
            startups: Startups::for_limit(limits.max_unauthenticated),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a connection from `ip` (or says why not). `roll` is a random
    /// number in 0..100. A newcomer from an address holding none of the
    /// connections logging in is never dropped early, and when all slots
    /// are taken it takes the oldest one of the address holding the most:
    /// a flood from a few addresses cannot lock the admin out. The
    /// returned connection, if any, must be closed by the caller.
    fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        roll: u32,
        conn: Weak<Shared>,
    ) -> Result<(Ticket, Option<Arc<Shared>>), Refusal> {
        let mut st = self.lock();
        let mine = st.addrs.get(&ip).copied().unwrap_or_default();
        if mine.total >= self.max_per_address {
            return Err(Refusal::PerAddress);
        }
        let pending = st.pending.len();
        let mut victim = None;
        if pending >= self.startups.full {
            // The address holding the most, if giving one of its slots to
            // this one makes the shares fairer.
            let top = st
                .addrs
                .iter()
                .filter(|(a, c)| **a != ip && c.pending >= mine.pending + 2)
                .max_by_key(|(_, c)| c.pending)
                .map(|(a, _)| *a);
            let Some(top) = top else {
                return Err(Refusal::Full);
            };
            let oldest = st
                .pending
                .iter()
                .find(|(_, (a, _))| *a == top)
                .map(|(id, (_, w))| (*id, w.clone()));
            let Some((id, weak)) = oldest else {
                return Err(Refusal::Full);
            };
            // Its slot is the newcomer's from now on, whether or not the
            // socket is still there to close.
            st.pending.remove(&id);
            if let Some(c) = st.addrs.get_mut(&top) {
                c.pending = c.pending.saturating_sub(1);
            }
            victim = weak.upgrade();
        } else if mine.pending > 0 && roll < self.startups.drop_percent(pending) {
            return Err(Refusal::EarlyDrop);
        }
        st.next += 1;
        let id = st.next;
        let c = st.addrs.entry(ip).or_default();
        c.total += 1;
        c.pending += 1;
        st.pending.insert(id, (ip, conn));
        Ok((
            Ticket {
                id,
                ip,
                admission: self.clone(),
            },
            victim,
        ))
    }
}

impl Ticket {
    /// Logged in: no longer one of the connections logging in.
    fn logged_in(&self) {
        let mut st = self.admission.lock();
        if st.pending.remove(&self.id).is_some()
            && let Some(c) = st.addrs.get_mut(&self.ip)
        {
            c.pending = c.pending.saturating_sub(1);
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut st = self.admission.lock();
        let was_pending = st.pending.remove(&self.id).is_some();
        if let Some(c) = st.addrs.get_mut(&self.ip) {
            c.total = c.total.saturating_sub(1);
            if was_pending {
                c.pending = c.pending.saturating_sub(1);
            }
            if c.total == 0 {
                st.addrs.remove(&self.ip);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// A socket the server can close from outside.

struct Inner {
    /// The socket and its ticket; None once closed.
    live: Option<(TcpStream, Option<Ticket>)>,
    read_waker: Option<Waker>,
    write_waker: Option<Waker>,
}

struct Shared(Mutex<Inner>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Closes the socket now and gives back its slots; russh's next read or
    /// write fails, so its session ends.
    fn close(&self) {
        let (live, r, w) = {
            let mut inner = self.lock();
            (
                inner.live.take(),
                inner.read_waker.take(),
                inner.write_waker.take(),
            )
        };
        drop(live);
        for w in [r, w].into_iter().flatten() {
            w.wake();
        }
    }

    fn logged_in(&self) {
        if let Some((_, Some(t))) = &self.lock().live {
            t.logged_in();
        }
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server")
}

/// The stream russh gets.
struct Conn(Arc<Shared>);

impl Drop for Conn {
    fn drop(&mut self) {
        self.0.close();
    }
}

fn remember(slot: &mut Option<Waker>, cx: &Context<'_>) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        *slot = Some(cx.waker().clone());
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let mut inner = self.0.lock();
        let Some((s, _)) = inner.live.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let r = Pin::new(s).poll_read(cx, buf);
        if r.is_pending() {
            remember(&mut inner.read_waker, cx);
        }
        r
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut inner = self.0.lock();
        let Some((s, _)) = inner.live.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let r = Pin::new(s).poll_write(cx, buf);
        if r.is_pending() {
            remember(&mut inner.write_waker, cx);
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.0.lock();
        let Some((s, _)) = inner.live.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        let r = Pin::new(s).poll_flush(cx);
        if r.is_pending() {
            remember(&mut inner.write_waker, cx);
        }
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut inner = self.0.lock();
        let Some((s, _)) = inner.live.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let r = Pin::new(s).poll_shutdown(cx);
        if r.is_pending() {
            remember(&mut inner.write_waker, cx);
        }
        r
    }
}

// ---------------------------------------------------------------------------

/// Accepts connections until the listener fails.
pub async fn serve(unit: Arc<Unit>, host_key: PrivateKey, listener: TcpListener) -> Result<()> {
    let config = Arc::new(russh_config(&unit, host_key));
    let limits = unit.config.limits.clone();
    let admission = Admission::new(&limits);
    let mut report = tokio::time::interval(logs::INTERVAL);
    loop {
        let (socket, peer) = tokio::select! {
            r = accept(&listener, &limits) => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    limited!(warn, "accept failed", "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = report.tick() => {
                logs::report();
                continue;
            }
        };
        let deadline = Instant::now() + limits.login_grace;
        let shared = Arc::new(Shared(Mutex::new(Inner {
            live: None,
            read_waker: None,
            write_waker: None,
        })));
        let roll = rand::random_range(0..100u32);
        let (ticket, victim) = match admission.admit(peer.ip(), roll, Arc::downgrade(&shared)) {
            Ok(x) => x,
            Err(why) => {
                let text = match why {
                    Refusal::PerAddress => format!(
                        "{} connections from this address already",
                        limits.max_per_address
                    ),
                    Refusal::EarlyDrop => "too many connections logging in (early drop)".into(),
                    Refusal::Full => format!(
                        "{} connections already logging in",
                        limits.max_unauthenticated
                    ),
                };
                limited!(warn, "refused", %peer, "refused: {text}");
                continue; // dropping the socket closes it
            }
        };
        shared.lock().live = Some((socket, Some(ticket)));
        if let Some(v) = victim {
            limited!(
                info,
                "evicted",
                %peer,
                "closed the oldest login of the address holding the most, to let this one in"
            );
            v.close();
        }
        let (unit, config) = (unit.clone(), config.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(unit, config, shared, peer, deadline).await {
                tracing::debug!(%peer, "connection ended: {e:#}");
            }
        });
    }
}

async fn connection(
    unit: Arc<Unit>,
    config: Arc<russh::server::Config>,
    shared: Arc<Shared>,
    peer: SocketAddr,
    deadline: Instant,
) -> Result<()> {
    let grace = unit.config.limits.login_grace;
    let (authed_tx, authed_rx) = oneshot::channel();
    let handler = Session::new(unit, peer, authed_tx);
    let late = |shared: &Shared| {
        limited!(
            info,
            "login grace",
            %peer,
            "disconnecting: not logged in within {}s",
            grace.as_secs()
        );
        shared.close();
    };
    let conn = Conn(shared.clone());
    let running =
        match tokio::time::timeout_at(deadline, russh::server::run_stream(config, conn, handler))
            .await
        {
            Ok(r) => r.context("SSH handshake")?,
            Err(_) => {
                late(&shared);
                return Ok(());
            }
        };
    let mut running = std::pin::pin!(running);
    tokio::select! {
        r = &mut running => return r.context("session"),
        r = tokio::time::timeout_at(deadline, authed_rx) => match r {
            Ok(Ok(())) => shared.logged_in(),
            Ok(Err(_)) => {} // the session is ending
            Err(_) => {
                late(&shared);
                // The socket is gone; russh notices at its next read.
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut running).await;
                return Ok(());
            }
        }
    }
    running.await.context("session")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_unauthenticated: 16,
            max_per_address: 10,
            login_grace: Duration::from_secs(60),
            max_auth_attempts: 6,
            keepalive: Duration::from_secs(30),
        }
    }

    #[tokio::test]
    async fn tcp_nodelay_is_set_on_every_socket_our_accept_loop_takes() {
        use nix::sys::socket::{getsockopt, sockopt};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move { TcpStream::connect(addr).await.unwrap() });
        let (socket, _) = accept(&listener, &limits()).await.unwrap();
        let _client = client.await.unwrap();
        assert!(socket.nodelay().unwrap(), "TCP_NODELAY");
        assert!(
            getsockopt(&socket, sockopt::KeepAlive).unwrap(),
            "SO_KEEPALIVE"
        );
        assert_eq!(
            getsockopt(&socket, sockopt::TcpUserTimeout).unwrap(),
            150_000,
            "TCP_USER_TIMEOUT = 5 keepalive intervals"
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn dummy() -> Arc<Shared> {
        Arc::new(Shared(Mutex::new(Inner {
            live: None,
            read_waker: None,
            write_waker: None,
        })))
    }

    #[test]
    fn early_drop_rises_from_rate_at_start_to_all_at_full() {
        let s = Startups::for_limit(16);
        assert_eq!((s.start, s.rate, s.full), (10, 30, 16));
        assert_eq!(s.drop_percent(9), 0);
        assert_eq!(s.drop_percent(10), 30);
        assert_eq!(s.drop_percent(13), 65);
        assert_eq!(s.drop_percent(16), 100);
        assert_eq!(Startups::for_limit(1).drop_percent(0), 0);
        assert_eq!(Startups::for_limit(1).drop_percent(1), 100);
    }

    #[test]
    fn two_flooding_addresses_cannot_lock_out_a_third() {
        let adm = Admission::new(&limits());
        let mut held = Vec::new();
        let (a, b, admin) = (ip("127.0.0.2"), ip("127.0.0.3"), ip("127.0.0.1"));
        // The attackers fill every slot (rolls of 99: never dropped early).
        for i in 0..16 {
            let from = if i % 2 == 0 { a } else { b };
            let conn = dummy();
            held.push((adm.admit(from, 99, Arc::downgrade(&conn)).unwrap(), conn));
        }
        for from in [a, b] {
            let conn = dummy();
            assert_eq!(
                adm.admit(from, 99, Arc::downgrade(&conn)).err(),
                Some(Refusal::Full)
            );
        }
        // Past `start`, an address already logging in is dropped early...
        let adm2 = Admission::new(&limits());
        let mut held2 = Vec::new();
        for i in 0..10 {
            let from = if i % 2 == 0 { a } else { b };
            let conn = dummy();
            held2.push((adm2.admit(from, 99, Arc::downgrade(&conn)).unwrap(), conn));
        }
        let conn = dummy();
        assert_eq!(
            adm2.admit(a, 0, Arc::downgrade(&conn)).err(),
            Some(Refusal::EarlyDrop)
        );
        // ... a fresh one is not.
        assert!(adm2.admit(admin, 0, Arc::downgrade(&conn)).is_ok());
        // The admin takes the oldest slot of the biggest holder when full.
        let conn = dummy();
        let (ticket, victim) = adm.admit(admin, 0, Arc::downgrade(&conn)).unwrap();
        // (a and b hold 8 each: the oldest of either.)
        let v = victim.expect("a slot is taken for the admin");
        assert!(Arc::ptr_eq(&v, &held[0].1) || Arc::ptr_eq(&v, &held[1].1));
        ticket.logged_in();
        assert_eq!(adm.lock().pending.len(), 15);
        drop(held);
        drop(ticket);
        assert!(adm.lock().addrs.is_empty(), "every slot given back");
    }

    #[test]
    fn the_per_address_limit_counts_logged_in_connections_too() {
        let mut l = limits();
        l.max_per_address = 2;
        let adm = Admission::new(&l);
        let conn = dummy();
        let (t1, _) = adm
            .admit(ip("10.0.0.1"), 99, Arc::downgrade(&conn))
            .unwrap();
        t1.logged_in();
        let (_t2, _) = adm
            .admit(ip("10.0.0.1"), 99, Arc::downgrade(&conn))
            .unwrap();
        assert_eq!(
            adm.admit(ip("10.0.0.1"), 99, Arc::downgrade(&conn)).err(),
            Some(Refusal::PerAddress)
        );
        drop(t1);
        assert!(adm.admit(ip("10.0.0.1"), 99, Arc::downgrade(&conn)).is_ok());
    }
}
