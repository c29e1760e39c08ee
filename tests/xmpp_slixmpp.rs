//! slixmpp, a real XMPP client library (Python, from PyPI), against the
//! real `ej` binary serving the XMPP handler (`examples/xmpp`) over TCP on
//! 127.0.0.1: STARTTLS with the server's self-signed certificate for
//! `localhost` (the only CA the client trusts), SASL, resource binding,
//! chat, rosters and subscriptions, offline messages, what the server
//! answers itself, and resource conflicts; and the everyday extensions:
//! blocking, carbons, private storage, vCards, last activity, entity time,
//! client state indication, priorities, and removing a contact.
//!
//! Each test runs one scenario script from `tests/xmpp/slixmpp/` (see their
//! docstrings) with the interpreter of the virtual environment that
//! `cargo xtask test` makes, and asserts on the JSON objects it prints, one
//! per line. When a scenario fails, the assertion shows those objects, the
//! XML slixmpp sent and received, and the server's log.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::Server;
use common::scenario::{Outcome, account, server_with, tool};
use serde_json::{Value, json};

/// How long a scenario may take, in the script (`--timeout`) and, with
/// some slack for starting Python, here.
const SCENARIO_SECONDS: u64 = 20;

/// The account passwords every test creates.
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// The Python interpreter with slixmpp installed (by `cargo xtask test`).
fn python() -> PathBuf {
    tool("xmpp-py/bin/python", "slixmpp")
}

/// Runs `tests/xmpp/slixmpp/SCRIPT.py` against `server` with `args`
/// after the connection options.
fn scenario(server: &Server, script: &str, args: &[&str]) -> Outcome {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/xmpp/slixmpp")
        .join(format!("{script}.py"));
    let mut python = Command::new(python());
    python
        .arg(&path)
        .args(["--host", &server.addr.ip().to_string()])
        .args(["--port", &server.addr.port().to_string()])
        .arg("--ca")
        .arg(server.data_dir.join("tls/localhost.crt"))
        .args(["--timeout", &SCENARIO_SECONDS.to_string()])
        .args(args)
        // No `__pycache__` in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1");
    // The script keeps its own time; this is in case Python itself hangs.
    let limit = Duration::from_secs(SCENARIO_SECONDS + 20);
    common::scenario::run(server, "slixmpp", script, &mut python, limit)
}

/// The options for several clients at once: `(option, full JID, password)`.
fn accounts<'a>(clients: &[(&'a str, &'a str, &'a str)]) -> Vec<&'a str> {
    clients
        .iter()
        .flat_map(|(option, jid, password)| account(option, jid, password))
        .collect()
}

/// The options of a scenario with alice (at `laptop`) and bob (at `phone`).
fn alice_and_bob() -> Vec<&'static str> {
    accounts(&[
        ("--alice", "alice@localhost/laptop", ALICE.1),
        ("--bob", "bob@localhost/phone", BOB.1),
    ])
}

/// Runs `script` with alice and bob (see `alice_and_bob`) against a
/// server with both accounts; fails unless it completes.
fn alice_and_bob_run(script: &str) -> Outcome {
    let server = server_with(&[ALICE, BOB]);
    scenario(&server, script, &alice_and_bob()).succeeded()
}

/// Runs `script` with `--user` alice (at `laptop`) against a server with
/// her account; fails unless it completes.
fn alice_runs(script: &str) -> Outcome {
    let server = server_with(&[ALICE]);
    scenario(&server, script, &account("--user", "alice@localhost/laptop", ALICE.1)).succeeded()
}

/// Logs alice in with `mechanism` (or slixmpp's choice); her session.
fn alice_logs_in(mechanism: Option<&str>) -> Value {
    let server = server_with(&[ALICE]);
    let mut args = account("--user", "alice@localhost/laptop", ALICE.1).to_vec();
    if let Some(mechanism) = mechanism {
        args.extend(["--mechanism", mechanism]);
    }
    let outcome = scenario(&server, "login", &args).succeeded();
    let session = outcome.one("user", "session_start").clone();
    assert_eq!(session["jid"], "alice@localhost/laptop", "{}", outcome.report());
    let tls = session["tls"].as_str().unwrap_or_default();
    assert!(tls.starts_with("TLSv1."), "{}", outcome.report());
    assert_eq!(outcome.of("user", "disconnected").len(), 1, "{}", outcome.report());
    session
}

