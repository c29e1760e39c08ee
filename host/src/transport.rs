//! The socket side of a session: a reader task that owns inbound flow
//! control, and a writer task that drains the session's outbox; on an
//! encrypted connection they decrypt and encrypt on the way, and the plain
//! path does neither.
//!
//! The reader pauses when the connection's token bucket is empty or the
//! event loop is behind (so TCP backpressure reaches the peer), but even
//! paused it notices the peer resetting the socket. A peer that only shuts
//! down its sending side (a half-close) is not gone: everything it sent is
//! still read and handled, and it still gets its replies.

use std::cell::RefCell;
use std::io::{self, Read as _};
use std::net::Shutdown;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::{METRICS, Metrics};
use crate::outbox::Outbox;
use crate::throttle::{Rate, Throttle};
use crate::tls::{Encrypted, Received, TlsSession};

/// Largest single read from a socket.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    /// Where this thread's readers read into: a read happens without an
    /// await in between, so one buffer serves every connection of a thread,
    /// and an idle connection holds none (only the bytes read, exactly).
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; READ_CHUNK]);
}
/// Reads buffered between the reader and the event loop; with `READ_CHUNK`
/// this bounds a session's unframed input.
const INPUT_CHUNKS: usize = 4;

/// What the reader hands the event loop. Boxed slices, not vectors: the
/// channel allocates its slots in blocks up front, and every idle
/// connection holds one.
pub enum Input {
    Data(Box<[u8]>),
    /// The peer has sent everything it will (it closed its sending side).
    Eof,
    /// The peer broke the TLS protocol; why.
    TlsFailed(Box<str>),
}

/// How the reader ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ReaderEnd {
    /// Its last input (end of stream) is in the channel, in order, or the
    /// event loop no longer listens.
    Delivered,
    /// The peer reset the connection (or the socket failed): what it sent
    /// and was not yet handled is to be dropped, not handled.
    Gone,
}

/// A session's socket and the two tasks moving its bytes.
pub struct Link {
    pub stream: Arc<TcpStream>,
    /// What the reader read, for the event loop.
    pub input: mpsc::Receiver<Input>,
    pub reader: Reader,
    writer: JoinHandle<()>,
    /// Set once the connection is encrypted.
    tls: Option<Arc<TlsSession>>,
    outbox: Arc<Outbox>,
    rate: Rate,
    /// Set by the reader when the peer resets the connection.
    reset: Arc<AtomicBool>,
}

/// The reader task, until its result is taken.
pub struct Reader(Option<JoinHandle<ReaderEnd>>);

impl Reader {
    /// Waits for the reader to end (forever, once its end was taken).
    pub async fn end(&mut self) -> ReaderEnd {
        let Some(reader) = &mut self.0 else {
            return std::future::pending().await;
        };
        let end = reader.await.unwrap_or(ReaderEnd::Gone);
        self.0 = None;
        end
    }

    async fn stop(&mut self) {
        if let Some(reader) = self.0.take() {
            reader.abort();
            let _ = reader.await;
        }
    }
}

impl Link {
    /// Starts reading and writing `stream`, encrypted if `tls` is given.
    pub fn start(stream: TcpStream, outbox: Arc<Outbox>, rate: Rate, tls: Option<Encrypted>) -> Self {
        let stream = Arc::new(stream);
        let reset = Arc::default();
        let session = tls.as_ref().map(|tls| Arc::clone(&tls.session));
        let (reader, input) = spawn_reader(&stream, &rate, &reset, tls);
        Self {
            writer: tokio::spawn(write(Arc::clone(&stream), Arc::clone(&outbox), session.clone())),
            stream,
            input,
            reader: Reader(Some(reader)),
            tls: session,
            outbox,
            rate,
            reset,
        }
    }

    /// Whether the peer has reset the connection.
    pub fn is_reset(&self) -> bool {
        self.reset.load(Ordering::Acquire)
    }

