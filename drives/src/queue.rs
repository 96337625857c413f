//! A bounded single-producer, single-consumer queue from the reader to one
//! consumer (a drive or the hasher).
//!
//! Unlike `std::sync::mpsc::SyncSender`, a push can give up after a
//! timeout, so the reader can notice a cancel or a drive that stopped
//! taking data (a hung drive would otherwise hold every other drive back
//! forever), and the end of the stream carries its reason: finished, or
//! aborted with a message.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct State<T> {
    items: VecDeque<T>,
    /// Set once by the producer: `Ok` = finished, `Err` = aborted.
    end: Option<Result<(), String>>,
    receiver_gone: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
    cap: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panicking peer cannot leave the queue's data inconsistent: use it anyway.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The producer's end.
pub struct Tx<T>(Arc<Shared<T>>);
/// The consumer's end.
pub struct Rx<T>(Arc<Shared<T>>);

/// A queue holding at most `cap` items.
pub fn bounded<T>(cap: usize) -> (Tx<T>, Rx<T>) {
    let s = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            end: None,
            receiver_gone: false,
        }),
        changed: Condvar::new(),
        cap: cap.max(1),
    });
    (Tx(s.clone()), Rx(s))
}

/// Result of [`Tx::push`].
pub enum Push<T> {
    Done,
    /// The consumer is gone; the item is dropped.
    Closed,
    /// Still full after the wait: the item comes back.
    Full(T),
}

/// Result of [`Rx::pop`].
pub enum Next<T> {
    Item(T),
    /// The producer finished: no more items.
    End,
    /// The producer gave up, with its reason.
    Aborted(String),
}

impl<T> Tx<T> {
    /// Queues `item`, waiting up to `wait` for room.
    pub fn push(&self, item: T, wait: Duration) -> Push<T> {
        let mut g = self.0.lock();
        if g.receiver_gone {
            return Push::Closed;
        }
        if g.items.len() >= self.0.cap {
            g =
                match self.0.changed.wait_timeout_while(g, wait, |s| {
                    s.items.len() >= self.0.cap && !s.receiver_gone
                }) {
                    Ok((g, _)) => g,
                    Err(p) => p.into_inner().0,
                };
            if g.receiver_gone {
                return Push::Closed;
            }
            if g.items.len() >= self.0.cap {
                return Push::Full(item);
            }
        }
        g.items.push_back(item);
        drop(g);
        self.0.changed.notify_all();
        Push::Done
    }

    /// Ends the stream: the consumer gets the queued items, then [`Next::End`].
    pub fn finish(self) {
        self.close(Ok(()));
    }

    /// Ends the stream now: queued items are dropped, the consumer gets the reason.
    pub fn abort(self, reason: String) {
        self.close(Err(reason));
    }

    fn close(&self, end: Result<(), String>) {
        let mut g = self.0.lock();
        if g.end.is_none() {
            if end.is_err() {
                g.items.clear();
            }
            g.end = Some(end);
        }
        drop(g);
        self.0.changed.notify_all();
    }
}

impl<T> Drop for Tx<T> {
    fn drop(&mut self) {
        self.close(Err("the image reader stopped".into()));
    }
}

impl<T> Rx<T> {
    /// The next item, blocking until there is one or the stream ends.
    pub fn pop(&self) -> Next<T> {
        let mut g = self.0.lock();
        loop {
            if let Some(Err(reason)) = &g.end {
                return Next::Aborted(reason.clone());
            }
            if let Some(item) = g.items.pop_front() {
                drop(g);
                self.0.changed.notify_all();
                return Next::Item(item);
            }
            if g.end.is_some() {
                return Next::End;
            }
            g = match self.0.changed.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
    }
}

impl<T> Drop for Rx<T> {
    fn drop(&mut self) {
        let mut g = self.0.lock();
        g.receiver_gone = true;
        // Free the buffers now rather than when the producer finishes.
        g.items.clear();
        drop(g);
        self.0.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_queue_times_out_and_hands_the_item_back() {
        let (tx, rx) = bounded(1);
        assert!(matches!(tx.push(1, Duration::ZERO), Push::Done));
        assert!(matches!(
            tx.push(2, Duration::from_millis(1)),
            Push::Full(2)
        ));
        assert!(matches!(rx.pop(), Next::Item(1)));
        assert!(matches!(tx.push(3, Duration::ZERO), Push::Done));
        tx.finish();
        assert!(matches!(rx.pop(), Next::Item(3)));
        assert!(matches!(rx.pop(), Next::End));
    }

    #[test]
    fn abort_and_drop_reach_the_other_side() {
        let (tx, rx) = bounded(4);
        assert!(matches!(tx.push(1, Duration::ZERO), Push::Done));
        tx.abort("image is corrupt".into());
        assert!(matches!(rx.pop(), Next::Aborted(r) if r == "image is corrupt"));
        let (tx, rx) = bounded::<u8>(4);
        drop(rx);
        assert!(matches!(tx.push(1, Duration::ZERO), Push::Closed));
        let (tx, rx) = bounded::<u8>(4);
        drop(tx);
        assert!(matches!(rx.pop(), Next::Aborted(_)));
    }
}
