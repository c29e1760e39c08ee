//! The record layer of one connection's TLS session after its handshake,
//! shared by the reader (which decrypts what arrives) and the writer (which
//! encrypts what the outbox holds). Neither holds the lock across a wait: records go in and
//! come out as bytes, and the socket I/O around them is the plain path's.

use std::io::{self, Read as _, Write as _};
use std::sync::{Mutex, MutexGuard};

use rustls::ServerConnection;
use tokio::sync::Notify;

/// An established TLS session.
pub struct TlsSession {
    connection: Mutex<ServerConnection>,
    /// Woken when decrypting left records to send (an alert, a key update
    /// answer) that the writer must flush without waiting for the outbox.
    pub(crate) flush: Notify,
}

/// What a batch of received bytes carried.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// More may come.
    Open,
    /// The peer ended the TLS session (close_notify): no more plaintext.
    Closed,
}

impl TlsSession {
    pub(crate) fn new(connection: ServerConnection) -> Self {
        Self {
            connection: Mutex::new(connection),
            flush: Notify::new(),
        }
    }

    /// Decrypts bytes read from the socket, appending the plaintext they
    /// carried to `plain`. An error means the peer broke the protocol; the
    /// alert telling it so is queued for the writer.
    pub fn decrypt(&self, mut raw: &[u8], plain: &mut Vec<u8>) -> Result<Received, String> {
        let mut connection = self.lock();
        let result = decrypt(&mut connection, &mut raw, plain);
        if connection.wants_write() {
            self.flush.notify_one();
        }
        result
    }

    /// Encrypts `plain` and appends the records to send to `out`, after
    /// anything rustls already had queued.
    pub fn encrypt(&self, plain: &[u8], out: &mut Vec<u8>) {
        let mut connection = self.lock();
        // The outbox bounds what is queued; rustls need not bound it again.
        connection.set_buffer_limit(None);
        let _ = connection.writer().write_all(plain);
        drain(&mut connection, out);
    }

    /// Appends the records rustls has queued (an alert, a key update) to `out`.
    pub fn pending(&self, out: &mut Vec<u8>) {
        drain(&mut self.lock(), out);
    }

    /// Ends the session: appends a close_notify alert to `out`.
    pub fn close(&self, out: &mut Vec<u8>) {
        let mut connection = self.lock();
        connection.send_close_notify();
        drain(&mut connection, out);
    }

    fn lock(&self) -> MutexGuard<'_, ServerConnection> {
        // rustls leaves its state consistent between calls; a panic while
        // the lock was held cannot leave it half-updated.
        self.connection.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Feeds `raw` to `connection` and takes out the plaintext, until all of
/// `raw` is consumed.
pub(crate) fn decrypt(
    connection: &mut ServerConnection,
    raw: &mut &[u8],
    plain: &mut Vec<u8>,
) -> Result<Received, String> {
    let mut received = take_plaintext(connection, plain)?;
    while !raw.is_empty() {
        connection
            .read_tls(raw)
            .map_err(|error| format!("reading TLS records: {error}"))?;
        connection
            .process_new_packets()
            .map_err(|error| format!("TLS: {error}"))?;
        received = take_plaintext(connection, plain)?;
    }
    Ok(received)
}

fn take_plaintext(connection: &mut ServerConnection, plain: &mut Vec<u8>) -> Result<Received, String> {
    let mut buf = [0; 4096];
    loop {
        match connection.reader().read(&mut buf) {
            Ok(0) => return Ok(Received::Closed),
            Ok(n) => plain.extend_from_slice(&buf[..n]),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(Received::Open),
            // The peer closed the socket without a close_notify.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => return Ok(Received::Closed),
            Err(error) => return Err(format!("TLS: {error}")),
        }
    }
}

pub(crate) fn drain(connection: &mut ServerConnection, out: &mut Vec<u8>) {
    while connection.wants_write() {
        if connection.write_tls(out).is_err() {
            return;
        }
    }
}
