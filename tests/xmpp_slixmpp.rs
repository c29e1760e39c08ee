//! slixmpp, a real XMPP client library (Python, from PyPI), against the
//! real `ej` binary serving the XMPP handler (`examples/xmpp`) over TCP on
//! 127.0.0.1: STARTTLS with the server's self-signed certificate for
//! `localhost` (the only CA the client trusts), SASL, resource binding,
//! chat, rosters and subscriptions, offline messages, what the server
//! answers itself, and resource conflicts; and the everyday extensions:
//! blocking, carbons, private storage, vCards, last activity, entity time,
//! client state indication, priorities, and removing a contact; group
//! chat (XEP-0045): rooms, their moderation, invitations and self-ping;
//! message archives (XEP-0313) paged through for an account and a room; and
//! PEP (XEP-0163): notifications by entity capabilities, access models,
//! private bookmarks (XEP-0223, XEP-0402), avatars (XEP-0084) and bounds;
//! and two nodes of a cluster (PostgreSQL and NATS) with a user on each.
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
use common::nats::Nats;
use common::postgres::Postgres;
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
fn users_on_two_nodes_of_a_cluster_chat_and_subscribe_across_them() {
    // Accounts made through one node's operator log in on either; alice on
    // the first node and bob on the second chat and become contacts, their
    // messages and presence routed between the nodes over NATS, rosters
    // and archives in PostgreSQL; a wrong password is refused.
    let postgres = Postgres::start("slixmpp");
    let nats = Nats::start();
    let cluster = ["--store", postgres.url.as_str(), "--cluster", nats.url.as_str()];
    let first = Server::start("xmpp", &cluster);
    // One certificate for the domain, whichever node a client reaches.
    let tls = first.data_dir.join("tls");
    let (cert, key) = (tls.join("localhost.crt"), tls.join("localhost.key"));
    let shared = ["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()];
    let second = Server::start("xmpp", &[&cluster[..], &shared[..]].concat());
    for (name, password) in [ALICE, BOB] {
        first.command(&["user", "add", name, password]);
    }
    let port = second.addr.port().to_string();
    let across = [alice_and_bob(), vec!["--port-of", "bob", &port]].concat();
    scenario(&first, "chat", &across)
        .succeeded()
        .check_alice_and_bob_chatted();
    let outcome = scenario(&first, "roster", &across).succeeded();
    assert_eq!(
        outcome.last_roster("alice")["bob@localhost"]["subscription"],
        "both",
        "{}",
        outcome.report()
    );
    assert!(
        outcome.saw_presence("alice", "bob@localhost/phone", "available"),
        "alice on the first node did not see bob on the second available\n{}",
        outcome.report()
    );
    let outcome = scenario(
        &first,
        "login",
        &account("--user", "bob@localhost/desk", "not-bob-password"),
    )
    .succeeded();
    assert_eq!(
        outcome.one("user", "failed_auth")["condition"],
        "not-authorized",
        "{}",
        outcome.report()
    );
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

// Group chat (XEP-0045)

const CAROL: (&str, &str) = ("carol", "carol-password");

/// The group chat service.
const MUC_SERVICE: &str = "conference.localhost";

/// The JID of `room` at the service.
fn room(room: &str) -> String {
    format!("{room}@{MUC_SERVICE}")
}

/// The occupant JID of `nick` in `room`.
fn occupant(room: &str, nick: &str) -> String {
    format!("{room}@{MUC_SERVICE}/{nick}")
}

/// Runs `script` with alice (at `laptop`), bob (at `phone`) and carol (at
/// `tablet`) against a server with the three accounts; fails unless it
/// completes.
fn alice_bob_and_carol_run(script: &str) -> Outcome {
    let server = server_with(&[ALICE, BOB, CAROL]);
    let args = accounts(&[
        ("--alice", "alice@localhost/laptop", ALICE.1),
        ("--bob", "bob@localhost/phone", BOB.1),
        ("--carol", "carol@localhost/tablet", CAROL.1),
    ]);
    scenario(&server, script, &args).succeeded()
}

/// The events named `event` that `client` reported from `from`.
fn from<'a>(outcome: &'a Outcome, client: &str, event: &str, from: &str) -> Vec<&'a Value> {
    let all = outcome.before_done(client, event).into_iter();
    all.filter(|value| value["from"] == from).collect()
}

