//! The XMPP handler at the protocol's edges, over raw TCP with a raw XML
//! client: what the server refuses before authentication (another domain,
//! stanzas, PLAIN in the clear, oversized stanzas, repeated failures),
//! SASL2 with Bind2 and FAST tokens written out by hand, the
//! stanza errors it answers with, the operator's account commands (which
//! never log a password), in-band registration behind its switch, a hot
//! swap of the handler in the middle of a session, and archives (one
//! append and one stanza-id per received message, the operator's limit, an
//! archive kept in the earlier layout). Real client libraries
//! are driven in `xmpp_slixmpp.rs` and `xmpp_xmpp_js.rs`.

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use common::tls::ClientTls;
use common::variant::variant;
use common::{Client, Server, ej};

const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>";
const SASL: &str = "urn:ietf:params:xml:ns:xmpp-sasl";

/// Opens a stream to `localhost` and reads the features.
fn open(client: &mut Client) -> String {
    client.send(HEADER);
    client.read_until("</stream:features>")
}

/// A server with the account alice (password `alice-password`).
fn server(flags: &[&str]) -> Server {
    let server = Server::start("xmpp", flags);
    server.command(&["user", "add", "alice", "alice-password"]);
    server
}

/// A client whose stream is open again after STARTTLS; and the features.
fn encrypted(server: &Server) -> (Client, String) {
    let mut client = server.connect();
    open(&mut client);
    client.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    client.expect("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    let tls = ClientTls::trusting(&server.data_dir.join("tls/localhost.crt"), "localhost");
    let mut client = client.start_tls(&tls);
    let features = open(&mut client);
    (client, features)
}

/// Logs alice in over STARTTLS with PLAIN; returns the client and the
/// features of its authenticated stream.
fn authenticated(server: &Server) -> (Client, String) {
    authenticated_as(server, "alice")
}

/// The same for `user`, whose password is `USER-password`.
fn authenticated_as(server: &Server, user: &str) -> (Client, String) {
    let (mut client, features) = encrypted(server);
    assert!(features.contains("<mechanism>PLAIN</mechanism>"), "{features}");
    let credentials = BASE64.encode(format!("\0{user}\0{user}-password"));
    client.send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{credentials}</auth>"));
    client.expect(&format!("<success xmlns='{SASL}'></success>"));
    let features = open(&mut client);
    (client, features)
}

/// Logs alice in over STARTTLS with PLAIN and binds `resource`.
fn login(server: &Server, resource: &str) -> Client {
    login_as(server, "alice", resource)
}

/// The same for `user` (see `authenticated_as`).
fn login_as(server: &Server, user: &str, resource: &str) -> Client {
    let (mut client, features) = authenticated_as(server, user);
    assert!(features.contains("urn:ietf:params:xml:ns:xmpp-bind"), "{features}");
    client.send(&format!(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{resource}</resource></bind></iq>"
    ));
    client.read_until(&format!("<jid>{user}@localhost/{resource}</jid></bind></iq>"));
    client
}

/// Reads until the server closes the connection, which it must do with
/// the stream error `condition`; returns what came.
fn ends_with_stream_error(client: &mut Client, condition: &str) -> String {
    let rest = client.read_to_end();
    let error = format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    assert!(rest.contains(&error), "expected {error}: {rest}");
    assert!(rest.ends_with("</stream:stream>"), "{rest}");
    rest
}

/// Reads the iq answering `id`, whole (a result may be an empty element).
fn read_iq(client: &mut Client, id: &str) -> String {
    let mut answer = client.read_until(&format!("id='{id}'"));
    answer.push_str(&client.read_until(">"));
    if !answer.ends_with("/>") {
        answer.push_str(&client.read_until("</iq>"));
    }
    answer
}

#[test]
fn a_stream_to_a_domain_not_served_gets_host_unknown() {
    let server = server(&[]);
    let mut client = server.connect();
    client.open(); // to='example.com'
    ends_with_stream_error(&mut client, "host-unknown");
}

#[test]
fn before_authentication_only_starttls_and_sasl_are_accepted() {
    let server = server(&[]);
    let mut client = server.connect();
    let features = open(&mut client);
    assert!(features.contains("<starttls"), "{features}");
    assert!(
        !features.contains("PLAIN"),
        "PLAIN is never offered in the clear: {features}"
    );
    client.send("<message to='alice@localhost'><body>hi</body></message>");
    ends_with_stream_error(&mut client, "not-authorized");
}

#[test]
fn plain_in_the_clear_is_refused_and_repeated_failures_close_the_stream() {
    let server = server(&[]);
    let mut client = server.connect();
    open(&mut client);
    let credentials = BASE64.encode(b"\0alice\0alice-password");
    for _ in 0..4 {
        client.send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{credentials}</auth>"));
        client.expect(&format!("<failure xmlns='{SASL}'><encryption-required/></failure>"));
    }
    client.send(&format!("<auth xmlns='{SASL}' mechanism='NOPE'>=</auth>"));
    let rest = ends_with_stream_error(&mut client, "policy-violation");
    assert!(
        rest.contains("<invalid-mechanism/>"),
        "the fifth failure, then the end: {rest}"
    );
}

/// The client side of SCRAM-SHA-256-PLUS bound with `tls-exporter`
/// (RFC 5802, RFC 9266), written out here so the test can also lie about
/// the binding: `binding` is the channel-binding data the client sends.
fn scram_plus(client: &mut Client, password: &str, binding: &[u8]) -> String {
    use hmac::{Hmac, Mac as _};
    use sha2::{Digest as _, Sha256};
    let hmac = |key: &[u8], data: &[u8]| {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize().into_bytes().to_vec()
    };
    let gs2 = "p=tls-exporter,,";
    let first_bare = "n=alice,r=clientnonce0123456789";
    client.send(&format!(
        "<auth xmlns='{SASL}' mechanism='SCRAM-SHA-256-PLUS'>{}</auth>",
        BASE64.encode(format!("{gs2}{first_bare}"))
    ));
    client.read_until(&format!("<challenge xmlns='{SASL}'>"));
    let server_first = String::from_utf8(
        BASE64
            .decode(client.read_until("</challenge>").trim_end_matches("</challenge>"))
            .unwrap(),
    )
    .unwrap();
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|kv| kv.strip_prefix(name))
            .unwrap()
            .to_owned()
    };
    let (nonce, salt, iterations) = (
        field("r="),
        BASE64.decode(field("s=")).unwrap(),
        field("i=").parse().unwrap(),
    );
    assert!(nonce.starts_with("clientnonce0123456789"), "{server_first}");
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), &salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let without_proof = format!("c={},r={nonce}", BASE64.encode([gs2.as_bytes(), binding].concat()));
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac(&stored_key, auth_message.as_bytes());
    let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
    client.send(&format!(
        "<response xmlns='{SASL}'>{}</response>",
        BASE64.encode(format!("{without_proof},p={}", BASE64.encode(proof)))
    ));
    let mut answer = client.read_until("</");
    answer.push_str(&client.read_until(">"));
    let expected = hmac(&hmac(&salted, b"Server Key"), auth_message.as_bytes());
    if answer.contains("<success") {
        assert!(
            answer.contains(&BASE64.encode(format!("v={}", BASE64.encode(expected)))),
            "the server proves it knows the key too: {answer}"
        );
    }
    answer
}

