//! TLS, owned by the host: certificates, the handshake, and the record
//! layer of established sessions. A handler only asks for encryption (the
//! `start-tls` action) or is served on a TLS listener, and learns what the
//! handshake settled from its connection record.
//!
//! The crypto provider is rustls' `ring`: it builds in seconds on two cores
//! without cmake, where `aws-lc-rs` compiles a large C library.

mod certs;
mod handshake;
mod record;

use std::time::Duration;

pub use certs::{CertPaths, Certificates, local_pair, write_self_signed};
pub use handshake::{Encrypted, Established};
pub use record::{Received, TlsSession};

/// A server's TLS: the certificates it presents and how long a handshake
/// may take.
pub struct Tls {
    pub certificates: Certificates,
    pub handshake_timeout: Duration,
}

impl Tls {
    /// Runs a server handshake on `stream` with the current certificates;
    /// the error says why it failed.
    pub async fn accept(&self, stream: &tokio::net::TcpStream) -> Result<Established, String> {
        handshake::accept(stream, &self.certificates.current(), self.handshake_timeout).await
    }
}
