//! The bounded queue between a connection's event loop and its writer. The
//! event loop never waits on the peer: when the bytes queued for a peer pass
//! the limit, pushing fails and the connection is cut off.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;

/// Bytes waiting to be written to one peer.
pub struct Outbox {
    queue: Mutex<Queue>,
    ready: Notify,
    /// Woken when everything queued has been written.
    drained: Notify,
    max_bytes: usize,
}

#[derive(Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    /// Queued plus being written.
    bytes: usize,
    closed: bool,
}

/// The peer has not read what it was sent; the queue is full.
#[derive(Debug)]
pub struct Overflow;

impl Outbox {
    pub fn new(max_bytes: usize) -> Self {
        Self {
            queue: Mutex::default(),
            ready: Notify::new(),
            drained: Notify::new(),
            max_bytes,
        }
    }

    /// Queues `bytes`, unless that would pass the limit.
    pub fn push(&self, bytes: Vec<u8>) -> Result<(), Overflow> {
        let mut queue = self.lock();
        if queue.bytes + bytes.len() > self.max_bytes {
            return Err(Overflow);
        }
        queue.enqueue(bytes);
        drop(queue);
        self.ready.notify_one();
        Ok(())
    }

    /// Queues the last bytes of the connection, past the limit if need be
    /// (a stream error for a peer that stopped reading), and closes the
    /// queue: the writer ends once it has written everything.
    pub fn close_with(&self, last: Option<Vec<u8>>) {
        let mut queue = self.lock();
        if let Some(bytes) = last {
            queue.enqueue(bytes);
        }
        queue.closed = true;
        drop(queue);
        self.ready.notify_one();
    }

    /// Waits for bytes to write and moves them into `buf` (replaced: the
    /// first chunk becomes it, without a copy). Returns false once the
    /// outbox is closed and drained.
    pub async fn take(&self, buf: &mut Vec<u8>) -> bool {
        loop {
            {
                let mut queue = self.lock();
                if let Some(first) = queue.chunks.pop_front() {
                    *buf = first;
                    while let Some(chunk) = queue.chunks.pop_front() {
                        buf.extend_from_slice(&chunk);
                    }
                    return true;
                }
                if queue.closed {
                    return false;
                }
            }
            self.ready.notified().await;
        }
    }

    /// Marks `bytes` as written, making room for more.
    pub fn written(&self, bytes: usize) {
        let mut queue = self.lock();
        queue.bytes -= bytes;
        if queue.bytes == 0 {
            self.drained.notify_waiters();
        }
    }

    /// Waits until everything queued has been written.
    pub async fn flushed(&self) {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            if self.lock().bytes == 0 {
                return;
            }
            drained.await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // The queue holds plain bytes: a panic elsewhere cannot leave it
        // half-updated, so a poisoned lock is still sound to use.
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Queue {
    fn enqueue(&mut self, bytes: Vec<u8>) {
        self.bytes += bytes.len();
        self.chunks.push_back(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pushing_past_the_limit_fails_until_bytes_are_written() {
        let outbox = Outbox::new(10);
        outbox.push(b"0123456".to_vec()).unwrap();
        assert!(outbox.push(b"7890".to_vec()).is_err());
        let mut buf = Vec::new();
        assert!(outbox.take(&mut buf).await);
        assert_eq!(buf, b"0123456");
        assert!(outbox.push(b"7890".to_vec()).is_err(), "taken is not yet written");
        outbox.written(buf.len());
        outbox.push(b"7890".to_vec()).unwrap();
    }

    #[tokio::test]
    async fn close_delivers_the_last_bytes_then_ends() {
        let outbox = Outbox::new(4);
        outbox.push(b"abcd".to_vec()).unwrap();
        outbox.close_with(Some(b"<bye/>".to_vec()));
        let mut buf = Vec::new();
        assert!(outbox.take(&mut buf).await);
        assert_eq!(buf, b"abcd<bye/>");
        assert!(!outbox.take(&mut buf).await);
    }
}