#[test]
fn alice_logs_in_with_the_mechanism_slixmpp_prefers() {
    let session = alice_logs_in(None);
    // SCRAM-SHA-256-PLUS when the channel binding slixmpp can compute is
    // available (tls-unique needs TLS 1.2), SCRAM-SHA-256 otherwise.
    let mechanism = session["mechanism"].as_str().unwrap_or_default();
    assert!(
        ["SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"].contains(&mechanism),
        "{session}"
    );
}

#[test]
fn alice_logs_in_with_scram_sha_1() {
    assert_eq!(alice_logs_in(Some("SCRAM-SHA-1"))["mechanism"], "SCRAM-SHA-1");
}

#[test]
fn alice_logs_in_with_scram_sha_256() {
    assert_eq!(alice_logs_in(Some("SCRAM-SHA-256"))["mechanism"], "SCRAM-SHA-256");
}

#[test]
fn alice_logs_in_with_plain() {
    assert_eq!(alice_logs_in(Some("PLAIN"))["mechanism"], "PLAIN");
}

/// Logs `jid` in with `password`; asserts that authentication fails.
fn login_fails(jid: &str, password: &str) {
    let server = server_with(&[ALICE]);
    let outcome = scenario(&server, "login", &account("--user", jid, password)).succeeded();
    let failure = outcome.one("user", "failed_auth");
    assert_eq!(failure["condition"], "not-authorized", "{}", outcome.report());
    assert!(outcome.all("session_start").is_empty(), "{}", outcome.report());
}

#[test]
fn a_wrong_password_fails_authentication() {
    login_fails("alice@localhost/laptop", "not-alice-password");
}

#[test]
fn an_unknown_user_fails_authentication() {
    login_fails("mallory@localhost/laptop", "any-password");
}

#[test]
fn alice_and_bob_chat_by_bare_and_full_jid() {
    let outcome = alice_and_bob_run("chat");
    outcome.check_alice_and_bob_chatted();
}

#[test]
fn a_mutual_subscription_shows_in_both_rosters_and_brings_presence() {
    let outcome = alice_and_bob_run("roster");
    let (alice, bob) = (outcome.last_roster("alice"), outcome.last_roster("bob"));
    assert_eq!(alice["bob@localhost"]["subscription"], "both", "{}", outcome.report());
    assert_eq!(alice["bob@localhost"]["name"], "Bob", "{}", outcome.report());
    assert_eq!(bob["alice@localhost"]["subscription"], "both", "{}", outcome.report());
    assert!(
        outcome.saw_presence("alice", "bob@localhost/phone", "available"),
        "alice did not see bob available\n{}",
        outcome.report()
    );
}

#[test]
fn a_message_to_an_offline_user_waits_for_her_login() {
    let outcome = alice_and_bob_run("offline");
    let message = outcome.one("alice", "message");
    assert_eq!(message["from"], "bob@localhost/phone", "{}", outcome.report());
    assert_eq!(message["body"], "sent while you were away", "{}", outcome.report());
    assert_eq!(message["type"], "chat", "{}", outcome.report());
}

#[test]
fn the_server_answers_ping_disco_info_and_version() {
    let outcome = alice_runs("server_info");
    assert_eq!(outcome.all("pong")[0]["type"], "result", "{}", outcome.report());
    let info = outcome.all("disco_info")[0];
    let identities = info["identities"].as_array().expect("identities");
    assert!(
        identities.iter().any(|identity| identity[0] == "server"),
        "no server identity\n{}",
        outcome.report()
    );
    let features = info["features"].as_array().expect("features");
    for feature in [
        "urn:xmpp:ping",
        "jabber:iq:version",
        "http://jabber.org/protocol/disco#info",
    ] {
        assert!(
            features.iter().any(|offered| offered == feature),
            "disco#info lacks {feature}\n{}",
            outcome.report()
        );
    }
    let version = outcome.all("version")[0];
    assert!(
        version["name"].as_str().is_some_and(|name| !name.is_empty()),
        "{}",
        outcome.report()
    );
}

