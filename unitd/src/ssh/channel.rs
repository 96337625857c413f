//! Channels that never hold up their connection.
//!
//! russh 0.65 hands each channel's input to a bounded queue, and its session
//! loop *awaits* room in that queue (server/encrypted.rs, CHANNEL_DATA and
//! every channel request). It also re-opens the client's window as soon as
//! data arrives, whether anyone read it or not. So a channel whose reader is
//! busy stops the whole connection: no more packets are read, window
//! adjusts and keepalive answers included. That is the paramiko `get()`
//! deadlock: russh-sftp answers one request at a time and waits for the
//! client's window to send a 32 KiB reply, the client has queued 512 READ
//! requests, the queue is full, and the window adjust that would free the
//! reply sits unread behind them.
//!
//! So every channel gets a pump from the moment it opens: a task that reads
//! russh's queue at once, always, and hands the messages on through an
//! unbounded queue with a byte budget. What happens when a door falls behind
//! by more than its budget is the door's choice ([`Backpressure`]):
//! - `Close`: the client is sending far more than it waits for (a sane SFTP
//!   client has at most its pipeline of requests outstanding): the channel
//!   is closed. Nothing waits, nothing can deadlock.
//! - `Hold`: a byte stream the door consumes at disk speed (`upload` from
//!   stdin): the pump waits, which is back-pressure on the connection (the
//!   only kind russh offers). It lasts only while the door is working.
//!
//! Writers fail once the channel is gone (closed by the client, or the
//! connection ended), instead of waiting for window that will never come.
//! [`Slot`] counts the channels a connection holds, including the ones
//! unitd closes itself (russh calls no handler for those).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use russh::server::{Handle, Msg};
use russh::{Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, mpsc, oneshot, watch};

use crate::limited;

/// What a door does when it falls behind by more than its budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backpressure {
    Hold,
    Close,
}

/// Bytes a message costs in the budget (its data, plus a bit for itself).
fn cost(msg: &ChannelMsg) -> usize {
    const OVERHEAD: usize = 64;
    match msg {
        ChannelMsg::Data { data } | ChannelMsg::ExtendedData { data, .. } => {
            data.len().saturating_add(OVERHEAD)
        }
        _ => OVERHEAD,
    }
}

struct Budget {
    queued: AtomicUsize,
    limit: AtomicUsize,
    hold: AtomicBool,
    drained: Notify,
}

impl Budget {
    /// Takes `cost` bytes of budget: false means over budget with `Close`.
    async fn take(&self, cost: usize) -> bool {
        loop {
            let queued = self.queued.load(Ordering::Acquire);
            // One message always fits, however big, or nothing would move.
            if queued == 0 || queued.saturating_add(cost) <= self.limit.load(Ordering::Relaxed) {
                self.queued.fetch_add(cost, Ordering::AcqRel);
                return true;
            }
            if !self.hold.load(Ordering::Relaxed) {
                return false;
            }
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.queued.load(Ordering::Acquire) != queued {
                continue;
            }
            drained.await;
        }
    }

    fn give(&self, cost: usize) {
        self.queued.fetch_sub(cost, Ordering::AcqRel);
        self.drained.notify_one();
    }
}

/// One of the channels a connection may hold (see `MAX_CHANNELS`).
/// Released once, by whichever comes first: the client closing the channel,
/// or the door that had it finishing.
pub struct Slot {
    open: Arc<AtomicUsize>,
    released: AtomicBool,
}

impl Slot {
    /// Takes a slot if fewer than `max` are held.
    pub fn take(open: &Arc<AtomicUsize>, max: usize) -> Option<Arc<Slot>> {
        open.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .ok()?;
        Some(Arc::new(Slot {
            open: open.clone(),
            released: AtomicBool::new(false),
        }))
    }