/// The presences of `kind` ('available' or 'unavailable') that `client`
/// got from occupant `nick` of `room`.
fn room_presences<'a>(outcome: &'a Outcome, client: &str, room: &str, nick: &str, kind: &str) -> Vec<&'a Value> {
    let all = from(outcome, client, "presence", &occupant(room, nick)).into_iter();
    all.filter(|presence| presence["type"] == kind).collect()
}

/// The one presence of `kind` that `client` got from `nick` in `room`.
fn room_presence<'a>(outcome: &'a Outcome, client: &str, room: &str, nick: &str, kind: &str) -> &'a Value {
    match room_presences(outcome, client, room, nick, kind)[..] {
        [presence] => presence,
        _ => panic!(
            "expected one {kind} presence of {nick} in {room} for {client}\n{}",
            outcome.report()
        ),
    }
}

/// Whether a reported presence (or `joined`) has status `code`.
fn has_code(presence: &Value, code: u16) -> bool {
    presence["codes"]
        .as_array()
        .is_some_and(|codes| codes.contains(&json!(code)))
}

/// Whether `features` (a JSON array) has `feature`.
fn has(features: &Value, feature: &str) -> bool {
    features
        .as_array()
        .is_some_and(|features| features.iter().any(|offered| offered == feature))
}

/// The one `join_refused` that `client` reported for `room`.
fn refusal<'a>(outcome: &'a Outcome, client: &str, room: &str) -> &'a Value {
    let all = outcome.before_done(client, "join_refused").into_iter();
    match all
        .filter(|refused| refused["room"] == self::room(room))
        .collect::<Vec<_>>()[..]
    {
        [refused] => refused,
        _ => panic!("expected one refusal of {client} in {room}\n{}", outcome.report()),
    }
}

/// The first `joined` that `client` reported for `room`.
fn entered<'a>(outcome: &'a Outcome, client: &str, room: &str) -> &'a Value {
    let all = outcome.before_done(client, "joined").into_iter();
    let mut entries = all.filter(|joined| joined["room"] == self::room(room));
    entries
        .next()
        .unwrap_or_else(|| panic!("{client} did not enter {room}\n{}", outcome.report()))
}

#[test]
fn muc_a_room_is_created_configured_discussed_and_remembered() {
    let outcome = alice_bob_and_carol_run("muc_life_cycle");
    let report = || outcome.report();
    let joined = |client: &str| outcome.before_done(client, "joined");
    // §10.1.1: entering a room that does not exist creates it, for alice.
    let created = joined("alice")[0];
    assert!(has_code(created, 110) && has_code(created, 201), "{}", report());
    assert_eq!(created["affiliation"], "owner", "{}", report());
    assert_eq!(created["role"], "moderator", "{}", report());
    // §10.2: she configures it with the form.
    let form = &outcome.only_before_done("alice", "config_form")["fields"];
    for field in ["muc#roomconfig_persistentroom", "muc#roomconfig_roomname"] {
        assert!(form.get(field).is_some(), "no {field} in the form\n{}", report());
    }
    assert_eq!(outcome.before_done("alice", "configured").len(), 1, "{}", report());
    // §10.2: and only she.
    assert_eq!(
        outcome.only_before_done("bob", "config_refused")["condition"],
        "forbidden",
        "{}",
        report()
    );
    // §7.2.3: each newcomer gets those present, and they get it.
    assert_eq!(joined("bob")[0]["occupants"], json!(["alice"]), "{}", report());
    assert_eq!(joined("carol")[0]["occupants"], json!(["alice", "bob"]), "{}", report());
    for (client, nick) in [("alice", "bob"), ("alice", "carol"), ("bob", "carol")] {
        let arrived = room_presences(&outcome, client, "lounge", nick, "available");
        assert!(!arrived.is_empty(), "{client} did not see {nick} enter\n{}", report());
    }
    // §7.4, §8.1: a message and the subject reach everyone, from the sender.
    for client in ["alice", "bob", "carol"] {
        let messages = from(&outcome, client, "groupchat", &occupant("lounge", "bob"));
        let live = |message: &&Value| message["body"] == "hello from bob" && message["delay_from"].is_null();
        assert!(
            messages.iter().any(live),
            "{client} did not get bob's message\n{}",
            report()
        );
        let subjects = from(&outcome, client, "subject", &occupant("lounge", "alice"));
        assert!(
            subjects.iter().any(|subject| subject["subject"] == "Tea at five"),
            "{client} did not get the subject\n{}",
            report()
        );
        let changed = |subject: &&Value| subject["subject"] == "Coffee at six";
        assert!(
            !outcome.before_done(client, "subject").iter().any(changed),
            "{}",
            report()
        );
    }
    // §8.1: a participant may not change it (by default).
    let errors = from(&outcome, "bob", "message_error", &room("lounge"));
    assert_eq!(errors.len(), 1, "{}", report());
    assert_eq!(errors[0]["condition"], "forbidden", "{}", report());
    // §7.14: carol leaves; she (110) and the others see it.
    let gone = room_presences(&outcome, "carol", "lounge", "carol", "unavailable")[0];
    assert_eq!(gone["codes"], json!([110]), "{}", report());
    assert_eq!(gone["role"], "none", "{}", report());
    for client in ["alice", "bob"] {
        let gone = room_presence(&outcome, client, "lounge", "carol", "unavailable");
        assert_eq!(gone["role"], "none", "{}", report());
        assert_eq!(gone["status"], "good night", "{}", report());
    }
    // §7.2.14, §7.2.15: the late joiner gets the history, then the subject.
    let late = joined("carol")[1];
    assert_eq!(late["occupants"], json!(["alice", "bob"]), "{}", report());
    assert_eq!(
        late["history"],
        json!([
            {"from": occupant("lounge", "bob"), "body": "hello from bob", "delay_from": room("lounge")},
            {"from": occupant("lounge", "alice"), "body": "carol has gone", "delay_from": room("lounge")},
        ]),
        "{}",
        report()
    );
    assert_eq!(late["subject"], "Tea at five", "{}", report());
    assert_eq!(late["subject_from"], occupant("lounge", "alice"), "{}", report());
    // §6.3, §6.4: the service lists the room; the room says what it is.
    let lounge = json!([{"jid": room("lounge"), "name": "The Lounge"}]);
    assert_eq!(
        outcome.only_before_done("bob", "rooms")["items"],
        lounge,
        "{}",
        report()
    );
    let info = outcome.only_before_done("bob", "room_info");
    assert_eq!(info["type"], "result", "{}", report());
    let identity = json!([["conference", "text", "The Lounge"]]);
    assert_eq!(info["identities"], identity, "{}", report());
    let features = [
        "http://jabber.org/protocol/muc",
        "muc_persistent",
        "muc_public",
        "muc_open",
    ];
    for feature in features {
        assert!(has(&info["features"], feature), "no {feature}\n{}", report());
    }
    assert!(!has(&info["features"], "muc_temporary"), "{}", report());
    assert_eq!(info["roominfo"]["muc#roominfo_occupants"], "3", "{}", report());
    assert_eq!(info["roominfo"]["muc#roominfo_subject"], "Tea at five", "{}", report());
}

