//! The TLS side of the test client: rustls' own client, trusting only the
//! certificates a test names, over the same blocking socket.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// XMPP's STARTTLS request (RFC 6120 §5).
pub const STARTTLS: &str = "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
/// The server's answer to it.
pub const PROCEED: &str = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";

/// A client's TLS settings: whom it trusts and the name it asks for.
#[derive(Clone)]
pub struct ClientTls {
    pub config: Arc<ClientConfig>,
    /// Sent as SNI (unless an IP address) and checked against the certificate.
    pub server_name: ServerName<'static>,
}

impl ClientTls {
    /// Trusts the certificates in the PEM file `trusted`; asks for `name`.
    /// Sessions are remembered, so a second connection with the same
    /// settings resumes.
    pub fn trusting(trusted: &Path, name: &str) -> Self {
        Self::trusting_versions(trusted, name, rustls::DEFAULT_VERSIONS)
    }

    /// The same, speaking only the TLS `versions` given.
    pub fn trusting_versions(
        trusted: &Path,
        name: &str,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Self {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(trusted).expect("reading the trusted certificate") {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a usable certificate");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            config: Arc::new(config),
            server_name: ServerName::try_from(name.to_owned()).expect("a server name"),
        }
    }

    /// Runs the handshake on `tcp`; fails the test if it fails.
    pub fn handshake(&self, tcp: TcpStream) -> Stream {
        self.try_handshake(tcp)
            .unwrap_or_else(|error| panic!("TLS handshake failed: {error}"))
    }

    /// Runs the handshake on `tcp`.
    pub fn try_handshake(&self, mut tcp: TcpStream) -> Result<Stream, std::io::Error> {
        let mut conn =
            ClientConnection::new(Arc::clone(&self.config), self.server_name.clone()).map_err(std::io::Error::other)?;
        tcp.set_read_timeout(Some(super::PATIENCE))?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp)?;
        }
        Ok(Stream::Tls(Box::new(StreamOwned::new(conn, tcp))))
    }
}

/// A connection to the server, encrypted or not.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    /// The socket underneath.
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => &tls.sock,
        }
    }

    pub fn into_tcp(self) -> TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(_) => panic!("the connection is already encrypted"),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.read(buf),
            Self::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.write(buf),
            Self::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.flush(),
            Self::Tls(tls) => tls.flush(),
        }
    }
}
