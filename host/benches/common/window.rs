//! A client connection that keeps a window of stanzas in flight: sends
//! `STANZAS_PER_CONNECTION` per batch, never more than `WINDOW` ahead of the
//! replies, and counts the replies back. What the throughput benchmarks and
//! the echo CPU benchmark drive.

use std::sync::Arc;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Duplex, PATIENCE};

/// Stanzas each connection sends per batch.
pub const STANZAS_PER_CONNECTION: usize = 50;
/// Stanzas a connection may have sent and not yet seen answered.
pub const WINDOW: usize = 8;
/// A client connection and what it sends and gets back.
pub struct Client {
    pub stream: Box<dyn Duplex>,
    /// `WINDOW` stanzas back to back: a refill is a prefix of this.
    burst: Arc<Vec<u8>>,
    stanza_len: usize,
    /// How every reply ends (and nothing else in a reply does).
    reply_end: &'static [u8],
}

impl Client {
    pub fn new(stream: impl Duplex + 'static, stanza: &str, reply_end: &'static [u8]) -> Self {
        Self {
            stream: Box::new(stream),
            burst: Arc::new(stanza.repeat(WINDOW).into_bytes()),
            stanza_len: stanza.len(),
            reply_end,
        }
    }

    /// Sends one stanza.
    pub async fn send_one(&mut self) {
        let stanza = &self.burst[..self.stanza_len];
        self.stream.write_all(stanza).await.expect("sending a stanza");
    }

    /// One connection's part of a batch: sends its stanzas, never more than
    /// `WINDOW` ahead of the replies, until all are sent and every reply is
    /// back. (For routes, the replies are the partner's messages, which may
    /// all be back before this connection has sent its own.)
    pub async fn exchange(mut self) -> Self {
        let expected = STANZAS_PER_CONNECTION;
        let mut sent: usize = 0;
        let mut received = 0;
        // The bytes read last, which may hold the start of a reply's end.
        let mut tail = Vec::new();
        let mut buf = vec![0; 64 * 1024];
        loop {
            let in_flight = sent.saturating_sub(received);
            let refill = (WINDOW - in_flight).min(STANZAS_PER_CONNECTION - sent);
            if refill > 0 {
                self.stream
                    .write_all(&self.burst[..refill * self.stanza_len])
                    .await
                    .expect("sending stanzas");
                sent += refill;
            }
            if received == expected {
                if sent == STANZAS_PER_CONNECTION {
                    return self;
                }
                continue;
            }
            let n = tokio::time::timeout(PATIENCE, self.stream.read(&mut buf))
                .await
                .expect("the replies arrive in time")
                .expect("reading replies");
            assert!(
                n > 0,
                "the server closed the connection (after a handler fault, its crash report is above)"
            );
            tail.extend_from_slice(&buf[..n]);
            received += tail
                .windows(self.reply_end.len())
                .filter(|window| *window == self.reply_end)
                .count();
            let keep = tail.len().min(self.reply_end.len() - 1);
            tail.drain(..tail.len() - keep);
            assert!(received <= expected, "the server sent more than the replies");
        }
    }
}