#[test]
fn muc_a_destroyed_room_tells_its_occupants_why_and_where_to_go() {
    let outcome = alice_and_bob_run("muc_destroy");
    let report = || outcome.report();
    // §10.9: each occupant is told it is out (110), where to go, and why.
    for client in ["alice", "bob"] {
        let out = room_presence(&outcome, client, "attic", client, "unavailable");
        assert_eq!(out["codes"], json!([110]), "{}", report());
        assert_eq!(out["role"], "none", "{}", report());
        let destroy = json!({"jid": room("lounge"), "reason": "the roof leaks"});
        assert_eq!(out["destroy"], destroy, "{}", report());
    }
    let gone = outcome.only_before_done("alice", "room_info");
    assert_eq!(gone["condition"], "item-not-found", "{}", report());
    // The name is free again: bob creates a new room with it.
    let again = &outcome.before_done("bob", "joined")[1];
    assert!(has_code(again, 201), "{}", report());
    assert_eq!(again["affiliation"], "owner", "{}", report());
}

#[test]
fn muc_a_taken_nickname_is_refused_and_a_new_one_is_announced() {
    let outcome = alice_bob_and_carol_run("muc_nicknames");
    let report = || outcome.report();
    // §7.2.9: alice's nickname is hers.
    assert_eq!(
        refusal(&outcome, "bob", "cafe")["condition"],
        "conflict",
        "{}",
        report()
    );
    // §7.6: bob becomes robert: 303 with the new nickname, then robert.
    assert_eq!(
        outcome.only_before_done("bob", "nick_changed")["nick"],
        "robert",
        "{}",
        report()
    );
    let own = room_presence(&outcome, "bob", "cafe", "bob", "unavailable");
    assert_eq!(own["codes"], json!([110, 303]), "{}", report());
    for client in ["alice", "carol"] {
        let gone = room_presence(&outcome, client, "cafe", "bob", "unavailable");
        assert_eq!(gone["codes"], json!([303]), "{}", report());
        assert_eq!(gone["nick"], "robert", "{}", report());
        // §7.7: then his new availability.
        let robert = room_presences(&outcome, client, "cafe", "robert", "available");
        let [back, away] = robert[..] else {
            panic!("expected robert's arrival and absence for {client}\n{}", report());
        };
        assert_eq!(back["role"], "participant", "{}", report());
        assert_eq!(away["show"], "away", "{}", report());
        assert_eq!(away["status"], "back soon", "{}", report());
    }
    // §7.6.3: carol may not take alice's nickname, and stays carol.
    let errors = from(&outcome, "carol", "presence_error", &occupant("cafe", "alice"));
    assert_eq!(errors.len(), 1, "{}", report());
    assert_eq!(errors[0]["condition"], "conflict", "{}", report());
    assert!(
        room_presences(&outcome, "alice", "cafe", "carol", "unavailable").is_empty(),
        "{}",
        report()
    );
    let said = from(&outcome, "alice", "groupchat", &occupant("cafe", "carol"));
    assert_eq!(said.len(), 1, "{}", report());
}