#[test]
fn scram_plus_binds_the_login_to_this_tls_channel() {
    let server = server(&[]);
    let (mut client, features) = encrypted(&server);
    assert!(
        features.contains("<channel-binding type='tls-exporter'/>"),
        "{features}"
    );
    let mut exporter = [0; 32];
    client
        .tls()
        .unwrap()
        .export_keying_material(&mut exporter, b"EXPORTER-Channel-Binding", None)
        .unwrap();
    // Another channel's binding (a man in the middle's) fails.
    let answer = scram_plus(&mut client, "alice-password", &[0; 32]);
    assert!(
        answer.contains("<failure") && answer.contains("not-authorized"),
        "{answer}"
    );
    let answer = scram_plus(&mut client, "alice-password", &exporter);
    assert!(answer.contains("<success"), "{answer}");
}

// SASL2 (XEP-0388) with Bind2 (XEP-0386) and FAST (XEP-0484), by hand.

const SASL2: &str = "urn:xmpp:sasl:2";
/// A SASL2 user-agent: the client installation FAST tokens belong to.
const AGENT: &str = "<user-agent id='d0c5e4b2-7f1a-4c3b-9e8d-2a1b3c4d5e6f'><software>ej tests</software></user-agent>";

/// Sends a SASL2 `<authenticate/>` for `mechanism` with the initial
/// response `data` and `more` inside; returns the server's answer, whole.
fn authenticate(client: &mut Client, mechanism: &str, data: &[u8], more: &str) -> String {
    client.send(&format!(
        "<authenticate xmlns='{SASL2}' mechanism='{mechanism}'><initial-response>{}</initial-response>{more}</authenticate>",
        BASE64.encode(data)
    ));
    sasl2_answer(client)
}

/// Authenticates alice with PLAIN over SASL2, with `more` inside; the
/// server's answer, whole.
fn plain_sasl2(client: &mut Client, more: &str) -> String {
    authenticate(client, "PLAIN", b"\0alice\0alice-password", more)
}

/// Reads a SASL2 `<success/>`, `<failure/>` or `<challenge/>`, whole.
fn sasl2_answer(client: &mut Client) -> String {
    let mut answer = String::new();
    while !["</success>", "</failure>", "</challenge>"]
        .iter()
        .any(|end| answer.ends_with(end))
    {
        answer.push_str(&client.read_until(">"));
    }
    answer
}

/// The SASL2 failure for `condition`, with `text` if there is one.
fn sasl2_failure(condition: &str, text: Option<&str>) -> String {
    let text = text.map(|text| format!("<text>{text}</text>")).unwrap_or_default();
    format!("<failure xmlns='{SASL2}'><{condition} xmlns='{SASL}'/>{text}</failure>")
}

/// The text between `start` and `end` in `text`.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let rest = text.split_once(start).map_or("", |(_, rest)| rest);
    rest.split_once(end).map_or("", |(inside, _)| inside)
}

