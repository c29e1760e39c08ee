//! TLS owned by the host: STARTTLS through the `start-tls` action, TLS
//! listeners, what the handler learns of the handshake, certificates by
//! name, reloads under live connections, and every way a handshake can go
//! wrong. A real TLS client (rustls) and `openssl s_client` talk to the real
//! binary over TCP.

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::tls::{ClientTls, PROCEED, STARTTLS};
use common::{Client, STREAM_HEADER, Scratch, Server, ej, wait_until};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use sha2::{Digest as _, Sha256};

/// `<ping/>` as the echo returns it: with the namespace it inherits.
const PING: &str = "<ping xmlns='jabber:client'/>";

/// The certificate `ej serve` made for itself under `server`'s data directory.
fn local_cert(server: &Server) -> PathBuf {
    server.data_dir.join("tls/localhost.crt")
}

/// Asks for STARTTLS on an open stream and runs the handshake.
fn start_tls(mut client: Client, tls: &ClientTls) -> Client {
    client.send(STARTTLS);
    client.expect(PROCEED);
    client.start_tls(tls)
}

/// The echo's `<tls …/>` answer, as attribute pairs.
fn tls_report(client: &mut Client) -> Vec<(String, String)> {
    client.send("<tls/>");
    client.read_until("<tls");
    let report = client.read_until("/>");
    report
        .trim_end_matches("/>")
        .split_whitespace()
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.to_owned(), value.trim_matches('\'').to_owned()))
        })
        .collect()
}

fn field<'a>(report: &'a [(String, String)], name: &str) -> &'a str {
    report
        .iter()
        .find(|(key, _)| key == name)
        .map_or_else(|| panic!("no {name} in {report:?}"), |(_, value)| value)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `ej cert new` for `domain`, into `dir`; the certificate and key paths.
fn new_cert(dir: &Scratch, file: &str, domain: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.path(&format!("{file}.crt")), dir.path(&format!("{file}.key")));
    let out = ej()
        .args(["cert", "new", "--force", "--domain", domain, "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .expect("running ej cert new");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

fn tls_flags<'a>(cert: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec!["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]
}

#[test]
fn starttls_encrypts_the_stream_and_tells_the_handler_what_it_settled() {
    let server = Server::start("echo", &[]);
    let tls = ClientTls::trusting(&local_cert(&server), "localhost");

    let mut plain = server.open();
    assert_eq!(tls_report(&mut plain), [], "a plain connection has no TLS");

    let mut client = start_tls(server.open(), &tls);
    let header = client.open();
    assert!(
        header.contains("<stream:stream"),
        "a new stream after the handshake: {header}"
    );
    client.send("<message from='a@x' to='b@x'><body>secret</body></message>");
    client.expect("<message xmlns='jabber:client' to='a@x' from='b@x'><body>secret</body></message>");

    let report = tls_report(&mut client);
    assert_eq!(field(&report, "version"), "TLSv1.3");
    assert_eq!(field(&report, "server-name"), "localhost");
    let session = client.tls().expect("encrypted");
    let mut exporter = [0; 32];
    session
        .export_keying_material(&mut exporter, b"EXPORTER-Channel-Binding", None)
        .unwrap();
    assert_eq!(
        field(&report, "exporter"),
        hex(&exporter),
        "RFC 9266 tls-exporter, as the client computes it"
    );
    let presented = session.peer_certificates().expect("a certificate")[0].to_vec();
    let on_disk = CertificateDer::from_pem_file(local_cert(&server)).unwrap();
    assert_eq!(presented, on_disk.to_vec());
    assert_eq!(
        field(&report, "end-point"),
        hex(&Sha256::digest(&presented)),
        "RFC 5929 tls-server-end-point: SHA-256 for an ECDSA-SHA256 certificate"
    );

    client.send("</stream:stream>");
    let rest = client.read_to_end();
    assert!(rest.ends_with("</stream:stream>"), "the stream ends in TLS: {rest:?}");
}

#[test]
fn tls_listeners_handshake_before_the_first_event_and_resume_sessions() {
    let server = Server::start("echo", &["--listen-tls", "127.0.0.1:0"]);
    let tls_addr = server.addrs[1];
    let tls = ClientTls::trusting(&local_cert(&server), "localhost");

    let mut first = Client::connect_tls(tls_addr, &tls);
    first.open();
    assert_eq!(field(&tls_report(&mut first), "server-name"), "localhost");
    assert_eq!(first.tls().unwrap().handshake_kind(), Some(rustls::HandshakeKind::Full));

    let mut second = Client::connect_tls(tls_addr, &tls);
    assert_eq!(
        second.tls().unwrap().handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "the same client resumes its session"
    );
    second.open();
    second.send("<ping/>");
    second.expect(PING);

    // TLS 1.2, with the extended master secret rustls always offers.
    let tls12 = ClientTls::trusting_versions(&local_cert(&server), "localhost", &[&rustls::version::TLS12]);
    let mut old = Client::connect_tls(tls_addr, &tls12);
    old.open();
    let report = tls_report(&mut old);
    assert_eq!(field(&report, "version"), "TLSv1.2");
    assert_eq!(field(&report, "exporter").len(), 64);

    // The plain listener beside it is still plain.
    let mut plain = server.open();
    plain.send("<ping/>");
    plain.expect(PING);
}

#[test]
fn several_certificates_are_chosen_by_the_name_the_peer_asks_for() {
    let dir = Scratch::new("tls-sni");
    let (one_cert, one_key) = new_cert(&dir, "one", "one.example");
    let (two_cert, two_key) = new_cert(&dir, "two", "two.example");
    let mut flags = vec!["--listen-tls", "127.0.0.1:0"];
    flags.extend(tls_flags(&one_cert, &one_key));
    flags.extend(tls_flags(&two_cert, &two_key));
    let server = Server::start("echo", &flags);

    let mut two = Client::connect_tls(server.addrs[1], &ClientTls::trusting(&two_cert, "two.example"));
    two.open();
    assert_eq!(field(&tls_report(&mut two), "server-name"), "two.example");
    let mut one = Client::connect_tls(server.addrs[1], &ClientTls::trusting(&one_cert, "one.example"));
    one.open();
    // A name no certificate has gets the first one.
    let unknown = ClientTls::trusting(&one_cert, "three.example");
    let tcp = std::net::TcpStream::connect(server.addrs[1]).unwrap();
    let refused = unknown
        .try_handshake(tcp)
        .err()
        .expect("the first certificate is not for three.example");
    assert!(refused.to_string().to_lowercase().contains("name"), "{refused}");
}

#[test]
fn bytes_sent_between_starttls_and_the_handshake_are_dropped_and_the_connection_closed() {
    let server = Server::start("echo", &[]);
    let mut client = server.open();
    let id = server.connection_id(&client);
    // The injection of CVE-2011-0411: a stanza right behind the request,
    // meant to be taken as if it had come through TLS.
    client.send(&format!(
        "{STARTTLS}<message to='victim'><body>injected</body></message>"
    ));
    let rest = client.read_to_end();
    assert_eq!(rest, PROCEED, "the injected stanza is never handled");
    assert_eq!(server.wait_for_close(id)["reason"], "tls-failed");
    let failed = server.wait_for_log("TLS failed", |fields| fields["id"] == id);
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("between start-tls and its handshake"),
        "{failed}"
    );
}