#[test]
fn muc_a_refused_entry_carries_the_muc_element_clients_wait_for() {
    // XEP-0045 §7.2.6–§7.2.9 (e.g. example 20): the error presence carries
    // the `<x xmlns='http://jabber.org/protocol/muc'/>` of the entry; it is
    // how slixmpp's join_muc_wait (and others) tell an entry's refusal.
    let outcome = alice_bob_and_carol_run("muc_nicknames");
    let refused = refusal(&outcome, "bob", "cafe");
    assert_eq!(refused["condition"], "conflict", "{}", outcome.report());
    assert_eq!(refused["muc_x"], true, "{}", outcome.report());
}

#[test]
fn muc_private_messages_go_between_occupants_by_nickname() {
    let outcome = alice_bob_and_carol_run("muc_private");
    let report = || outcome.report();
    // §7.5: from the sender's occupant JID, marked as through the room.
    for (client, sender, body) in [("carol", "bob", "psst, carol"), ("bob", "carol", "yes, bob?")] {
        let received = outcome.only_before_done(client, "private");
        assert_eq!(received["from"], occupant("lounge", sender), "{}", report());
        assert_eq!(received["type"], "chat", "{}", report());
        assert_eq!(received["body"], body, "{}", report());
        assert_eq!(received["muc_user"], true, "{}", report());
    }
    assert!(outcome.before_done("alice", "private").is_empty(), "{}", report());
    // A request to an occupant goes to its client, the answer back.
    let info = outcome.only_before_done("alice", "occupant_info");
    assert_eq!(info["from"], occupant("lounge", "bob"), "{}", report());
    assert_eq!(info["type"], "result", "{}", report());
    assert!(has(&info["features"], "http://jabber.org/protocol/muc"), "{}", report());
}