    pub fn is_encrypted(&self) -> bool {
        self.tls.is_some()
    }

    /// Stops reading from the socket. What was read stays in `input`.
    pub async fn stop_reading(&mut self) {
        self.reader.stop().await;
    }

    /// Waits until everything queued has been written.
    pub async fn flushed(&self) {
        self.outbox.flushed().await;
    }

    /// From now on bytes are decrypted as they arrive and encrypted as they
    /// leave. Reading must have been stopped and the outbox flushed (the
    /// writer is idle).
    pub fn encrypt(&mut self, tls: Encrypted) {
        let session = Arc::clone(&tls.session);
        self.writer.abort();
        let (reader, input) = spawn_reader(&self.stream, &self.rate, &self.reset, Some(tls));
        self.reader = Reader(Some(reader));
        self.input = input;
        self.writer = tokio::spawn(write(
            Arc::clone(&self.stream),
            Arc::clone(&self.outbox),
            Some(Arc::clone(&session)),
        ));
        self.tls = Some(session);
    }

    /// Lets go of a peer that went away: stops reading and writing, and
    /// shuts the socket down.
    pub async fn drop_peer(&mut self) {
        self.stop_reading().await;
        self.writer.abort();
        let _ = socket2::SockRef::from(&*self.stream).shutdown(Shutdown::Both);
    }

    /// Stops reading, then closes the connection once everything queued is
    /// written (see `close_lingering`).
    pub async fn close(mut self, linger: Duration) {
        self.stop_reading().await;
        close_lingering(&self.stream, self.writer, linger).await;
    }
}

/// Starts a reader, with a new input channel holding first what the peer
/// sent along with its handshake, if any.
fn spawn_reader(
    stream: &Arc<TcpStream>,
    rate: &Rate,
    reset: &Arc<AtomicBool>,
    tls: Option<Encrypted>,
) -> (JoinHandle<ReaderEnd>, mpsc::Receiver<Input>) {
    let (input_tx, input_rx) = mpsc::channel(INPUT_CHUNKS);
    let session = match tls {
        None => None,
        Some(Encrypted {
            session,
            early_input,
            closed,
        }) => {
            // The channel is new: both fit.
            if !early_input.is_empty() {
                let _ = input_tx.try_send(Input::Data(early_input.into()));
            }
            if closed {
                let _ = input_tx.try_send(Input::Eof);
                return (tokio::spawn(async { ReaderEnd::Delivered }), input_rx);
            }
            Some(session)
        }
    };
    let reader = tokio::spawn(read(
        Arc::clone(stream),
        input_tx,
        rate.clone(),
        Arc::clone(reset),
        session,
    ));
    (reader, input_rx)
}

/// Reads from the peer at the throttled rate into the event loop's channel.
/// It pauses when the bucket is empty or the channel is full (so TCP
/// backpressure reaches the peer), but even then notices the peer leaving.
/// Sets `reset` as soon as it sees the peer reset the connection.
async fn read(
    stream: Arc<TcpStream>,
    input: mpsc::Sender<Input>,
    rate: Rate,
    reset: Arc<AtomicBool>,
    tls: Option<Arc<TlsSession>>,
) -> ReaderEnd {
    let end = read_until_end(&stream, &input, rate, tls.as_deref()).await;
    if end == ReaderEnd::Gone {
        reset.store(true, Ordering::Release);
    }
    end
}