#[test]
fn a_second_session_on_the_same_resource_replaces_the_first() {
    let outcome = alice_runs("conflict");
    for session in ["first", "second"] {
        let jid = &outcome.one(session, "session_start")["jid"];
        assert_eq!(jid, "alice@localhost/laptop", "{}", outcome.report());
    }
    assert_eq!(
        outcome.one("first", "stream_error")["condition"],
        "conflict",
        "{}",
        outcome.report()
    );
    let message = outcome.one("second", "message");
    assert_eq!(message["from"], "alice@localhost/laptop", "{}", outcome.report());
}

#[test]
fn a_blocked_contact_neither_sends_nor_receives_until_unblocked() {
    let outcome = alice_and_bob_run("blocking");
    let lists: Vec<&Value> = outcome
        .of("alice", "blocklist")
        .iter()
        .map(|list| &list["jids"])
        .collect();
    assert_eq!(lists, [&json!(["bob@localhost"]), &json!([])], "{}", outcome.report());
    // bob is told nothing of the block: alice is as if not there.
    let error = outcome.one("bob", "message_error");
    assert_eq!(error["type"], "cancel", "{}", outcome.report());
    assert_eq!(error["condition"], "service-unavailable", "{}", outcome.report());
    assert_eq!(error["blocked"], false, "{}", outcome.report());
    // alice is told why her message did not go.
    let error = outcome.one("alice", "message_error");
    assert_eq!(error["condition"], "not-acceptable", "{}", outcome.report());
    assert_eq!(error["blocked"], true, "{}", outcome.report());
    assert_eq!(
        outcome.bodies("alice"),
        ["bob, after the unblock"],
        "{}",
        outcome.report()
    );
    assert_eq!(
        outcome.bodies("bob"),
        ["alice, after the unblock"],
        "{}",
        outcome.report()
    );
}

#[test]
fn carbons_copy_what_another_session_receives_and_sends() {
    let server = server_with(&[ALICE, BOB]);
    let args = accounts(&[
        ("--desk", "alice@localhost/desk", ALICE.1),
        ("--phone", "alice@localhost/phone", ALICE.1),
        ("--bob", "bob@localhost/phone", BOB.1),
    ]);
    let outcome = scenario(&server, "carbons", &args).succeeded();
    let carbon = |direction: &str, from: &str, to: &str, body: &str| {
        json!({
            "event": "carbon", "client": "phone", "direction": direction,
            "from": "alice@localhost", "to": "alice@localhost/phone",
            "message": {"from": from, "to": to, "type": "chat", "body": body},
        })
    };
    let received = carbon(
        "received",
        "bob@localhost/phone",
        "alice@localhost/desk",
        "to alice at her desk",
    );
    let sent = carbon("sent", "alice@localhost/desk", "bob@localhost", "from alice's desk");
    assert_eq!(
        outcome.of("phone", "carbon"),
        [&received, &sent],
        "{}",
        outcome.report()
    );
    assert!(outcome.of("desk", "carbon").is_empty(), "{}", outcome.report());
    assert!(outcome.of("phone", "message").is_empty(), "{}", outcome.report());
    assert_eq!(outcome.bodies("desk"), ["to alice at her desk"], "{}", outcome.report());
    assert_eq!(outcome.bodies("bob"), ["from alice's desk"], "{}", outcome.report());
}

#[test]
fn private_xml_outlives_the_session_that_stored_it() {
    let outcome = alice_runs("private_storage");
    let stored = outcome.one("first", "stored");
    let retrieved = outcome.one("second", "retrieved");
    for field in ["topic", "note"] {
        assert_eq!(retrieved[field], stored[field], "{field}\n{}", outcome.report());
    }
}

