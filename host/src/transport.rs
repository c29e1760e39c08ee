//! The socket side of a session: a reader task that owns inbound flow
//! control, and a writer task that drains the session's outbox.
//!
//! The reader pauses when the connection's token bucket is empty or the
//! event loop is behind (so TCP backpressure reaches the peer), but even
//! paused it notices the peer closing or resetting the socket.

use std::io::{self, Read as _};
use std::sync::Arc;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::outbox::Outbox;
use crate::throttle::{Rate, Throttle};

/// Largest single read from a socket.
const READ_CHUNK: usize = 16 * 1024;
/// Reads buffered between the reader and the event loop; with `READ_CHUNK`
/// this bounds a session's unframed input.
pub const INPUT_CHUNKS: usize = 4;

/// What the reader hands the event loop.
pub enum Input {
    Data(Vec<u8>),
    /// The peer closed its side, or the socket failed.
    Eof,
}

/// How the reader ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReaderEnd {
    /// Its last input (end of stream) is in the channel, in order.
    Delivered,
    /// The peer left while the reader was paused and the channel was full:
    /// the event loop should stop without draining it.
    Gone,
}

/// The reader task, and whether its result was already taken.
pub struct ReaderTask {
    pub handle: JoinHandle<ReaderEnd>,
    pub done: bool,
}

impl ReaderTask {
    pub async fn stop(self) {
        if !self.done {
            self.handle.abort();
            let _ = self.handle.await;
        }
    }
}

/// Reads from the peer at the throttled rate into the event loop's channel.
/// It pauses when the bucket is empty or the channel is full (so TCP
/// backpressure reaches the peer), but even then notices the peer leaving.
pub async fn read(stream: Arc<TcpStream>, input: mpsc::Sender<Input>, rate: Rate) -> ReaderEnd {
    let mut throttle = Throttle::new(rate);
    let mut buf = vec![0; READ_CHUNK];
    // Set when unread bytes are known to be waiting but tokio's readiness
    // for them was cleared while paused: the next read must try the socket.
    let mut pending = false;
    loop {
        let allowance = match throttle.allowance() {
            Ok(bytes) => bytes.min(READ_CHUNK),
            Err(wait) => {
                if until_gone(&stream, &mut pending, tokio::time::sleep(wait))
                    .await
                    .is_none()
                {
                    return left(&input);
                }
                continue;
            }
        };
        let permit = match until_gone(&stream, &mut pending, input.reserve()).await {
            Some(Ok(permit)) => permit,
            // The event loop has ended.
            Some(Err(_)) => return ReaderEnd::Delivered,
            None => return left(&input),
        };
        match read_some(&stream, &mut buf[..allowance], &mut pending).await {
            Ok(0) | Err(_) => {
                permit.send(Input::Eof);
                return ReaderEnd::Delivered;
            }
            Ok(n) => {
                throttle.consume(n);
                permit.send(Input::Data(buf[..n].to_vec()));
            }
        }
    }
}

/// The peer left while the reader was paused: say so in order if there is
/// room, else out of band.
fn left(input: &mpsc::Sender<Input>) -> ReaderEnd {
    match input.try_send(Input::Eof) {
        Ok(()) => ReaderEnd::Delivered,
        Err(_) => ReaderEnd::Gone,
    }
}

/// Runs `paused` unless the peer closes or resets the socket first.
async fn until_gone<T>(stream: &TcpStream, pending: &mut bool, paused: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        value = paused => Some(value),
        () = peer_gone(stream, pending) => None,
    }
}

/// Completes when the peer has closed or reset the connection, without
/// reading any of the bytes waiting in the socket.
async fn peer_gone(stream: &TcpStream, pending: &mut bool) {
    loop {
        match stream.ready(Interest::READABLE).await {
            Ok(ready) if !ready.is_read_closed() => {
                // Bytes are waiting. Forget this readiness so the next wake-up
                // is the next change on the socket: more bytes, FIN or RST.
                *pending = true;
                let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
            _ => return,
        }
    }
}

/// Reads what is available, waiting for at least one byte.
async fn read_some(stream: &TcpStream, buf: &mut [u8], pending: &mut bool) -> io::Result<usize> {
    if *pending {
        // tokio may believe the socket is drained: ask the socket itself.
        match (&*socket2::SockRef::from(stream)).read(buf) {
            Ok(n) => return Ok(n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => *pending = false,
            Err(error) => return Err(error),
        }
    }
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// Writes whatever the event loop queues, until the outbox is closed and
/// drained or the peer is gone.
pub async fn write(stream: Arc<TcpStream>, outbox: Arc<Outbox>) {
    let mut buf = Vec::new();
    while outbox.take(&mut buf).await {
        if write_all(&stream, &buf).await.is_err() {
            return;
        }
        outbox.written(buf.len());
    }
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
    Ok(())
}