#[test]
fn muc_moderators_kick_and_ban_and_rooms_keep_strangers_out_or_quiet() {
    let outcome = alice_bob_and_carol_run("muc_moderation");
    let report = || outcome.report();
    // §8.2: a participant may not kick.
    let attempt = outcome.only_before_done("bob", "kick_by_participant");
    assert_eq!(attempt["outcome"], "forbidden", "{}", report());
    // §8.2: kicked: 307 (and 110 for carol), role none, by alice, why.
    let kicked = room_presence(&outcome, "carol", "lounge", "carol", "unavailable");
    assert_eq!(kicked["codes"], json!([110, 307]), "{}", report());
    assert_eq!(kicked["role"], "none", "{}", report());
    assert_eq!(kicked["reason"], "too loud", "{}", report());
    for client in ["alice", "bob"] {
        let kicked = room_presence(&outcome, client, "lounge", "carol", "unavailable");
        assert_eq!(kicked["codes"], json!([307]), "{}", report());
        assert_eq!(kicked["actor"], "alice", "{}", report());
    }
    // §9.1: banned: 301, outcast, and not let in again.
    let banned = room_presence(&outcome, "bob", "lounge", "bob", "unavailable");
    assert_eq!(banned["codes"], json!([110, 301]), "{}", report());
    assert_eq!(banned["affiliation"], "outcast", "{}", report());
    let banned = room_presence(&outcome, "alice", "lounge", "bob", "unavailable");
    assert_eq!(banned["codes"], json!([301]), "{}", report());
    assert_eq!(
        refusal(&outcome, "bob", "lounge")["condition"],
        "forbidden",
        "{}",
        report()
    );
    // §7.4: nor heard from outside.
    let errors = from(&outcome, "bob", "message_error", &room("lounge"));
    assert_eq!(errors.len(), 1, "{}", report());
    assert_eq!(errors[0]["condition"], "not-acceptable", "{}", report());
    // §9.2, §9.5: the ban is listed, and lifted.
    let lists = |room: &str| -> Vec<&Value> {
        let all = outcome.before_done("alice", "affiliations").into_iter();
        all.filter(|list| list["room"] == self::room(room))
            .map(|list| &list["jids"])
            .collect()
    };
    assert_eq!(lists("lounge"), [&json!(["bob@localhost"]), &json!([])], "{}", report());
    assert_eq!(outcome.before_done("bob", "joined").len(), 2, "{}", report());
    // §7.2.5: members only, until alice makes carol a member.
    assert_eq!(
        refusal(&outcome, "carol", "club")["condition"],
        "registration-required",
        "{}",
        report()
    );
    assert_eq!(lists("club"), [&json!(["carol@localhost"])], "{}", report());
    assert_eq!(
        entered(&outcome, "carol", "club")["affiliation"],
        "member",
        "{}",
        report()
    );
    // §7.2.6: a password, and only with it.
    assert_eq!(
        refusal(&outcome, "carol", "vault")["condition"],
        "not-authorized",
        "{}",
        report()
    );
    entered(&outcome, "carol", "vault");
    // §7.4, §8.3: a visitor is not heard until given voice.
    assert_eq!(entered(&outcome, "carol", "stage")["role"], "visitor", "{}", report());
    let errors = from(&outcome, "carol", "message_error", &room("stage"));
    assert_eq!(errors.len(), 1, "{}", report());
    assert_eq!(errors[0]["condition"], "forbidden", "{}", report());
    let heard: Vec<&Value> = from(&outcome, "alice", "groupchat", &occupant("stage", "carol"));
    let bodies: Vec<&Value> = heard.iter().map(|message| &message["body"]).collect();
    assert_eq!(bodies, [&json!("thank you")], "{}", report());
}

#[test]
fn muc_mediated_and_direct_invitations_reach_the_invitee() {
    let outcome = alice_and_bob_run("muc_invitations");
    let report = || outcome.report();
    // §7.8.2: from the room, naming alice, with her reason.
    let invite = outcome.only_before_done("bob", "invite");
    assert_eq!(invite["from"], room("lounge"), "{}", report());
    let inviter = invite["inviter"].as_str().unwrap_or_default();
    assert!(inviter.starts_with("alice@localhost"), "{}", report());
    assert_eq!(invite["reason"], "tea is ready", "{}", report());
    let recognised = outcome.only_before_done("bob", "groupchat_invite");
    assert_eq!(recognised["room"], room("lounge"), "{}", report());
    // §7.8.2: bob's decline goes back to alice through the room.
    let decline = outcome.only_before_done("alice", "decline");
    assert_eq!(decline["from"], room("lounge"), "{}", report());
    let decliner = decline["decliner"].as_str().unwrap_or_default();
    assert!(decliner.starts_with("bob@localhost"), "{}", report());
    assert_eq!(decline["reason"], "busy right now", "{}", report());
    // XEP-0249: from alice herself, naming the room.
    let direct = outcome.only_before_done("bob", "direct_invite");
    assert_eq!(direct["from"], "alice@localhost/laptop", "{}", report());
    assert_eq!(direct["room"], room("lounge"), "{}", report());
    assert_eq!(direct["reason"], "come to the lounge", "{}", report());
    assert_eq!(
        outcome.only_before_done("bob", "joined")["room"],
        room("lounge"),
        "{}",
        report()
    );
}

#[test]
fn muc_an_occupant_pings_itself_and_a_stranger_is_told_it_is_out() {
    let outcome = alice_and_bob_run("muc_self_ping");
    let report = || outcome.report();
    // XEP-0410 §3.2, §3.3: the room answers for its occupant.
    assert_eq!(
        outcome.only_before_done("alice", "self_ping")["status"],
        "JOINED",
        "{}",
        report()
    );
    let pong = outcome.only_before_done("alice", "ping");
    assert_eq!(pong["type"], "result", "{}", report());
    assert_eq!(pong["from"], occupant("lounge", "alice"), "{}", report());
    assert_eq!(
        outcome.only_before_done("bob", "self_ping")["status"],
        "DISCONNECTED",
        "{}",
        report()
    );
    let refused = outcome.only_before_done("bob", "ping");
    assert_eq!(refused["type"], "error", "{}", report());
    assert_eq!(refused["condition"], "not-acceptable", "{}", report());
}