#[test]
fn garbage_instead_of_a_client_hello_closes_with_tls_failed() {
    let server = Server::start("echo", &[]);
    let mut client = server.open();
    let id = server.connection_id(&client);
    client.send(STARTTLS);
    client.expect(PROCEED);
    client.send("<message><body>still plain</body></message>");
    let rest = client.read_to_end();
    assert!(!rest.contains("still plain"), "nothing is echoed: {rest:?}");
    assert_eq!(server.wait_for_close(id)["reason"], "tls-failed");
    let failed = server.wait_for_log("TLS failed", |fields| fields["id"] == id);
    assert!(failed["reason"].as_str().unwrap().contains("ClientHello"), "{failed}");

    // The server is fine.
    let mut next = server.open();
    next.send("<ping/>");
    next.expect(PING);
}

#[test]
fn a_plain_text_peer_on_a_tls_listener_is_closed_before_any_event() {
    let server = Server::start("echo", &["--listen-tls", "127.0.0.1:0"]);
    let mut client = Client::connect(server.addrs[1]);
    client.send(STREAM_HEADER);
    let rest = client.read_to_end();
    assert!(!rest.contains("<stream:stream"), "no handler answered: {rest:?}");
    let failed = server.wait_for_log("TLS failed", |_| true);
    assert!(failed["reason"].as_str().unwrap().contains("ClientHello"), "{failed}");
    assert!(
        server.find_log("connection opened", |_| true).is_none(),
        "no session began"
    );
}