#[test]
fn sasl2_with_bind2_binds_and_enables_carbons_with_no_stream_restart() {
    let server = server(&[]);
    let (mut client, features) = encrypted(&server);
    assert!(
        features.contains(&format!("<authentication xmlns='{SASL2}'>")),
        "{features}"
    );
    assert!(
        features.contains("<bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/>"),
        "{features}"
    );
    assert!(
        features.contains("<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast>"),
        "{features}"
    );
    let bind = "<bind xmlns='urn:xmpp:bind:0'><tag>desk</tag><enable xmlns='urn:xmpp:carbons:2'/></bind>";
    let answer = plain_sasl2(&mut client, &format!("{AGENT}{bind}"));
    assert!(answer.starts_with(&format!("<success xmlns='{SASL2}'>")), "{answer}");
    assert!(answer.contains("<bound xmlns='urn:xmpp:bind:0'/>"), "{answer}");
    let jid = between(&answer, "<authorization-identifier>", "</authorization-identifier>");
    let resource = jid.strip_prefix("alice@localhost/").unwrap_or_default();
    assert!(resource.starts_with("desk/") && resource.len() == 29, "{answer}");
    // The features of the bound stream follow at once: nothing to bind.
    let features = client.read_until("</stream:features>");
    assert!(features.starts_with("<stream:features>"), "{features}");
    assert!(!features.contains("xmpp-bind"), "{features}");
    // The session is bound as any other: it gets what is sent to it, and
    // asked for carbons.
    client.send(&format!(
        "<message to='{jid}' type='chat' id='m1'><body>hi</body></message>"
    ));
    client.read_until("<body>hi</body></message>");
    let carbons = server.store(&["list", "carbons/alice/"]);
    assert!(carbons.contains(&format!("carbons/alice/{resource}")), "{carbons}");
    // The same installation gets the same resource: its new session
    // replaces the old one. This one enables stream management inline.
    let (mut again, features) = encrypted(&server);
    assert!(features.contains("<feature var='urn:xmpp:sm:3'/>"), "{features}");
    let bind = bind.replace(
        "</bind>",
        "<enable xmlns='urn:xmpp:sm:3' resume='true' max='5'/></bind>",
    );
    let answer = plain_sasl2(&mut again, &format!("{AGENT}{bind}"));
    assert!(
        answer.contains(&format!(">{jid}</authorization-identifier>")),
        "{answer}"
    );
    let enabled = between(&answer, "<bound xmlns='urn:xmpp:bind:0'>", "</bound>");
    assert!(
        enabled.starts_with("<enabled xmlns='urn:xmpp:sm:3' id='") && enabled.ends_with(" resume='true' max='5'/>"),
        "{answer}"
    );
    ends_with_stream_error(&mut client, "conflict");
}

#[test]
fn sasl2_without_bind2_leaves_rfc_6120_binding_to_the_same_stream() {
    let server = server(&[]);
    let (mut client, _) = encrypted(&server);
    let answer = plain_sasl2(&mut client, "");
    assert_eq!(
        answer,
        format!(
            "<success xmlns='{SASL2}'><authorization-identifier>alice@localhost</authorization-identifier></success>"
        )
    );
    let features = client.read_until("</stream:features>");
    assert!(features.contains("urn:ietf:params:xml:ns:xmpp-bind"), "{features}");
    client.send(
        "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>desk</resource></bind></iq>",
    );
    client.read_until("<jid>alice@localhost/desk</jid></bind></iq>");
}

#[test]
fn sasl2_refuses_what_it_cannot_do_and_five_failures_close_the_stream() {
    let server = server(&[]);
    let (mut client, _) = encrypted(&server);
    let password = b"\0alice\0alice-password";
    // A mechanism not offered.
    let answer = authenticate(&mut client, "NOPE", password, "");
    assert_eq!(answer, sasl2_failure("invalid-mechanism", None));
    // An initial response that is not base64.
    client.send(&format!(
        "<authenticate xmlns='{SASL2}' mechanism='PLAIN'><initial-response>not base64!</initial-response></authenticate>"
    ));
    assert_eq!(sasl2_answer(&mut client), sasl2_failure("incorrect-encoding", None));
    // A Bind2 tag over 64 bytes: refused before the password is looked at.
    let tag = "x".repeat(65);
    let answer = authenticate(
        &mut client,
        "PLAIN",
        password,
        &format!("<bind xmlns='urn:xmpp:bind:0'><tag>{tag}</tag></bind>"),
    );
    let text = "the Bind2 tag is longer than 64 bytes";
    assert_eq!(answer, sasl2_failure("malformed-request", Some(text)));
    // A wrong password.
    let answer = authenticate(&mut client, "PLAIN", b"\0alice\0not-alice-password", "");
    assert_eq!(answer, sasl2_failure("not-authorized", None));
    // A FAST token that was never issued: the fifth failure, the last.
    let answer = authenticate(
        &mut client,
        "HT-SHA-256-NONE",
        &[b"alice\0".as_slice(), &[7; 32]].concat(),
        AGENT,
    );
    assert_eq!(answer, sasl2_failure("not-authorized", None));
    ends_with_stream_error(&mut client, "policy-violation");
}

