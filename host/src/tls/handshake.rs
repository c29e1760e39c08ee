//! The server side of a TLS handshake on an accepted socket: read the
//! ClientHello, present the certificate for the name it asks for, finish
//! the handshake, and say what it settled. Runs in the connection's own
//! task, so a slow or stalled peer holds up nobody else; bounded by the
//! handshake timeout.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rustls::server::Acceptor;
use rustls::{HandshakeKind, ProtocolVersion, ServerConnection};
use tokio::net::TcpStream;

use super::certs::CertSet;
use super::record::{self, Received, TlsSession};
use crate::bindings::TlsInfo;
use crate::transport::write_all;

/// Largest read while handshaking.
const CHUNK: usize = 16 * 1024;

/// A finished handshake.
pub struct Established {
    /// What the handler is told.
    pub info: TlsInfo,
    /// Whether it resumed an earlier session.
    pub resumed: bool,
    pub encrypted: Encrypted,
}

/// What the connection's reader and writer take over.
pub struct Encrypted {
    pub session: Arc<TlsSession>,
    /// Plaintext the peer sent right behind its last handshake message.
    pub early_input: Vec<u8>,
    /// The peer already ended the TLS session.
    pub closed: bool,
}

/// Runs the handshake on `stream`, presenting a certificate from `certs`.
/// The error says why it failed, for the log.
pub async fn accept(stream: &TcpStream, certs: &CertSet, timeout: Duration) -> Result<Established, String> {
    match tokio::time::timeout(timeout, handshake(stream, certs)).await {
        Ok(result) => result,
        Err(_) => Err(format!("the TLS handshake took longer than {timeout:?}")),
    }
}

async fn handshake(stream: &TcpStream, certs: &CertSet) -> Result<Established, String> {
    let mut buf = vec![0; CHUNK];
    let mut acceptor = Acceptor::default();
    let (accepted, mut rest) = 'hello: loop {
        let n = read(stream, &mut buf).await?;
        let mut raw = &buf[..n];
        while !raw.is_empty() {
            acceptor
                .read_tls(&mut raw)
                .map_err(|error| format!("not a TLS ClientHello: {error}"))?;
            match acceptor.accept() {
                Ok(Some(accepted)) => break 'hello (accepted, raw.to_vec()),
                Ok(None) => {}
                Err((error, mut alert)) => {
                    let mut out = Vec::new();
                    let _ = alert.write_all(&mut out);
                    let _ = write_all(stream, &out).await;
                    return Err(format!("not a TLS ClientHello: {error}"));
                }
            }
        }
    };
    let server_name = accepted.client_hello().server_name().map(str::to_owned);
    let pair = certs.choose(server_name.as_deref());
    let mut connection = match accepted.into_connection(Arc::clone(&pair.config)) {
        Ok(connection) => connection,
        Err((error, mut alert)) => {
            let mut out = Vec::new();
            let _ = alert.write_all(&mut out);
            let _ = write_all(stream, &out).await;
            return Err(format!("TLS handshake: {error}"));
        }
    };

    let mut early_input = Vec::new();
    let mut out = Vec::new();
    let received = loop {
        let fed = record::decrypt(&mut connection, &mut rest.as_slice(), &mut early_input);
        record::drain(&mut connection, &mut out);
        if !out.is_empty() {
            write_all(stream, &out)
                .await
                .map_err(|error| format!("TLS handshake: {error}"))?;
            out.clear();
        }
        let received = fed.map_err(|error| format!("{error} (during the handshake)"))?;
        if !connection.is_handshaking() {
            break received;
        }
        let n = read(stream, &mut buf).await?;
        rest = buf[..n].to_vec();
    };
    let info = info(&connection, server_name, &pair.end_point);
    Ok(Established {
        resumed: connection.handshake_kind() == Some(HandshakeKind::Resumed),
        info,
        encrypted: Encrypted {
            session: Arc::new(TlsSession::new(connection)),
            early_input,
            closed: received == Received::Closed,
        },
    })
}

fn info(connection: &ServerConnection, server_name: Option<String>, end_point: &[u8]) -> TlsInfo {
    let version = match connection.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "unknown",
    };
    let exporter = connection
        .export_keying_material([0; 32], b"EXPORTER-Channel-Binding", None)
        .map(Vec::from)
        .unwrap_or_default();
    TlsInfo {
        version: version.to_owned(),
        server_name,
        tls_exporter: exporter,
        tls_server_end_point: end_point.to_vec(),
    }
}

/// Reads what the peer sent; its end of the socket is an error here.
async fn read(stream: &TcpStream, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        stream
            .readable()
            .await
            .map_err(|error| format!("TLS handshake: {error}"))?;
        match stream.try_read(buf) {
            Ok(0) => return Err("the peer closed the connection during the TLS handshake".to_owned()),
            Ok(n) => return Ok(n),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
            Err(error) => return Err(format!("TLS handshake: {error}")),
        }
    }
}