#[test]
fn a_peer_that_stalls_mid_handshake_is_closed_and_holds_up_nobody() {
    let server = Server::start(
        "echo",
        &["--listen-tls", "127.0.0.1:0", "--tls-handshake-timeout", "3s"],
    );
    let started = Instant::now();
    let mut stalled: Vec<Client> = (0..20).map(|_| Client::connect(server.addrs[1])).collect();
    // Half a ClientHello: a record header promising more than it sends.
    for client in &mut stalled {
        client.send("\u{16}\u{3}\u{1}\u{2}\u{0}\u{1}");
    }
    // Meanwhile a plain client and a TLS client are served at once.
    let mut plain = server.open();
    plain.send("<ping/>");
    plain.expect(PING);
    let tls = ClientTls::trusting(&local_cert(&server), "localhost");
    let mut encrypted = Client::connect_tls(server.addrs[1], &tls);
    encrypted.open();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "nobody waited for the stalled handshakes"
    );
    for mut client in stalled {
        client.read_to_end();
    }
    let failed = server.wait_for_log("TLS failed", |_| true);
    assert!(
        failed["reason"].as_str().unwrap().contains("took longer than"),
        "{failed}"
    );
}

#[test]
fn start_tls_on_an_encrypted_connection_is_a_fault() {
    let server = Server::start("echo", &[]);
    let tls = ClientTls::trusting(&local_cert(&server), "localhost");
    let mut client = start_tls(server.open(), &tls);
    client.open();
    client.send(STARTTLS);
    let rest = client.read_to_end();
    assert!(!rest.contains("proceed"), "the outcome was refused whole: {rest:?}");
    assert!(rest.contains("<internal-server-error"), "{rest:?}");
    let crash = &server.wait_for_crashes(1)[0];
    assert_eq!(crash["kind"], "bad-action");
    assert!(
        crash["reason"].as_str().unwrap().contains("already encrypted"),
        "{crash}"
    );
}

#[test]
fn certificates_reload_under_live_connections() {
    let dir = Scratch::new("tls-reload");
    let (cert, key) = new_cert(&dir, "live", "localhost");
    let old = dir.path("old.crt");
    std::fs::copy(&cert, &old).unwrap();
    let mut flags = vec!["--listen-tls", "127.0.0.1:0", "--watch"];
    flags.extend(tls_flags(&cert, &key));
    let server = Server::start("echo", &flags);
    let trusts_old = ClientTls::trusting(&old, "localhost");
    let mut live = Client::connect_tls(server.addrs[1], &trusts_old);
    live.open();
    let mut upgraded = start_tls(server.open(), &trusts_old);
    upgraded.open();

    // `ej reload` after the files change.
    new_cert(&dir, "live", "localhost");
    let reload = ej()
        .args(["reload", "--admin"])
        .arg(&server.admin)
        .output()
        .expect("running ej reload");
    let said = String::from_utf8_lossy(&reload.stdout);
    assert!(
        said.contains("ok certificates reloaded") || server.find_log("certificates reloaded", |_| true).is_some(),
        "{said}"
    );
    for client in [&mut live, &mut upgraded] {
        client.send("<still-here/>");
        client.expect("<still-here xmlns='jabber:client'/>");
    }
    let fresh = ClientTls::trusting(&cert, "localhost");
    let mut new = Client::connect_tls(server.addrs[1], &fresh);
    new.open();
    let stale = std::net::TcpStream::connect(server.addrs[1]).unwrap();
    assert!(
        ClientTls::trusting(&old, "localhost").try_handshake(stale).is_err(),
        "new handshakes present the new certificate"
    );

    // --watch: replacing the files is enough.
    let reloads = server.logs_of("certificates reloaded").len();
    new_cert(&dir, "live", "localhost");
    wait_until(|| (server.logs_of("certificates reloaded").len() > reloads).then_some(()));
    let mut newest = Client::connect_tls(server.addrs[1], &ClientTls::trusting(&cert, "localhost"));
    newest.open();
    live.send("<still-here/>");
    live.expect("<still-here xmlns='jabber:client'/>");
}

#[test]
fn bad_certificate_files_stop_serve_with_one_line_and_reload_keeps_the_old() {
    let dir = Scratch::new("tls-bad");
    let (cert, key) = new_cert(&dir, "one", "localhost");
    let (_, other_key) = new_cert(&dir, "two", "localhost");
    let serve = |args: &[&str]| {
        let out = ej()
            .args(["serve", "--listen", "127.0.0.1:0", "--module"])
            .arg(common::guest("echo"))
            .arg("--data-dir")
            .arg(dir.path("data"))
            .arg("--admin")
            .arg(dir.path("admin.sock"))
            .args(args)
            .output()
            .expect("running ej serve");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let last = stderr.lines().last().unwrap_or_default().to_owned();
        assert!(last.starts_with("ej: "), "{stderr}");
        last
    };
    let missing = dir.path("missing.crt");
    let said = serve(&tls_flags(&missing, &key));
    assert!(said.contains("missing.crt"), "{said}");
    let said = serve(&tls_flags(&cert, &other_key));
    assert!(said.contains("do not make a pair"), "{said}");
    let said = serve(&["--tls-cert", cert.to_str().unwrap()]);
    assert!(said.contains("give one key for each certificate"), "{said}");
    std::fs::write(dir.path("empty.crt"), "").unwrap();
    let said = serve(&tls_flags(&dir.path("empty.crt"), &key));
    assert!(said.contains("no certificate"), "{said}");

    // A reload that finds a broken pair keeps the old one serving.
    let mut flags = vec!["--listen-tls", "127.0.0.1:0"];
    flags.extend(tls_flags(&cert, &key));
    let server = Server::start("echo", &flags);
    std::fs::copy(&other_key, &key).unwrap();
    let reload = ej().args(["reload", "--admin"]).arg(&server.admin).output().unwrap();
    assert!(!reload.status.success());
    assert!(String::from_utf8_lossy(&reload.stdout).contains("error certificates"));
    let mut client = Client::connect_tls(server.addrs[1], &ClientTls::trusting(&cert, "localhost"));
    client.open();
}

