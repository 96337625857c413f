//! Page-aligned buffers and the bounded pool the fan-out shares.
//!
//! O_DIRECT needs buffers aligned to the logical sector size; 4 KiB covers
//! 512- and 4096-byte drives. The alignment is found with the safe
//! `align_offset` inside an over-allocated `Vec`, so no allocator `unsafe`.
//! A [`Chunk`] returns its buffer to the [`Pool`] when the last target drops
//! it: the number of buffers alive is the pool's limit whatever the number
//! of targets, which is what bounds memory.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// Alignment of every buffer handed to a device.
pub const ALIGN: usize = 4096;

/// A zero-initialised buffer whose start is [`ALIGN`]-aligned.
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes (calloc'd lazily by the allocator).
    pub fn zeroed(len: usize) -> AlignedBuf {
        let raw = vec![0u8; len + ALIGN];
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        AlignedBuf { raw, start, len }
    }
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// A fixed number of equal buffers, recycled through a channel.
pub struct Pool {
    free_tx: Sender<AlignedBuf>,
    free_rx: Receiver<AlignedBuf>,
    size: usize,
    limit: usize,
    allocated: usize,
}

impl Pool {
    pub fn new(size: usize, limit: usize) -> Pool {
        let (free_tx, free_rx) = channel();
        Pool {
            free_tx,
            free_rx,
            size,
            limit: limit.max(1),
            allocated: 0,
        }
    }

    /// A free buffer; blocks while all `limit` buffers are in flight.
    pub fn get(&mut self) -> AlignedBuf {
        if let Ok(b) = self.free_rx.try_recv() {
            return b;
        }
        if self.allocated < self.limit {
            self.allocated += 1;
            return AlignedBuf::zeroed(self.size);
        }
        // The pool keeps a sender, so this only wakes when a chunk is dropped.
        self.free_rx
            .recv()
            .unwrap_or_else(|_| AlignedBuf::zeroed(self.size))
    }

    /// Wraps `buf[..len]` (image bytes at `offset`) for sharing.
    pub fn chunk(&self, buf: AlignedBuf, offset: u64, len: usize) -> Arc<Chunk> {
        Arc::new(Chunk {
            offset,
            len,
            buf: Some(buf),
            home: self.free_tx.clone(),
        })
    }
}

/// Image bytes `offset..offset+len`, shared read-only by every target.
pub struct Chunk {
    pub offset: u64,
    pub len: usize,
    buf: Option<AlignedBuf>,
    home: Sender<AlignedBuf>,
}

impl Chunk {
    pub fn data(&self) -> &[u8] {
        match &self.buf {
            Some(b) => &b.as_slice()[..self.len],
            None => &[],
        }
    }
    pub fn end(&self) -> u64 {
        self.offset + self.len as u64
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            // The pool may be gone at the end of a job: then the buffer is freed.
            let _ = self.home.send(b);
        }
    }
}