#[test]
fn a_fast_token_authenticates_its_installation_in_one_round_trip() {
    use hmac::{Hmac, Mac as _};
    use sha2::Sha256;
    let server = server(&[]);
    let (mut client, _) = encrypted(&server);
    let request = "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>";
    let answer = plain_sasl2(&mut client, &format!("{AGENT}{request}"));
    assert!(answer.contains("<token xmlns='urn:xmpp:fast:0' expiry='"), "{answer}");
    let mut token = between(&answer, " token='", "'").to_owned();
    assert!(token.len() >= 32, "{answer}");
    // HT-SHA-256-NONE: HMAC-SHA-256 keyed with the token over "Initiator"
    // from the client, over "Responder" from the server.
    let proof = |token: &str, label: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(token.as_bytes()).unwrap();
        mac.update(label.as_bytes());
        mac.finalize().into_bytes().to_vec()
    };
    let fast = |token: &str, more: &str| {
        let (mut client, _) = encrypted(&server);
        let response = [b"alice\0".as_slice(), &proof(token, "Initiator")].concat();
        authenticate(&mut client, "HT-SHA-256-NONE", &response, more)
    };
    let answer = fast(&token, &format!("{AGENT}<fast xmlns='urn:xmpp:fast:0'/>"));
    assert_eq!(
        answer,
        format!(
            "<success xmlns='{SASL2}'><additional-data>{}</additional-data>\
             <authorization-identifier>alice@localhost</authorization-identifier></success>",
            BASE64.encode(proof(&token, "Responder"))
        )
    );
    // Another installation cannot use it.
    let other = "<user-agent id='11111111-2222-4333-8444-555555555555'/><fast xmlns='urn:xmpp:fast:0'/>";
    assert_eq!(fast(&token, other), sasl2_failure("not-authorized", None));
    // Close to its expiry (as the store says), it is rotated: the success
    // brings a successor, and the first use of that one ends the old one
    // (which works until then, each use bringing a fresh successor).
    let key = "fast/alice/d0c5e4b2-7f1a-4c3b-9e8d-2a1b3c4d5e6f";
    let mut record: serde_json::Value = serde_json::from_str(server.store(&["get", key]).trim()).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    record["current"]["expiry"] = serde_json::json!(now + 86_400);
    server.store(&["put", key, &record.to_string()]);
    let answer = fast(&token, AGENT);
    assert!(answer.contains("<token xmlns='urn:xmpp:fast:0'"), "{answer}");
    let old = std::mem::replace(&mut token, between(&answer, " token='", "'").to_owned());
    let answer = fast(&token, AGENT);
    assert!(answer.starts_with("<success") && !answer.contains("<token"), "{answer}");
    assert_eq!(fast(&old, AGENT), sasl2_failure("not-authorized", None));
    // Its installation may invalidate it, by using it once more.
    let answer = fast(
        &token,
        &format!("{AGENT}<fast xmlns='urn:xmpp:fast:0' invalidate='true'/>"),
    );
    assert!(answer.starts_with(&format!("<success xmlns='{SASL2}'>")), "{answer}");
    assert!(!answer.contains("<token"), "{answer}");
    assert_eq!(fast(&token, AGENT), sasl2_failure("not-authorized", None));
    // A new token stops working when the password changes.
    let (mut client, _) = encrypted(&server);
    let answer = plain_sasl2(&mut client, &format!("{AGENT}{request}"));
    let token = between(&answer, " token='", "'").to_owned();
    server.command(&["user", "password", "alice", "alice-new-password"]);
    assert_eq!(fast(&token, AGENT), sasl2_failure("not-authorized", None));
}

#[test]
fn an_account_keeps_fast_tokens_for_16_installations_at_most() {
    let server = server(&[]);
    let request = "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>";
    let agent = |n: u32| format!("00000000-0000-4000-8000-{n:012}");
    for n in 0..17 {
        let (mut client, _) = encrypted(&server);
        let more = format!("<user-agent id='{}'/>{request}", agent(n));
        let answer = plain_sasl2(&mut client, &more);
        assert!(answer.contains("<token xmlns='urn:xmpp:fast:0'"), "{answer}");
    }
    // The first installation's token went to make room for the 17th.
    let kept = server.store(&["list", "fast/alice/"]);
    assert_eq!(kept.lines().count(), 16, "{kept}");
    assert!(!kept.contains(&agent(0)), "{kept}");
    assert!(kept.contains(&agent(16)), "{kept}");
}

#[test]
fn a_large_stanza_is_refused_before_authentication_and_delivered_after() {
    let server = server(&[]);
    let big = format!(
        "<message to='alice@localhost/desk'><body>{}</body></message>",
        "x".repeat(20_000)
    );
    let mut stranger = server.connect();
    open(&mut stranger);
    stranger.send(&big);
    ends_with_stream_error(&mut stranger, "policy-violation");

    let mut alice = login(&server, "desk");
    alice.send(&big);
    let echoed = alice.read_until("</message>");
    assert!(
        echoed.contains(&"x".repeat(20_000)),
        "a 20 KB message to herself arrives"
    );
}