#[test]
fn an_expired_certificate_is_logged_loudly() {
    let dir = Scratch::new("tls-expired");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.path("old.crt"), cert.pem()).unwrap();
    std::fs::write(dir.path("old.key"), key.serialize_pem()).unwrap();
    let (cert, key) = (dir.path("old.crt"), dir.path("old.key"));
    let server = Server::start("echo", &tls_flags(&cert, &key));
    let line = server.wait_for_log(
        "certificate EXPIRED: peers that check it will refuse every handshake",
        |_| true,
    );
    assert!(line["cert"].as_str().unwrap().ends_with("old.crt"), "{line}");
}

#[test]
fn cert_new_writes_a_pair_with_a_private_key_and_never_overwrites_unasked() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = Scratch::new("cert-new");
    let (cert, key) = new_cert(&dir, "pair", "example.org");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(
        std::fs::read_to_string(&cert)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----")
    );
    let again = ej()
        .args(["cert", "new", "--domain", "example.org", "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists (give --force"));
}

/// What `openssl s_client -starttls xmpp` (a TLS client nobody here
/// wrote) receives from `server` after sending `input` over TLS, up to
/// `expected`.
fn s_client(server: &Server, input: &str, expected: &str) -> String {
    let mut openssl = Command::new("openssl")
        .args(["s_client", "-starttls", "xmpp", "-xmpphost", "localhost", "-quiet"])
        .args(["-verify_return_error", "-CAfile"])
        .arg(local_cert(server))
        .arg("-connect")
        .arg(server.addr.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running openssl (cargo xtask test installs it)");
    let mut stdin = openssl.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let mut stdout = BufReader::new(openssl.stdout.take().unwrap());
    let (found, seen) = std::sync::mpsc::channel();
    let expected_text = expected.to_owned();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        while stdout.read_until(b'>', &mut seen).is_ok_and(|n| n > 0) {
            if String::from_utf8_lossy(&seen).contains(&expected_text) {
                break;
            }
        }
        let _ = found.send(String::from_utf8_lossy(&seen).into_owned());
    });
    let seen = seen.recv_timeout(common::PATIENCE).expect("openssl said nothing");
    let _ = openssl.kill();
    let _ = openssl.wait();
    let mut stderr = String::new();
    let _ = openssl.stderr.take().unwrap().read_to_string(&mut stderr);
    assert!(seen.contains(expected), "{seen:?} {stderr}");
    seen
}

/// `openssl s_client -starttls xmpp` against the XMPP server `cargo xtask
/// run` serves: after TLS the stream offers SASL, PLAIN included.
#[test]
fn openssl_s_client_starttls_xmpp_reaches_the_xmpp_server() {
    let server = Server::start("xmpp", &[]);
    let header = STREAM_HEADER.replace("example.com", "localhost");
    let seen = s_client(&server, &header, "</stream:features>");
    assert!(
        seen.contains("<mechanism>PLAIN</mechanism>"),
        "PLAIN is offered over TLS only: {seen:?}"
    );
    assert!(
        seen.contains("SCRAM-SHA-256-PLUS"),
        "channel binding is offered: {seen:?}"
    );
    assert!(!seen.contains("<starttls"), "not offered again: {seen:?}");
}

/// The same against the chat example.
#[test]
fn openssl_s_client_starttls_xmpp_reaches_the_chat() {
    let server = Server::start("chat", &[]);
    server.store(&["put", "room:lobby", "{}"]);
    let seen = s_client(&server, &format!("{STREAM_HEADER}<rooms/>"), "<room name='lobby'/>");
    assert!(
        seen.contains("<stream:stream"),
        "the chat answered a stream opened over TLS: {seen:?}"
    );
    let closed = server.wait_for_log("connection closed", |_| true);
    assert_ne!(closed["reason"], "tls-failed");
}