async fn read_until_end(
    stream: &TcpStream,
    input: &mpsc::Sender<Input>,
    rate: Rate,
    tls: Option<&TlsSession>,
) -> ReaderEnd {
    let mut throttle = Throttle::new(rate);
    // Set when unread bytes are known to be waiting but tokio's readiness
    // for them was cleared while paused: the next read must try the socket.
    let mut pending = false;
    loop {
        let permit = match until_gone(stream, &mut pending, input.reserve()).await {
            Some(Ok(permit)) => permit,
            // The event loop has ended.
            Some(Err(_)) => return ReaderEnd::Delivered,
            None => return ReaderEnd::Gone,
        };
        // Bytes first, then the bucket: a rate a handler set while the
        // reader waited applies to this very read.
        if !pending && stream.readable().await.is_err() {
            return ReaderEnd::Gone;
        }
        let allowance = match throttle.allowance() {
            Ok(bytes) => bytes.min(READ_CHUNK),
            Err(wait) => {
                drop(permit);
                if until_gone(stream, &mut pending, tokio::time::sleep(wait))
                    .await
                    .is_none()
                {
                    return ReaderEnd::Gone;
                }
                continue;
            }
        };
        // Plain bytes are copied out of the scratch buffer as they are;
        // encrypted ones are decrypted out of it.
        let read = read_now(stream, allowance, &mut pending, |bytes| match tls {
            None => Ok((bytes.to_vec(), Received::Open)),
            Some(tls) => {
                let mut plain = Vec::new();
                tls.decrypt(bytes, &mut plain).map(|received| (plain, received))
            }
        });
        match read {
            Ok(Read::Nothing) => {}
            Ok(Read::End) => {
                permit.send(Input::Eof);
                return ReaderEnd::Delivered;
            }
            Ok(Read::Bytes(n, Ok((bytes, received)))) => {
                throttle.consume(n);
                if !bytes.is_empty() {
                    permit.send(Input::Data(bytes.into()));
                }
                if received == Received::Closed {
                    let _ = input.send(Input::Eof).await;
                    return ReaderEnd::Delivered;
                }
            }
            Ok(Read::Bytes(_, Err(reason))) => {
                permit.send(Input::TlsFailed(reason.into()));
                return ReaderEnd::Delivered;
            }
            Err(_) => return ReaderEnd::Gone,
        }
    }
}

/// Runs `paused` unless the peer resets the socket first.
async fn until_gone<T>(stream: &TcpStream, pending: &mut bool, paused: impl Future<Output = T>) -> Option<T> {
    tokio::select! {
        value = paused => Some(value),
        () = peer_gone(stream, pending) => None,
    }
}

/// Completes when the peer has reset the connection (or the socket
/// failed), without reading any of the bytes waiting in the socket. A
/// half-close is not the peer leaving: bytes it sent before are still to be
/// read once the pause ends.
async fn peer_gone(stream: &TcpStream, pending: &mut bool) {
    loop {
        match stream.ready(Interest::READABLE | Interest::ERROR).await {
            Ok(ready) if ready.is_error() => return,
            Ok(ready) if ready.is_read_closed() => {
                // Half-closed: readable stays set from now on, so wait for
                // an error alone (a reset) until the pause ends.
                *pending = true;
                let _ = stream.ready(Interest::ERROR).await;
                return;
            }
            Ok(_) => {
                // Bytes are waiting. Forget this readiness so the next wake-up
                // is the next change on the socket: more bytes, FIN or RST.
                *pending = true;
                let _ = stream.try_io(Interest::READABLE, || Err::<(), _>(io::ErrorKind::WouldBlock.into()));
            }
            Err(_) => return,
        }
    }
}

/// What one read found.
enum Read<T> {
    /// Nothing waiting.
    Nothing,
    /// The end of the peer's stream.
    End,
    /// This many bytes, and what was made of them.
    Bytes(usize, T),
}