    pub fn release(&self) {
        if !self.released.swap(true, Ordering::AcqRel) {
            self.open.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Held by both halves of a door: when both are gone, the slot is free and
/// the pump closes the channel (if the door did not) and stops.
struct Done {
    slot: Arc<Slot>,
    _stop: oneshot::Sender<()>,
}

impl Drop for Done {
    fn drop(&mut self) {
        self.slot.release();
    }
}

/// A channel as a door gets it: input from its pump, output that fails once
/// the channel is gone.
pub struct Door {
    pub input: Input,
    pub output: Output,
}

/// Starts the pump of a freshly opened channel. Until a door takes it the
/// channel may buffer 1 MiB (requests before `exec` are small).
pub fn open(channel: Channel<Msg>, handle: Handle, slot: Arc<Slot>) -> Door {
    let id = channel.id();
    let (read, write) = channel.split();
    let budget = Arc::new(Budget {
        queued: AtomicUsize::new(0),
        limit: AtomicUsize::new(1 << 20),
        hold: AtomicBool::new(false),
        drained: Notify::new(),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let (closed_tx, closed_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = oneshot::channel();
    tokio::spawn(pump(
        read,
        tx,
        budget.clone(),
        closed_tx,
        stop_rx,
        handle,
        id,
    ));
    let done = Arc::new(Done {
        slot,
        _stop: stop_tx,
    });
    Door {
        input: Input {
            rx,
            budget,
            _done: done.clone(),
        },
        output: Output {
            half: write,
            closed: closed_rx,
            _done: done,
        },
    }
}

async fn pump(
    mut read: ChannelReadHalf,
    tx: mpsc::UnboundedSender<ChannelMsg>,
    budget: Arc<Budget>,
    closed: watch::Sender<bool>,
    mut stop: oneshot::Receiver<()>,
    handle: Handle,
    id: ChannelId,
) {
    let mut overflowed = false;
    loop {
        let msg = tokio::select! {
            m = read.wait() => m,
            _ = &mut stop => {
                // The door is done. Stop reading first (russh's sends to a
                // dropped queue fail at once), then close the channel in
                // case the door did not.
                drop(read);
                let _ = handle.close(id).await;
                break;
            }
        };
        let Some(msg) = msg else { break }; // the connection ended
        let is_close = matches!(msg, ChannelMsg::Close);
        if overflowed {
            if is_close {
                break;
            }
            continue; // drain, discard
        }
        let c = cost(&msg);
        let fits = tokio::select! {
            fits = budget.take(c) => fits,
            _ = &mut stop => {
                drop(read);
                let _ = handle.close(id).await;
                break;
            }
        };
        if !fits {
            overflowed = true;
            limited!(
                warn,
                "channel overflow",
                "channel {id}: the client sent more than {} MiB the server has not read yet; closing the channel",
                budget.limit.load(Ordering::Relaxed) >> 20
            );
            let _ = tx.send(ChannelMsg::Close);
            let _ = closed.send(true);
            let h = handle.clone();
            tokio::spawn(async move {
                let _ = h.close(id).await;
            });
            continue;
        }
        let _ = tx.send(msg); // a door that stopped reading: keep draining
        if is_close {
            break;
        }
    }
    let _ = closed.send(true);
}

/// A door's input: what the client sent, in order.
pub struct Input {
    rx: mpsc::UnboundedReceiver<ChannelMsg>,
    budget: Arc<Budget>,
    _done: Arc<Done>,
}

impl Input {
    /// The next message; None once the channel is gone.
    pub async fn wait(&mut self) -> Option<ChannelMsg> {
        let msg = self.rx.recv().await?;
        self.budget.give(cost(&msg));
        Some(msg)
    }

    fn poll_wait(&mut self, cx: &mut Context<'_>) -> Poll<Option<ChannelMsg>> {
        let msg = std::task::ready!(self.rx.poll_recv(cx));
        if let Some(m) = &msg {
            self.budget.give(cost(m));
        }
        Poll::Ready(msg)
    }

    /// How this door copes with falling behind by more than `limit` bytes.
    pub fn set_budget(&self, how: Backpressure, limit: usize) {
        self.budget.limit.store(limit.max(1), Ordering::Relaxed);
        self.budget
            .hold
            .store(how == Backpressure::Hold, Ordering::Relaxed);
        // A pump waiting for room re-checks with the new limit.
        self.budget.drained.notify_one();
    }
}

impl Drop for Input {
    fn drop(&mut self) {
        // No one reads any more: nothing to wait for.
        self.budget.limit.store(usize::MAX, Ordering::Relaxed);
        self.budget.drained.notify_one();
    }
}

/// A door's output half.
pub struct Output {
    half: ChannelWriteHalf<Msg>,
    closed: watch::Receiver<bool>,
    _done: Arc<Done>,
}

impl Output {
    /// A writer for stdout (`ext` None) or stderr (`Some(1)`).
    pub fn writer(&self, ext: Option<u32>) -> Writer {
        let mut closed = self.closed.clone();
        Writer {
            inner: Box::pin(self.half.make_writer_ext(ext)),
            closed: Box::pin(async move {
                let _ = closed.wait_for(|c| *c).await;
            }),
        }
    }

    /// exit-status, EOF, close: in that order, as scp and scripts need.
    pub async fn finish(&self, code: u32) {
        let _ = self.half.exit_status(code).await;
        let _ = self.half.eof().await;
        let _ = self.half.close().await;
    }
}

type BoxWrite = Pin<Box<dyn AsyncWrite + Send>>;
type BoxClosed = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Channel output that fails once the channel is gone.
pub struct Writer {
    inner: BoxWrite,
    closed: BoxClosed,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the channel is closed")
}

impl Writer {
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.closed.as_mut().poll(cx) {
            Poll::Ready(()) => Err(gone()),
            Poll::Pending => Ok(()),
        }
    }
}

impl AsyncWrite for Writer {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.check(cx)?;
        self.inner.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        self.inner.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check(cx)?;
        self.inner.as_mut().poll_shutdown(cx)
    }
}

/// A door as one byte stream (for russh-sftp): reads return 0 at EOF.
pub struct Stream {
    input: Input,
    chunks: VecDeque<Bytes>,
    eof: bool,
    writer: Writer,
    _output: Output,
}

impl Door {
    pub fn into_stream(self) -> Stream {
        let writer = self.output.writer(None);
        Stream {
            input: self.input,
            chunks: VecDeque::new(),
            eof: false,
            writer,
            _output: self.output,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if let Some(front) = this.chunks.front_mut() {
                let n = front.len().min(buf.remaining());
                buf.put_slice(&front.split_to(n));
                if front.is_empty() {
                    this.chunks.pop_front();
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            match std::task::ready!(this.input.poll_wait(cx)) {
                Some(ChannelMsg::Data { data }) => {
                    if !data.is_empty() {
                        this.chunks.push_back(data);
                    }
                }
                Some(ChannelMsg::Eof | ChannelMsg::Close) | None => this.eof = true,
                Some(_) => {}
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(limit: usize, hold: bool) -> Arc<Budget> {
        Arc::new(Budget {
            queued: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
            hold: AtomicBool::new(hold),
            drained: Notify::new(),
        })
    }

    #[tokio::test]
    async fn over_budget_a_close_door_says_so_at_once_and_a_hold_door_waits_for_its_reader() {
        let b = budget(100, false);
        assert!(b.take(1000).await, "one message always fits");
        assert!(!b.take(10).await, "then Close is refused, without waiting");
        b.give(1000);
        assert!(b.take(10).await);

        let b = budget(100, true);
        assert!(b.take(90).await);
        let waiter = tokio::spawn({
            let b = b.clone();
            async move { b.take(50).await }
        });
        tokio::task::yield_now().await;
        assert!(
            !waiter.is_finished(),
            "Hold waits while the reader is behind"
        );
        b.give(90);
        assert!(waiter.await.unwrap(), "and goes on once it caught up");
    }

    #[test]
    fn a_slot_is_released_once_whoever_releases_it() {
        let open = Arc::new(AtomicUsize::new(0));
        let a = Slot::take(&open, 2).unwrap();
        let b = Slot::take(&open, 2).unwrap();
        assert!(
            Slot::take(&open, 2).is_none(),
            "10 channels at most (here 2)"
        );
        a.release(); // the client closed it
        drop(a); // and the door finished: not counted twice
        assert_eq!(open.load(Ordering::Acquire), 1);
        drop(b); // unitd closed it itself: counted too
        assert_eq!(open.load(Ordering::Acquire), 0);
    }
}