#[test]
fn requests_the_server_cannot_meet_get_stanza_errors() {
    let server = server(&[]);
    let mut alice = login(&server, "desk");
    let cases = [
        (
            "<iq type='get' id='q1' to='localhost'><query xmlns='urn:example:unknown'/></iq>",
            "service-unavailable",
        ),
        (
            "<iq type='get' id='q2' to='example.org'><ping xmlns='urn:xmpp:ping'/></iq>",
            "remote-server-not-found",
        ),
        (
            "<message id='q3' to='nobody@localhost' type='chat'><body>hi</body></message>",
            "service-unavailable",
        ),
        (
            "<iq type='get' id='q4' to='alice@localhost/gone'><ping xmlns='urn:xmpp:ping'/></iq>",
            "service-unavailable",
        ),
    ];
    for (request, condition) in cases {
        alice.send(request);
        let kind = &request[1..request.find(' ').unwrap()];
        let answer = alice.read_until(&format!("</{kind}>"));
        let id = &request[request.find("id='").unwrap()..][..8];
        assert!(
            answer.contains("type='error'") && answer.contains(id),
            "{request} → {answer}"
        );
        let error = format!("<{condition} xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>");
        assert!(answer.contains(&error), "{request} → {answer}");
    }
    // Nothing went wrong on the way.
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

#[test]
fn operator_commands_manage_accounts_and_never_log_a_password() {
    let server = server(&[]);
    assert_eq!(server.command(&["user", "list"]).trim(), "alice@localhost");
    let again = ej()
        .args(["command", "--admin"])
        .arg(&server.admin)
        .args(["user", "add", "alice", "other-password"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    server.command(&["user", "add", "bob", "bob-secret-1"]);
    server.command(&["user", "password", "bob", "bob-secret-2"]);
    assert_eq!(server.command(&["user", "list"]).lines().count(), 2);
    assert_eq!(server.command(&["user", "list", "b"]).trim(), "bob@localhost");
    server.command(&["user", "remove", "bob"]);
    assert_eq!(server.command(&["user", "list"]).trim(), "alice@localhost");
    let everything = format!(
        "{:?}{:?}",
        server.logs_of(""),
        std::fs::read_to_string(&server.crash_log).unwrap_or_default()
    );
    let logs = format!("{everything}{:?}", server.text_log());
    for password in ["alice-password", "other-password", "bob-secret-1", "bob-secret-2"] {
        assert!(!logs.contains(password), "{password} in the logs");
    }
    let stored = server.store(&["list", "account/"]);
    assert!(
        !stored.contains("alice-password"),
        "only salted keys are stored: {stored}"
    );
}

#[test]
fn removing_an_account_ends_its_sessions() {
    let server = server(&[]);
    let mut alice = login(&server, "desk");
    assert!(
        server
            .command(&["user", "remove", "alice"])
            .contains("removed alice@localhost")
    );
    let rest = ends_with_stream_error(&mut alice, "not-authorized");
    assert!(rest.contains("the account was removed"), "{rest}");
    let (mut again, _) = encrypted(&server);
    let credentials = BASE64.encode(b"\0alice\0alice-password");
    again.send(&format!("<auth xmlns='{SASL}' mechanism='PLAIN'>{credentials}</auth>"));
    again.expect(&format!("<failure xmlns='{SASL}'><not-authorized/></failure>"));
}

#[test]
fn in_band_registration_is_off_until_the_operator_opens_it() {
    let server = server(&[]);
    let register = "<iq type='set' id='r'><query xmlns='jabber:iq:register'>\
                    <username>carol</username><password>carol-password</password></query></iq>";
    let registering = |server: &Server| {
        let (mut client, features) = encrypted(server);
        client.send(register);
        (features, read_iq(&mut client, "r"))
    };
    let (features, answer) = registering(&server);
    assert!(!features.contains("iq-register"), "{features}");
    assert!(answer.contains("<service-unavailable"), "{answer}");
    server.command(&["config", "registration", "open"]);
    let (features, answer) = registering(&server);
    assert!(
        features.contains("<register xmlns='http://jabber.org/features/iq-register'/>"),
        "{features}"
    );
    assert!(answer.contains("type='result'"), "{answer}");
    assert!(server.command(&["user", "list"]).contains("carol@localhost"));
    let (_, answer) = registering(&server);
    assert!(answer.contains("<conflict"), "the name is taken now: {answer}");
}

#[test]
fn a_hot_swap_in_the_middle_of_a_session_keeps_it() {
    // The server reads its module from a file of its own, which the swap replaces.
    let scratch = common::Scratch::new("xmpp-swap");
    let file = scratch.path("xmpp.wasm");
    let original = std::fs::read(common::guest("xmpp")).unwrap();
    std::fs::write(&file, &original).unwrap();
    let server = Server::start_module(&file, &[]);
    server.command(&["user", "add", "alice", "alice-password"]);
    let mut alice = login(&server, "desk");
    alice.send("<presence/>");
    alice.send("<message to='alice@localhost/desk' type='chat' id='m1'><body>before</body></message>");
    alice.read_until("before</body></message>");

    std::fs::write(&file, variant(&original, "swap")).unwrap();
    let reload = ej().args(["reload", "--admin"]).arg(&server.admin).output().unwrap();
    let said = String::from_utf8_lossy(&reload.stdout);
    assert!(said.contains("swapped"), "{said}");

    // The session goes on under the new build: bound, available, its roster.
    alice.send("<message to='alice@localhost' type='chat' id='m2'><body>after</body></message>");
    alice.read_until("after</body></message>");
    alice.send("<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
    let roster = alice.read_until("</iq>");
    assert!(
        roster.contains("type='result'") && roster.contains("id='r1'"),
        "{roster}"
    );
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

#[test]
fn large_messages_shorten_an_archive_page_and_a_room_refuses_what_it_could_not_deliver() {
    let server = server(&[]);
    let mut alice = login(&server, "desk");
    // Thirty messages of 60 KiB to her own bare JID, each archived once:
    // 1.8 MB, more than one event may send.
    let body = "x".repeat(60 * 1024);
    for n in 0..30 {
        alice.send(&format!(
            "<message to='alice@localhost' type='chat' id='big{n}'><body>{n:02}{body}</body></message>"
        ));
    }
    alice.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>");
    alice.read_until("id='sync'");
    // Pages of up to 50 come shorter, none too large to send, and together
    // hold all thirty in order.
    let (mut seen, mut after, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        pages += 1;
        assert!(pages <= 30, "the pages never complete");
        alice.send(&format!(
            "<iq type='set' id='page{pages}'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
             <max>50</max>{after}</set></query></iq>"
        ));
        let page = alice.read_until("</fin></iq>");
        assert!(page.len() < 1024 * 1024, "a page of {} bytes", page.len());
        seen.extend(page.split("<body>").skip(1).map(|rest| rest[..2].to_owned()));
        if page.contains("complete='true'") {
            break;
        }
        let last = page
            .split("<last>")
            .nth(1)
            .and_then(|rest| rest.split("</last>").next())
            .expect("a last id");
        after = format!("<after>{last}</after>");
    }
    let expected: Vec<String> = (0..30).map(|n| format!("{n:02}")).collect();
    assert_eq!(seen, expected);
    assert!(pages > 1, "one page held 1.8 MB");

    // A room message that would need more than one event may send to reach
    // every occupant is refused; a small one still goes to all.
    let mut occupants: Vec<Client> = (0..14).map(|n| login(&server, &format!("r{n}"))).collect();
    for (n, occupant) in occupants.iter_mut().enumerate() {
        occupant.send(&format!(
            "<presence to='big@conference.localhost/r{n}'><x xmlns='http://jabber.org/protocol/muc'/></presence>"
        ));
        occupant.read_until("</subject></message>");
    }
    occupants[0].send(&format!(
        "<message to='big@conference.localhost' type='groupchat' id='huge'><body>{body}</body></message>"
    ));
    let refused = occupants[0].read_until("</error></message>");
    assert!(
        refused.contains("resource-constraint") && refused.contains("id='huge'"),
        "{refused}"
    );
    occupants[0]
        .send("<message to='big@conference.localhost' type='groupchat' id='small'><body>hello</body></message>");
    for occupant in &mut occupants {
        occupant.read_until("<body>hello</body>");
    }
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

/// The `id` of the stanza-id `by` put on `message`.
fn stanza_id<'a>(message: &'a str, by: &str) -> &'a str {
    let tag = message
        .split("<stanza-id ")
        .skip(1)
        .find(|tag| tag.contains(&format!("by='{by}'")))
        .unwrap_or_else(|| panic!("no stanza-id by {by}: {message}"));
    between(tag, "id='", "'")
}

/// The id and body of each archived message on a page of results.
fn results(page: &str) -> Vec<(&str, &str)> {
    page.split("<result ")
        .skip(1)
        .map(|result| (between(result, " id='", "'"), between(result, "<body>", "</body>")))
        .collect()
}

/// Asks for `client`'s archived messages (with `with`, if given); returns
/// the page.
fn query_archive(client: &mut Client, with: Option<&str>) -> String {
    let form = with.map_or_else(String::new, |with| {
        format!(
            "<x xmlns='jabber:x:data' type='submit'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>\
             <field var='with'><value>{with}</value></field></x>"
        )
    });
    client.send(&format!(
        "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'>{form}</query></iq>"
    ));
    client.read_until("</fin></iq>")
}

#[test]
fn a_message_is_archived_once_for_its_receiver_and_every_session_gets_that_stanza_id() {
    let server = server(&[]);
    server.command(&["user", "add", "bob", "bob-password"]);
    let mut alice = login(&server, "desk");
    let mut sessions: Vec<Client> = ["desk", "phone"]
        .iter()
        .map(|resource| {
            let mut bob = login_as(&server, "bob", resource);
            bob.send("<presence/><iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>");
            read_iq(&mut bob, "sync");
            bob
        })
        .collect();
    // To the bare JID, with a stanza-id of the client's own making (which
    // the server removes): both sessions, one id.
    alice.send(
        "<message to='bob@localhost' type='chat' id='m1'><body>one</body>\
         <stanza-id xmlns='urn:xmpp:sid:0' id='forged' by='bob@localhost'/></message>",
    );
    let copies: Vec<String> = sessions.iter_mut().map(|bob| bob.read_until("</message>")).collect();
    assert!(
        copies
            .iter()
            .all(|copy| copy.contains("<body>one</body>") && !copy.contains("forged")),
        "{copies:?}"
    );
    let first = stanza_id(&copies[0], "bob@localhost").to_owned();
    assert_eq!(stanza_id(&copies[1], "bob@localhost"), first);
    // To one session.
    alice.send("<message to='bob@localhost/phone' type='chat' id='m2'><body>two</body></message>");
    let second = sessions[1].read_until("</message>");
    let second = stanza_id(&second, "bob@localhost").to_owned();
    assert_ne!(second, first);

    // Offline: archived on arrival, the kept copy carrying the id.
    for mut bob in sessions {
        bob.send("</stream:stream>");
        bob.read_to_end();
    }
    alice.send("<message to='bob@localhost' type='chat' id='m3'><body>three</body></message>");
    alice.send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>");
    read_iq(&mut alice, "sync");
    let mut bob = login_as(&server, "bob", "laptop");
    bob.send("<presence/>");
    let kept = bob.read_until("<body>three</body>");
    let kept = kept + &bob.read_until("</message>");
    let third = stanza_id(&kept, "bob@localhost").to_owned();

    // bob's archive holds each once, under the ids his sessions got.
    let page = query_archive(&mut bob, None);
    let archived = results(&page);
    assert_eq!(
        archived,
        [
            (first.as_str(), "one"),
            (second.as_str(), "two"),
            (third.as_str(), "three")
        ],
        "{page}"
    );
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

#[test]
fn an_archive_kept_in_the_earlier_layout_is_read_and_appended_to() {
    let server = server(&[]);
    server.command(&["user", "add", "bob", "bob-password"]);
    // alice's archive as the handler kept it before each run moved beside
    // the keys it numbers: two messages from bob, the records' run in the
    // head, the conversation's in a span of its own.
    let archive = "mam/alice@localhost";
    let generation = format!("{archive}/oldgen01");
    server.store(&["put", archive, r#"{"generation":"oldgen01","first":0,"next":2}"#]);
    for n in 0..2u64 {
        let message = format!(
            "<message from='bob@localhost/desk' to='alice@localhost' type='chat'><body>old{n}</body></message>"
        );
        let record =
            serde_json::json!({"with": "bob@localhost", "place": n, "time": 1_700_000_000 + n, "message": message});
        server.store(&["put", &format!("{generation}/record/{n:020}"), &record.to_string()]);
        server.store(&[
            "put",
            &format!("{generation}/place/bob@localhost/{n:020}"),
            &n.to_string(),
        ]);
    }
    server.store(&[
        "put",
        &format!("{generation}/span/bob@localhost"),
        r#"{"first":0,"next":2}"#,
    ]);

    let mut alice = login(&server, "desk");
    alice.send("<message to='bob@localhost' type='chat' id='new'><body>new</body></message>");
    let page = query_archive(&mut alice, Some("bob@localhost"));
    let archived = results(&page);
    assert_eq!(
        archived,
        [("oldgen01-0", "old0"), ("oldgen01-1", "old1"), ("oldgen01-2", "new")],
        "{page}"
    );
    // The runs now sit beside their keys, and the old span is gone.
    assert_eq!(
        server.store(&["get", &format!("{generation}/record/~")]).trim(),
        r#"{"first":0,"next":3}"#
    );
    assert_eq!(
        server
            .store(&["get", &format!("{generation}/place/bob@localhost/~")])
            .trim(),
        r#"{"first":0,"next":3}"#
    );
    assert_eq!(server.store(&["list", &format!("{generation}/span/")]).trim(), "");
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

#[test]
fn an_archive_over_the_operators_limit_forgets_its_oldest_messages() {
    let server = server(&[]);
    server.command(&["user", "add", "bob", "bob-password"]);
    server.command(&["config", "archive-limit", "3"]);
    let mut alice = login(&server, "desk");
    // One to herself, then four to bob: five in her archive, over three.
    alice.send("<message to='alice@localhost' type='chat' id='m0'><body>m0</body></message>");
    for n in 1..5 {
        alice.send(&format!(
            "<message to='bob@localhost' type='chat' id='m{n}'><body>m{n}</body></message>"
        ));
    }
    let bodies = |page: &str| -> Vec<String> { results(page).into_iter().map(|(_, body)| body.to_owned()).collect() };
    assert_eq!(bodies(&query_archive(&mut alice, None)), ["m2", "m3", "m4"]);
    assert_eq!(
        bodies(&query_archive(&mut alice, Some("bob@localhost"))),
        ["m2", "m3", "m4"]
    );
    assert!(bodies(&query_archive(&mut alice, Some("alice@localhost"))).is_empty());
    // The conversation with herself went whole, its run with it.
    let keys = server.store(&["list", "mam/alice@localhost/"]);
    assert!(!keys.contains("/place/alice@localhost/"), "{keys}");
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

const SM: &str = "urn:xmpp:sm:3";

/// Sends `<r/>` and reads the server's `<a h=…/>`.
fn acked_by_server(client: &mut Client) -> String {
    client.send(&format!("<r xmlns='{SM}'/>"));
    client.read_until(&format!("<a xmlns='{SM}'"));
    client.read_until("/>")
}

#[test]
fn stream_management_resumes_a_session_with_what_its_client_missed_and_keeps_it_when_nobody_does() {
    let server = server(&[]);
    let mut desk = login(&server, "desk");
    let mut phone = login(&server, "phone");
    phone.send(&format!("<enable xmlns='{SM}' resume='true' max='1'/>"));
    let enabled = phone.read_until("/>");
    assert!(
        enabled.contains("resume='true'") && enabled.contains("max='1'"),
        "{enabled}"
    );
    let id = enabled
        .split("id='")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap()
        .to_owned();
    phone.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>");
    read_iq(&mut phone, "p1");
    assert_eq!(acked_by_server(&mut phone), " h='1'/>");
    // The server asked for an acknowledgement of the ping's result.
    phone.send(&format!("<a xmlns='{SM}' h='1'/>"));

    // One message reaches the phone (and is asked to be acknowledged); it
    // is not, and the socket goes; a second comes meanwhile.
    let message =
        |n: &str| format!("<message to='alice@localhost/phone' type='chat' id='{n}'><body>{n}</body></message>");
    desk.send(&message("one"));
    phone.read_until("<body>one</body></message>");
    phone.read_until(&format!("<r xmlns='{SM}'/>"));
    phone.reset();
    desk.send(&message("two"));

    // Another account's token, or an unknown one, resumes nothing.
    let (mut stranger, features) = authenticated(&server);
    assert!(features.contains(&format!("<sm xmlns='{SM}'/>")), "{features}");
    stranger.send(&format!("<resume xmlns='{SM}' previd='not-{id}' h='0'/>"));
    stranger.read_until("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");

    // The client resumes, having handled only the ping's result: both
    // messages come again, in order, and the session holds its address as
    // before.
    let (mut phone, _) = authenticated(&server);
    phone.send(&format!("<resume xmlns='{SM}' previd='{id}' h='1'/>"));
    phone.expect(&format!("<resumed xmlns='{SM}' h='1' previd='{id}'/>"));
    // ("two" may still be on its way to the held session when it is taken
    // over: then it comes after the resent "one", as a new stanza.)
    let resent = phone.read_until("<body>two</body></message>");
    let bodies: Vec<&str> = resent.split("<body>").skip(1).map(|rest| &rest[..3]).collect();
    assert_eq!(bodies, ["one", "two"], "{resent}");
    phone.send(&format!("<a xmlns='{SM}' h='3'/>"));
    desk.send(&message("three"));
    phone.read_until("<body>three</body></message>");

    // Acknowledging more than was sent is a stream error.
    let (mut liar, _) = authenticated(&server);
    liar.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>");
    read_iq(&mut liar, "b");
    liar.send(&format!("<enable xmlns='{SM}'/>"));
    liar.read_until("/>");
    liar.send(&format!("<a xmlns='{SM}' h='5'/>"));
    ends_with_stream_error(&mut liar, "undefined-condition");

    // Gone again, and nobody resumes within the window: the message never
    // acknowledged is kept offline for the account's next session.
    phone.reset();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut laptop = login(&server, "laptop");
    laptop.send("<presence/>");
    laptop.read_until("<body>three</body>");
    let stamp = laptop.read_until("</message>");
    assert!(stamp.contains("urn:xmpp:delay"), "{stamp}");
    let (mut late, _) = authenticated(&server);
    late.send(&format!("<resume xmlns='{SM}' previd='{id}' h='3'/>"));
    late.read_until("<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    assert!(server.crashes().is_empty(), "{:?}", server.crashes());
}

/// Stanzas a bound client sends, well-formed, for the fuzz run to mutate.
const STANZAS: &[&str] = &[
    "<message to='alice@localhost/desk' type='chat' id='m'><body>hello</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    "<presence><show>away</show><status>out</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>",
    "<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>G</group></item></query></iq>",
    "<iq type='get' id='d' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>",
    "<iq type='set' id='a'><query xmlns='urn:xmpp:mam:2' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='start'><value>2020-01-01T00:00:00Z</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>5</max><before/></set></query></iq>",
    "<iq type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='x'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='1' id='x' type='image/png'/></metadata></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>",
    "<presence to='room@conference.localhost/nick'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='3'/><password>p</password></x></presence>",
    "<message to='room@conference.localhost' type='groupchat'><subject>s</subject><body>b</body></message>",
    "<iq type='set' id='o' to='room@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#admin'><item nick='nick' role='none'><reason>r</reason></item></query></iq>",
    "<iq type='set' id='b'><block xmlns='urn:xmpp:blocking'><item jid='eve@localhost'/></block></iq>",
    "<iq type='set' id='v'><vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>AAAA</BINVAL></PHOTO></vCard></iq>",
    "<enable xmlns='urn:xmpp:sm:3' resume='true' max='60'/>",
    "<a xmlns='urn:xmpp:sm:3' h='0'/>",
    "<inactive xmlns='urn:xmpp:csi:0'/>",
];

#[test]
fn mutated_stanzas_get_answers_or_stream_errors_and_never_a_handler_fault() {
    use common::fuzz::{Rng, cases, mutate, seed};
    let server = server(&[]);
    let mut rng = Rng::new(seed());
    let mut client = login(&server, "desk");
    for case in 0..cases(300) {
        let stanza = STANZAS[rng.below(STANZAS.len())];
        let mutated = mutate(&mut rng, stanza.as_bytes(), STANZAS);
        client.send(&String::from_utf8_lossy(&mutated));
        // A round trip says the session is still there; a stream error
        // (or a stanza the mutation left open, swallowing the ping) ends
        // this connection, and the next case starts on a new one.
        client.send(&format!(
            "<iq type='get' id='fuzz{case}'><ping xmlns='urn:xmpp:ping'/></iq>"
        ));
        let answered = client.try_read_until(&format!("id='fuzz{case}'"), std::time::Duration::from_millis(500));
        if answered.is_none() {
            client = login(&server, "desk");
        }
    }
    // The server is as it was: a new session logs in and is answered.
    let mut last = login(&server, "laptop");
    last.send("<iq type='get' id='end'><ping xmlns='urn:xmpp:ping'/></iq>");
    read_iq(&mut last, "end");
    assert!(server.crashes().is_empty(), "{:#?}", server.crashes());
}