#[test]
fn muc_a_lost_connection_leaves_and_only_a_persistent_room_outlives_its_occupants() {
    let outcome = alice_and_bob_run("muc_departures");
    let report = || outcome.report();
    // §7.14: bob's connection ended: alice sees him leave.
    let gone = room_presence(&outcome, "alice", "lounge", "bob", "unavailable");
    assert_eq!(gone["role"], "none", "{}", report());
    // §10.1: the temporary room lasts while occupied, no longer; a
    // persistent one stays.
    let answers = outcome.before_done("alice", "room_info");
    let [occupied, empty, persistent] = answers[..] else {
        panic!("expected three disco#info answers\n{}", report());
    };
    assert_eq!(occupied["type"], "result", "{}", report());
    assert!(has(&occupied["features"], "muc_temporary"), "{}", report());
    assert_eq!(empty["room"], room("lounge"), "{}", report());
    assert_eq!(empty["type"], "error", "{}", report());
    assert_eq!(empty["condition"], "item-not-found", "{}", report());
    assert_eq!(persistent["room"], room("library"), "{}", report());
    assert_eq!(persistent["type"], "result", "{}", report());
    assert!(has(&persistent["features"], "muc_persistent"), "{}", report());
    let items = &outcome.only_before_done("alice", "rooms")["items"];
    assert_eq!(items, &json!([{"jid": room("library"), "name": null}]), "{}", report());
}

// Archives (XEP-0313, XEP-0059, XEP-0359)

#[test]
fn archives_page_forwards_and_backwards_for_an_account_and_a_room() {
    let outcome = alice_and_bob_run("archive");
    let sent: Vec<String> = (0..300).map(|n| format!("m{n:03}")).collect();
    let walk = |client: &str, direction: &str| {
        let walks = outcome.of(client, "archive");
        let walk = walks
            .iter()
            .find(|walk| walk["direction"] == direction)
            .unwrap_or_else(|| panic!("no {direction} walk for {client}\n{}", outcome.report()));
        let bodies: Vec<String> = serde_json::from_value(walk["bodies"].clone()).unwrap();
        (bodies, walk["ids"].as_u64().unwrap())
    };
    // Every message once, in order, with a distinct id, either way.
    assert_eq!(walk("bob", "forward"), (sent.clone(), 300), "{}", outcome.report());
    let mut backwards = sent.clone();
    backwards.reverse();
    assert_eq!(walk("bob", "backward"), (backwards, 300), "{}", outcome.report());
    // The sender's archive has them too.
    assert_eq!(walk("alice", "forward"), (sent, 300), "{}", outcome.report());
    // The stanza-id bob got names the same message in his archive.
    let received = outcome.one("bob", "received");
    let first = outcome.one("bob", "first_result");
    assert_eq!(received["by"], "bob@localhost", "{}", outcome.report());
    assert_eq!(received["stanza_id"], first["id"], "{}", outcome.report());
    assert_eq!(first["body"], "m000", "{}", outcome.report());
    assert_eq!(outcome.one("bob", "window")["count"], 0, "{}", outcome.report());
    // The room's archive, read by someone never in the room.
    let room = outcome.one("bob", "room_archive");
    let said: Vec<String> = (0..120).map(|n| format!("r{n:03}")).collect();
    assert_eq!(room["bodies"], json!(said), "{}", outcome.report());
    assert_eq!(
        room["froms"],
        json!(["archived@conference.localhost/alice"]),
        "{}",
        outcome.report()
    );
}

#[test]
fn a_client_that_loses_its_socket_resumes_its_session_with_nothing_lost_or_doubled() {
    let outcome = alice_and_bob_run("resumption");
    assert_eq!(
        outcome.one("alice", "sm_enabled")["resume"],
        true,
        "{}",
        outcome.report()
    );
    outcome.one("alice", "session_resumed");
    assert_eq!(
        outcome.bodies("alice"),
        ["one", "two", "three", "four"],
        "{}",
        outcome.report()
    );
    assert_eq!(outcome.bodies("bob"), ["a1"], "{}", outcome.report());
}

// PEP (XEP-0163, XEP-0060, XEP-0115, XEP-0223)

/// The PEP notifications `client` got, before `done`.
fn notifications<'a>(outcome: &'a Outcome, client: &str) -> Vec<&'a Value> {
    outcome.before_done(client, "pubsub")
}

