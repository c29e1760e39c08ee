//! The certificates the host presents: PEM pairs (a full chain and its key)
//! loaded from files, one chosen per handshake by the server name the peer
//! asks for, reloaded without dropping a connection; and self-signed pairs
//! for local use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, bail};
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert, ServerSessionMemoryCache};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest as _, Sha256, Sha384, Sha512};

/// Where one certificate and its key are read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertPaths {
    /// The full chain, end-entity certificate first, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// A certificate expiring sooner than this is warned about at load.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// The certificates a server presents, reloadable: a handshake uses the set
/// loaded when it began, so a reload never disturbs a connection.
pub struct Certificates {
    paths: Vec<CertPaths>,
    /// TLS sessions kept for resumption, per loaded set.
    session_cache: usize,
    current: RwLock<Arc<CertSet>>,
}

impl Certificates {
    /// Loads every pair; fails with a one-line reason if any is missing,
    /// unreadable, or its key does not match its certificate.
    pub fn load(paths: Vec<CertPaths>, session_cache: usize) -> Result<Self> {
        let set = CertSet::load(&paths, session_cache)?;
        set.log_expiry();
        Ok(Self {
            paths,
            session_cache,
            current: RwLock::new(Arc::new(set)),
        })
    }

    /// The set new handshakes use.
    pub fn current(&self) -> Arc<CertSet> {
        Arc::clone(&self.current.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// The files the certificates are read from.
    pub fn files(&self) -> impl Iterator<Item = &Path> {
        self.paths
            .iter()
            .flat_map(|pair| [pair.cert.as_path(), pair.key.as_path()])
    }

    /// Reads the files again; if they changed, new handshakes present the
    /// new certificates (and sessions of the old ones are not resumed).
    /// Files that fail to load change nothing. Returns whether anything
    /// changed.
    pub fn reload(&self) -> Result<bool> {
        let current = self.current();
        if CertSet::digest_files(&self.paths)? == current.digest {
            return Ok(false);
        }
        let set = CertSet::load(&self.paths, self.session_cache)?;
        set.log_expiry();
        *self.current.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(set);
        tracing::info!(certificates = self.paths.len(), "certificates reloaded");
        Ok(true)
    }

    /// Reloads, logging the outcome; certificates that fail to load keep
    /// the old ones in use.
    pub fn reload_and_log(&self) -> Result<bool> {
        let result = self.reload();
        if let Err(error) = &result {
            tracing::error!(
                error = format!("{error:#}"),
                "certificate reload rejected; the old certificates stay"
            );
        }
        result
    }
}

/// Certificates loaded at one moment.
pub struct CertSet {
    /// In the order given; the first is presented when no other names the
    /// server the peer asked for.
    pairs: Vec<Pair>,
    /// SHA-256 over the files' bytes, to tell whether a reload changes anything.
    digest: [u8; 32],
}

/// One certificate, ready to serve handshakes.
pub struct Pair {
    /// A server configuration presenting this certificate only.
    pub config: Arc<ServerConfig>,
    /// RFC 5929 `tls-server-end-point` channel-binding data.
    pub end_point: Vec<u8>,
    end_entity: CertificateDer<'static>,
    source: PathBuf,
    not_after: SystemTime,
}

impl CertSet {
    fn load(paths: &[CertPaths], session_cache: usize) -> Result<Self> {
        if paths.is_empty() {
            bail!("no certificate given");
        }
        let digest = Self::digest_files(paths)?;
        // Resumption is per set: a session begun under certificates since
        // replaced does a full handshake, so its channel bindings are true.
        let sessions = ServerSessionMemoryCache::new(session_cache);
        let pairs = paths
            .iter()
            .map(|paths| Pair::load(paths, Arc::clone(&sessions) as _))
            .collect::<Result<_>>()?;
        Ok(Self { pairs, digest })
    }

    fn digest_files(paths: &[CertPaths]) -> Result<[u8; 32]> {
        let mut digest = Sha256::new();
        for path in paths.iter().flat_map(|pair| [&pair.cert, &pair.key]) {
            digest.update(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        }
        Ok(digest.finalize().into())
    }

    /// The certificate to present to a peer that asked for `server_name`:
    /// the first valid for that name, else the first of all.
    pub fn choose(&self, server_name: Option<&str>) -> &Pair {
        let name = server_name.and_then(|name| ServerName::try_from(name).ok());
        name.and_then(|name| self.pairs.iter().find(|pair| pair.serves(&name)))
            .unwrap_or(&self.pairs[0])
    }

    /// Logs, loudly, certificates that have expired or soon will.
    fn log_expiry(&self) {
        let now = SystemTime::now();
        for pair in &self.pairs {
            let cert = pair.source.display();
            let not_after = unix_seconds(pair.not_after);
            match pair.not_after.duration_since(now) {
                Err(_) => tracing::error!(
                    %cert,
                    not_after,
                    "certificate EXPIRED: peers that check it will refuse every handshake"
                ),
                Ok(left) if left < EXPIRY_WARNING => tracing::warn!(
                    %cert,
                    not_after,
                    days_left = left.as_secs() / 86_400,
                    "certificate expires soon"
                ),
                Ok(_) => {}
            }
        }
    }
}

impl Pair {
    fn load(paths: &CertPaths, sessions: Arc<dyn rustls::server::StoresServerSessions>) -> Result<Self> {
        let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
        let chain = CertificateDer::pem_slice_iter(&read(&paths.cert)?)
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("{}: not a PEM certificate chain", paths.cert.display()))?;
        let Some(end_entity) = chain.first().cloned() else {
            bail!("{}: no certificate in it", paths.cert.display());
        };
        let key = PrivateKeyDer::from_pem_slice(&read(&paths.key)?)
            .with_context(|| format!("{}: not a PEM private key", paths.key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let certified = CertifiedKey::from_der(chain, key, &provider).with_context(|| {
            format!(
                "{} and {} do not make a pair",
                paths.cert.display(),
                paths.key.display()
            )
        })?;
        let parsed = Parsed::from_der(&end_entity).with_context(|| format!("{}", paths.cert.display()))?;

        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Presents(Arc::new(certified))));
        config.session_storage = sessions;
        // TLS 1.2 without the extended master secret would make the
        // `tls-exporter` channel binding unsafe (RFC 9266 §3).
        config.require_ems = true;
        Ok(Self {
            config: Arc::new(config),
            end_point: parsed.end_point,
            end_entity,
            source: paths.cert.clone(),
            not_after: parsed.not_after,
        })
    }

    fn serves(&self, name: &ServerName<'_>) -> bool {
        webpki::EndEntityCert::try_from(&self.end_entity)
            .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(name).is_ok())
    }
}

/// Presents one certificate to every peer.
#[derive(Debug)]
struct Presents(Arc<CertifiedKey>);

impl ResolvesServerCert for Presents {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

/// What the host needs from an end-entity certificate beyond what rustls reads.
struct Parsed {
    not_after: SystemTime,
    end_point: Vec<u8>,
}

impl Parsed {
    fn from_der(der: &[u8]) -> Result<Self> {
        use x509_cert::der::Decode as _;
        let cert = x509_cert::Certificate::from_der(der).context("not an X.509 certificate")?;
        let not_after = UNIX_EPOCH + cert.tbs_certificate.validity.not_after.to_unix_duration();
        Ok(Self {
            not_after,
            end_point: end_point(&cert.signature_algorithm.oid.to_string(), der),
        })
    }
}

/// RFC 5929 §4.1: the certificate hashed with its signature's hash
/// function, SHA-256 where that is MD5 or SHA-1; empty where the signature
/// names no hash (Ed25519, RSA-PSS), for which the binding is undefined.
fn end_point(signature_algorithm: &str, der: &[u8]) -> Vec<u8> {
    match signature_algorithm {
        // {md5,sha1,sha256}WithRSAEncryption, ecdsa-with-{SHA1,SHA256}.
        "1.2.840.113549.1.1.4"
        | "1.2.840.113549.1.1.5"
        | "1.2.840.113549.1.1.11"
        | "1.2.840.10045.4.1"
        | "1.2.840.10045.4.3.2" => Sha256::digest(der).to_vec(),
        "1.2.840.113549.1.1.12" | "1.2.840.10045.4.3.3" => Sha384::digest(der).to_vec(),
        "1.2.840.113549.1.1.13" | "1.2.840.10045.4.3.4" => Sha512::digest(der).to_vec(),
        _ => Vec::new(),
    }
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_secs())
}

/// How long a self-signed certificate is valid: under the 825 days Apple's
/// TLS clients accept for any server certificate, trusted by hand or not.
const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(800 * 86_400);

/// Writes a new self-signed certificate for `domains` (the first is its
/// subject) and its key to `cert` and `key`, the key readable by its owner
/// only. For local use: peers must be told to trust it.
pub fn write_self_signed(domains: &[String], paths: &CertPaths) -> Result<()> {
    let make = || -> Result<_, rcgen::Error> {
        let mut params = rcgen::CertificateParams::new(domains.to_vec())?;
        let now = SystemTime::now();
        params.not_before = (now - Duration::from_secs(86_400)).into();
        params.not_after = (now + SELF_SIGNED_VALIDITY).into();
        if let Some(subject) = domains.first() {
            params.distinguished_name = rcgen::DistinguishedName::new();
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, subject.as_str());
        }
        let key = rcgen::KeyPair::generate()?;
        Ok((params.self_signed(&key)?, key))
    };
    let (cert, signing_key) = make().context("making a self-signed certificate")?;
    for file in [&paths.cert, &paths.key] {
        if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    write_private(&paths.key, signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&paths.cert, cert.pem()).with_context(|| format!("writing {}", paths.cert.display()))
}

/// Writes a file only its owner can read, from its creation on.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// The pair `ej serve` presents when given none: a self-signed certificate
/// for `localhost` under the data directory, made the first time, and made
/// again when it has less than `EXPIRY_WARNING` left.
pub fn local_pair(data_dir: &Path) -> Result<CertPaths> {
    let paths = CertPaths {
        cert: data_dir.join("tls").join("localhost.crt"),
        key: data_dir.join("tls").join("localhost.key"),
    };
    let fresh = |cert: &Path| -> Option<bool> {
        let pem = std::fs::read(cert).ok()?;
        let der = CertificateDer::from_pem_slice(&pem).ok()?;
        let left = Parsed::from_der(&der).ok()?.not_after.duration_since(SystemTime::now());
        Some(left.is_ok_and(|left| left > EXPIRY_WARNING))
    };
    if !paths.key.exists() || fresh(&paths.cert) != Some(true) {
        let domains = ["localhost", "127.0.0.1", "::1"].map(String::from);
        write_self_signed(&domains, &paths)?;
        tracing::info!(
            cert = %paths.cert.display(),
            "no --tls-cert given: made a self-signed certificate for localhost (clients must be told to trust it)"
        );
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_end_point_hash_follows_the_signature() {
        assert_eq!(end_point("1.2.840.10045.4.3.2", b"x").len(), 32);
        assert_eq!(
            end_point("1.2.840.113549.1.1.5", b"x").len(),
            32,
            "SHA-1 becomes SHA-256"
        );
        assert_eq!(end_point("1.2.840.10045.4.3.3", b"x").len(), 48);
        assert_eq!(end_point("1.2.840.113549.1.1.13", b"x").len(), 64);
        assert!(end_point("1.3.101.112", b"x").is_empty(), "Ed25519 names no hash");
    }

    #[test]
    fn a_name_picks_its_certificate_and_anything_else_the_first() {
        let dir = std::env::temp_dir().join(format!("ej-certs-{}", std::process::id()));
        let pair = |name: &str| {
            let paths = CertPaths {
                cert: dir.join(format!("{name}.crt")),
                key: dir.join(format!("{name}.key")),
            };
            write_self_signed(&[name.to_owned()], &paths).unwrap();
            paths
        };
        let paths = vec![pair("one.example"), pair("two.example")];
        let certs = Certificates::load(paths.clone(), 16).unwrap();
        let set = certs.current();
        assert_eq!(set.choose(Some("two.example")).source, paths[1].cert);
        assert_eq!(set.choose(Some("one.example")).source, paths[0].cert);
        assert_eq!(set.choose(Some("three.example")).source, paths[0].cert);
        assert_eq!(set.choose(None).source, paths[0].cert);
        assert!(!certs.reload().unwrap(), "unchanged files are not reloaded");
        let _ = std::fs::remove_dir_all(dir);
    }
}