#[test]
fn bob_reads_the_vcard_alice_published() {
    let outcome = alice_and_bob_run("vcard");
    let vcard = outcome.one("bob", "vcard");
    assert_eq!(vcard["from"], "alice@localhost", "{}", outcome.report());
    assert_eq!(vcard["fn"], "Alice Liddell", "{}", outcome.report());
    assert_eq!(vcard["nicknames"], json!(["alice"]), "{}", outcome.report());
}

#[test]
fn last_activity_of_a_contact_is_zero_while_online_then_counts() {
    let outcome = alice_and_bob_run("last_activity");
    let answers = outcome.of("alice", "last_activity");
    let [online, offline] = answers[..] else {
        panic!("expected two answers\n{}", outcome.report());
    };
    for answer in [online, offline] {
        assert_eq!(answer["from"], "bob@localhost", "{}", outcome.report());
    }
    assert_eq!(
        (&online["bob_online"], &online["seconds"]),
        (&json!(true), &json!(0)),
        "{}",
        outcome.report()
    );
    assert_eq!(offline["bob_online"], false, "{}", outcome.report());
    assert!(offline["seconds"].as_u64().is_some(), "{}", outcome.report());
}

#[test]
fn the_server_tells_the_time_in_utc() {
    let outcome = alice_runs("entity_time");
    let time = &outcome.all("time")[0];
    let skew = time["skew"]
        .as_f64()
        .unwrap_or_else(|| panic!("unparsable utc\n{}", outcome.report()));
    assert!(skew.abs() < 60.0, "{}", outcome.report());
    assert!(
        time["utc"].as_str().is_some_and(|utc| utc.ends_with('Z')),
        "{}",
        outcome.report()
    );
}

#[test]
fn an_inactive_client_gets_only_the_latest_presence_once_active() {
    let outcome = alice_and_bob_run("csi");
    let inactive = outcome.position("alice", "csi", "state", "inactive");
    let active = outcome.position("alice", "csi", "state", "active");
    let pong = outcome.position("alice", "pong", "type", "result");
    let presences = |range: std::ops::Range<usize>| -> Vec<&Value> {
        outcome.events[range]
            .iter()
            .filter(|each| each["client"] == "alice" && each["event"] == "presence")
            .collect()
    };
    assert!(presences(inactive..active).is_empty(), "{}", outcome.report());
    let after = presences(active..pong);
    let [latest] = after[..] else {
        panic!(
            "expected one presence of bob's on becoming active\n{}",
            outcome.report()
        );
    };
    assert_eq!(latest["from"], "bob@localhost/phone", "{}", outcome.report());
    assert_eq!(latest["type"], "dnd", "{}", outcome.report());
}

#[test]
fn a_message_to_the_bare_jid_goes_to_the_highest_priority() {
    let server = server_with(&[ALICE, BOB]);
    let args = accounts(&[
        ("--high", "alice@localhost/high", ALICE.1),
        ("--low", "alice@localhost/low", ALICE.1),
        ("--bob", "bob@localhost/phone", BOB.1),
    ]);
    let outcome = scenario(&server, "priorities", &args).succeeded();
    assert_eq!(
        outcome.bodies("high"),
        ["to alice, both sessions online"],
        "{}",
        outcome.report()
    );
    assert_eq!(outcome.bodies("low"), ["to alice, high gone"], "{}", outcome.report());
}

#[test]
fn removing_a_contact_cancels_both_subscriptions() {
    let outcome = alice_and_bob_run("roster_removal");
    let (alice, bob) = (outcome.last_roster("alice"), outcome.last_roster("bob"));
    assert!(alice.get("bob@localhost").is_none(), "{}", outcome.report());
    // RFC 6121 §2.5.2: the contact's item stays, with neither direction.
    let subscription = &bob["alice@localhost"]["subscription"];
    assert!(subscription.is_null() || subscription == "none", "{}", outcome.report());
    for kind in ["unsubscribe", "unsubscribed"] {
        assert!(
            outcome.saw_presence("bob", "alice@localhost", kind),
            "bob did not get {kind}\n{}",
            outcome.report()
        );
    }
    assert!(
        outcome.saw_presence("bob", "alice@localhost/laptop", "unavailable"),
        "bob did not see alice unavailable\n{}",
        outcome.report()
    );
}