/// Whether the payload of `notification` is the mood `mood` with `text`.
fn is_mood(notification: &Value, mood: &str, text: &str) -> bool {
    let payload = notification["payload"].as_str().unwrap_or_default();
    payload.starts_with("<mood xmlns=\"http://jabber.org/protocol/mood\">")
        && payload.contains(&format!("<{mood} />"))
        && payload.contains(&format!("<text>{text}</text>"))
}

#[test]
fn pep_contacts_hear_of_moods_by_caps_and_strangers_may_not_read_them() {
    let outcome = alice_bob_and_carol_run("pep_notify");
    let report = || outcome.report();
    let mood = "http://jabber.org/protocol/mood";
    // Both publishes got the item id slixmpp asked for.
    let ids: Vec<&Value> = outcome.of("alice", "published").iter().map(|p| &p["id"]).collect();
    assert_eq!(ids, [&json!("current"), &json!("current")], "{}", report());
    // bob heard of both moods, from alice's bare JID, as headlines; then
    // of the retraction.
    let heard = notifications(&outcome, "bob");
    assert_eq!(heard.len(), 3, "{}", report());
    for notification in &heard {
        assert_eq!(notification["from"], "alice@localhost", "{}", report());
        assert_eq!(notification["type"], "headline", "{}", report());
        assert_eq!(notification["node"], mood, "{}", report());
        assert_eq!(notification["id"], "current", "{}", report());
    }
    assert!(is_mood(heard[0], "happy", "sunny"), "{}", report());
    assert!(is_mood(heard[1], "sad", "rainy"), "{}", report());
    assert_eq!(heard[2]["kind"], "retract", "{}", report());
    assert_eq!(heard[2]["payload"], Value::Null, "{}", report());
    // bob's second session got the last mood on coming online, carol when
    // she became alice's contact; then both the retraction.
    for client in ["bob2", "carol"] {
        let heard = notifications(&outcome, client);
        assert_eq!(heard.len(), 2, "{}", report());
        assert!(is_mood(heard[0], "sad", "rainy"), "{}", report());
        assert_eq!(
            (&heard[1]["kind"], &heard[1]["id"]),
            (&json!("retract"), &json!("current")),
            "{}",
            report()
        );
    }
    // A contact reads the item; a stranger is told a subscription to
    // alice's presence is needed (XEP-0060 §6.5.9.6).
    let read = outcome.one("bob", "retrieved");
    assert_eq!(read["ids"], json!(["current"]), "{}", report());
    assert!(
        read["payloads"][0].as_str().unwrap_or_default().contains("<sad />"),
        "{}",
        report()
    );
    let refused = outcome.one("carol", "refused");
    assert_eq!(
        (&refused["type"], &refused["condition"], &refused["pubsub"]),
        (
            &json!("auth"),
            &json!("not-authorized"),
            &json!("presence-subscription-required")
        ),
        "{}",
        report()
    );
    assert_eq!(outcome.one("bob", "nodes")["nodes"], json!([mood]), "{}", report());
    assert_eq!(outcome.one("carol", "nodes")["nodes"], json!([]), "{}", report());
}