/// Reads at most `max` bytes of what is available, without waiting, into
/// the thread's scratch buffer, and hands them to `take`.
fn read_now<T>(
    stream: &TcpStream,
    max: usize,
    pending: &mut bool,
    take: impl FnOnce(&[u8]) -> T,
) -> io::Result<Read<T>> {
    SCRATCH.with_borrow_mut(|scratch| {
        let buf = &mut scratch[..max.min(READ_CHUNK)];
        let room = buf.len();
        let read_socket = |buf: &mut [u8]| (&*socket2::SockRef::from(stream)).read(buf);
        let read = if *pending {
            // tokio may believe the socket is drained: ask the socket
            // itself, until it says it is.
            read_socket(buf)
        } else {
            // A read that does not fill the buffer emptied the socket:
            // tokio is told so (as if the read had found nothing), which
            // saves the read that would only find nothing. Bytes arriving
            // after it make the socket ready again.
            let mut short = None;
            let read = stream.try_io(Interest::READABLE, || {
                let n = read_socket(&mut *buf)?;
                if n == 0 || n == room {
                    return Ok(n);
                }
                short = Some(n);
                Err(io::ErrorKind::WouldBlock.into())
            });
            short.map_or(read, Ok)
        };
        match read {
            Ok(0) => Ok(Read::End),
            Ok(n) => {
                if n < room {
                    // Emptied: the next read waits for the socket again.
                    *pending = false;
                }
                Ok(Read::Bytes(n, take(&buf[..n])))
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                *pending = false;
                Ok(Read::Nothing)
            }
            Err(error) => Err(error),
        }
    })
}

/// Writes whatever the event loop queues, until the outbox is closed and
/// drained or the peer is gone; encrypted, with a close_notify at the end,
/// if `tls` is set.
async fn write(stream: Arc<TcpStream>, outbox: Arc<Outbox>, tls: Option<Arc<TlsSession>>) {
    let mut buf = Vec::new();
    let mut records = Vec::new();
    loop {
        let more = match &tls {
            None => outbox.take(&mut buf).await,
            Some(tls) => tokio::select! {
                more = outbox.take(&mut buf) => more,
                // Records the reader left to send (an alert, a key update).
                () = tls.flush.notified() => {
                    buf.clear();
                    true
                }
            },
        };
        if !more {
            break;
        }
        let bytes = match &tls {
            None => &buf,
            Some(tls) => {
                records.clear();
                tls.encrypt(&buf, &mut records);
                &records
            }
        };
        if write_all(&stream, bytes).await.is_err() {
            return;
        }
        Metrics::add(&METRICS.outbound_bytes, bytes.len());
        outbox.written(buf.len());
        // An idle connection holds no write buffers.
        buf = Vec::new();
        records = Vec::new();
    }
    if let Some(tls) = tls {
        records.clear();
        tls.close(&mut records);
        let _ = write_all(&stream, &records).await;
    }
}

/// Closes the connection once `writer` has written everything queued: a
/// lingering close. Meanwhile, and after the end of our side is sent, input
/// is read and dropped until the peer closes too or `linger` is over:
/// closing a socket with unread input makes the kernel reset it, and a
/// reset throws away whatever is still queued for the peer.
async fn close_lingering(stream: &TcpStream, mut writer: JoinHandle<()>, linger: Duration) {
    let deadline = tokio::time::Instant::now() + linger;
    let discarding = discard_input(stream, deadline);
    tokio::pin!(discarding);
    let mut discarded = false;
    loop {
        tokio::select! {
            _ = &mut writer => break,
            () = tokio::time::sleep_until(deadline) => {
                writer.abort();
                break;
            }
            () = &mut discarding, if !discarded => discarded = true,
        }
    }
    let socket = socket2::SockRef::from(stream);
    let _ = socket.shutdown(Shutdown::Write);
    if !discarded {
        discarding.await;
    }
    let _ = socket.shutdown(Shutdown::Both);
}

/// Reads and drops whatever the peer sends until it closes its side or
/// `deadline` passes, so that unread input does not make the kernel reset
/// the connection (and drop the last replies still queued for the peer)
/// when it is closed.
async fn discard_input(stream: &TcpStream, deadline: tokio::time::Instant) {
    let _ = tokio::time::timeout_at(deadline, async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            match SCRATCH.with_borrow_mut(|scratch| stream.try_read(scratch)) {
                Ok(0) => return,
                Err(error) if error.kind() != io::ErrorKind::WouldBlock => return,
                _ => {}
            }
        }
    })
    .await;
}

pub(crate) async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
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