#[test]
fn pep_private_bookmarks_reach_only_their_owner_and_keep_their_preconditions() {
    let outcome = alice_and_bob_run("pep_private");
    let report = || outcome.report();
    let bookmarks = "urn:xmpp:bookmarks:1";
    // Both bookmarks kept (max_items 'max'), in the order stored.
    assert_eq!(
        outcome.one("alice", "retrieved")["bookmarks"],
        json!([
            ["tea@conference.localhost", "Tea room", "alice"],
            ["coffee@conference.localhost", "Coffee room", "alice"]
        ]),
        "{}",
        report()
    );
    // alice's session heard of each; bob, though interested, of none.
    let heard: Vec<(&Value, &Value)> = notifications(&outcome, "alice")
        .iter()
        .map(|heard| (&heard["node"], &heard["id"]))
        .collect();
    let (tea, coffee) = (json!("tea@conference.localhost"), json!("coffee@conference.localhost"));
    let node = json!(bookmarks);
    assert_eq!(heard, [(&node, &tea), (&node, &coffee)], "{}", report());
    assert!(
        notifications(&outcome, "alice")[0]["payload"]
            .as_str()
            .is_some_and(|payload| payload.contains("name=\"Tea room\""))
    );
    assert!(notifications(&outcome, "bob").is_empty(), "{}", report());
    // XEP-0060 §6.5.9.8: not on the whitelist. §7.1.5: the node's
    // configuration is not what the publish asks for.
    let refused = |what: &str| {
        let all = outcome.all("refused");
        let found = all.into_iter().find(|refused| refused["what"] == what);
        found
            .unwrap_or_else(|| panic!("no refusal of {what}\n{}", report()))
            .clone()
    };
    let retrieve = refused("retrieve");
    assert_eq!(retrieve["client"], "bob", "{}", report());
    assert_eq!(
        (&retrieve["condition"], &retrieve["pubsub"]),
        (&json!("not-allowed"), &json!("closed-node")),
        "{}",
        report()
    );
    let precondition = refused("precondition");
    assert_eq!(
        (&precondition["condition"], &precondition["pubsub"]),
        (&json!("conflict"), &json!("precondition-not-met")),
        "{}",
        report()
    );
    let config = &outcome.one("alice", "config")["fields"];
    assert_eq!(config["pubsub#access_model"], "whitelist", "{}", report());
    assert_eq!(config["pubsub#max_items"], "256", "{}", report());
    assert_eq!(config["pubsub#persist_items"], "True", "{}", report());
    let disco = outcome.one("alice", "disco");
    assert!(
        disco["identities"]
            .as_array()
            .is_some_and(|identities| identities.contains(&json!(["pubsub", "pep"]))),
        "{}",
        report()
    );
    for feature in [
        "",
        "#publish",
        "#publish-options",
        "#access-whitelist",
        "#retrieve-items",
    ] {
        let feature = format!("http://jabber.org/protocol/pubsub{feature}");
        assert!(has(&disco["features"], &feature), "no {feature}\n{}", report());
    }
}

#[test]
fn pep_avatar_metadata_reaches_a_contact_and_items_stay_within_bounds() {
    let outcome = alice_and_bob_run("pep_avatar");
    let report = || outcome.report();
    // bob hears of the metadata only (his caps want no data), from alice.
    let heard = notifications(&outcome, "bob");
    assert_eq!(heard.len(), 1, "{}", report());
    assert_eq!(heard[0]["node"], "urn:xmpp:avatar:metadata", "{}", report());
    assert_eq!(heard[0]["from"], "alice@localhost", "{}", report());
    let metadata = outcome.one("bob", "metadata");
    assert_eq!(
        (&metadata["bytes"], &metadata["type"]),
        (&json!(6144), &json!("image/png")),
        "{}",
        report()
    );
    // The id (the data's SHA-1) names the data alice published.
    let fetched = outcome.one("bob", "fetched");
    assert_eq!(fetched["id"], metadata["id"], "{}", report());
    assert_eq!(
        (&fetched["bytes"], &fetched["same"]),
        (&json!(6144), &json!(true)),
        "{}",
        report()
    );
    let refused = |what: &str| {
        let all = outcome.all("refused");
        let found = all.into_iter().find(|refused| refused["what"] == what);
        let refusal = found.unwrap_or_else(|| panic!("no refusal of {what}\n{}", report()));
        (refusal["condition"].clone(), refusal["pubsub"].clone())
    };
    // XEP-0060 §7.1.3.4; a node may not keep more than the server's bound
    // (a precondition it cannot meet); §7.2.3.3.
    assert_eq!(
        refused("too-big"),
        (json!("not-acceptable"), json!("payload-too-big")),
        "{}",
        report()
    );
    assert_eq!(
        refused("too-many"),
        (json!("conflict"), json!("precondition-not-met")),
        "{}",
        report()
    );
    assert_eq!(
        refused("retract-missing"),
        (json!("item-not-found"), Value::Null),
        "{}",
        report()
    );
    // A node keeping two has the newest two; configured to keep one, the
    // newest.
    let kept: Vec<Value> = outcome
        .of("alice", "kept")
        .iter()
        .map(|kept| json!([kept["when"], kept["ids"]]))
        .collect();
    assert_eq!(
        kept,
        [json!(["two", ["two", "three"]]), json!(["one", ["three"]])],
        "{}",
        report()
    );
    // 64 nodes an account: the three before and 61 more.
    assert_eq!(
        refused("too-many-nodes"),
        (json!("resource-constraint"), Value::Null),
        "{}",
        report()
    );
    let made = outcome
        .all("refused")
        .into_iter()
        .find(|refused| refused["what"] == "too-many-nodes");
    assert_eq!(made.map(|refused| &refused["made"]), Some(&json!(61)), "{}", report());
    assert_eq!(outcome.one("alice", "nodes")["count"], 64, "{}", report());
    assert_eq!(
        refused("deleted"),
        (json!("item-not-found"), Value::Null),
        "{}",
        report()
    );
}
