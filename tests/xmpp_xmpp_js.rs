//! @xmpp/client (xmpp.js), a real XMPP client library (JavaScript, from
//! npm), against the real `ej` binary serving the XMPP handler
//! (`examples/xmpp`) over TCP on 127.0.0.1: STARTTLS with the server's
//! self-signed certificate for `localhost` (the only CA the client trusts),
//! SASL2 (XEP-0388) with Bind2 (XEP-0386), which the library prefers when
//! offered, so every session here is bound to `TAG/PART` (the resource it
//! asks for is its tag); FAST tokens (XEP-0484): one obtained, used
//! without the password, one forged and one expired refused; chat,
//! XEP-0199 ping, and roster management with its pushes; group chat
//! (XEP-0045: a room made, an instant room, three occupants, a message
//! with its XEP-0359 stanza-id, a kick), message archives (XEP-0313) paged
//! with XEP-0059 for an account and a room, and PEP (XEP-0163)
//! notifications by entity capabilities (XEP-0115). The library has no
//! plugin for any of these: the scripts build the stanzas with its
//! `xml()` and match the answers with its iqCaller and stanza events, as
//! applications built on it do.
//!
//! Each test runs one scenario script from `tests/xmpp/xmpp-js/` (see their
//! doc comments, `harness.mjs` for what they share, and `groupchat.mjs` for
//! what the group chat and archive ones share) with node, against
//! the packages `cargo xtask test` installs from that directory's lockfile
//! into `target/tools/xmpp-js`, and asserts on the JSON objects it prints,
//! one per line. When a scenario fails, the assertion shows those objects,
//! the XML @xmpp/client sent and received, and the server's log.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::Server;
use common::scenario::{Outcome, account, server_with, tool};
use serde_json::{Value, json};

/// How long a scenario may take, in the script (`--timeout`) and, with
/// some slack for starting node, here.
const SCENARIO_SECONDS: u64 = 20;

/// The account passwords every test creates.
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// Runs `tests/xmpp/xmpp-js/SCRIPT.mjs` against `server` with `args` after
/// the connection options.
fn scenario(server: &Server, script: &str, args: &[&str]) -> Outcome {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/xmpp/xmpp-js")
        .join(format!("{script}.mjs"));
    let library = tool("xmpp-js/node_modules/@xmpp/client", "@xmpp/client");
    let modules = library.ancestors().nth(2).expect("the node_modules directory");
    let tls = server.data_dir.join("tls");
    let mut node = Command::new("node");
    // The server's certificate is the only CA node trusts: with
    // `--use-openssl-ca`, node's default store is OpenSSL's, which is what
    // `SSL_CERT_FILE` holds (and, looked up by subject hash, none of the
    // files in `SSL_CERT_DIR`) rather than node's bundled roots; the
    // variables that would add CAs or switch verification off are cleared.
    node.arg("--use-openssl-ca")
        .env("SSL_CERT_FILE", tls.join("localhost.crt"))
        .env("SSL_CERT_DIR", &tls)
        .env_remove("NODE_EXTRA_CA_CERTS")
        .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
        .env_remove("NODE_OPTIONS")
        // The scripts import @xmpp/client by path from here (see
        // `harness.mjs`: ES modules ignore NODE_PATH).
        .arg(&path)
        .arg("--modules")
        .arg(modules)
        .args(["--host", &server.addr.ip().to_string()])
        .args(["--port", &server.addr.port().to_string()])
        .args(["--timeout", &SCENARIO_SECONDS.to_string()])
        .args(args);
    // The script keeps its own time; this is in case node itself hangs.
    let limit = Duration::from_secs(SCENARIO_SECONDS + 20);
    common::scenario::run(server, "@xmpp/client", script, &mut node, limit)
}

/// Logs `jid` in with `password` (alice's account exists); the outcome.
fn login(jid: &str, password: &str) -> Outcome {
    let server = server_with(&[ALICE]);
    scenario(&server, "login", &account("--user", jid, password)).succeeded()
}

/// The full JID `client` reported at `session_start`, checked to be what
/// Bind2 makes of the tag @xmpp/client sends (the resource it was asked
/// for): `TAG/` and 24 hex digits.
fn bound_jid(outcome: &Outcome, client: &str, asked: &str) -> String {
    let session = outcome.one(client, "session_start");
    assert_eq!(session["bind"], "bind2", "{}", outcome.report());
    let jid = session["jid"].as_str().unwrap_or_default();
    let part = jid.strip_prefix(&format!("{asked}/")).unwrap_or_default();
    assert!(
        part.len() == 24 && part.bytes().all(|byte| byte.is_ascii_hexdigit()),
        "{jid} is not {asked}/PART\n{}",
        outcome.report()
    );
    jid.to_owned()
}

#[test]
fn alice_logs_in_over_starttls_with_sasl2_scram_sha_1_and_bind2() {
    let outcome = login("alice@localhost/laptop", ALICE.1);
    let session = outcome.one("user", "session_start");
    // XEP-0388 and XEP-0386: authenticated and bound in one exchange, the
    // resource the tag and a part of the server's.
    assert_eq!(session["sasl"], "sasl2", "{}", outcome.report());
    bound_jid(&outcome, "user", "alice@localhost/laptop");
    // The harness has checked that the certificate was verified.
    let tls = session["tls"].as_str().unwrap_or_default();
    assert!(tls.starts_with("TLSv1."), "{}", outcome.report());
    // @xmpp/client knows SCRAM-SHA-1 and PLAIN, and prefers the first.
    assert_eq!(session["mechanism"], "SCRAM-SHA-1", "{}", outcome.report());
    assert_eq!(outcome.of("user", "disconnected").len(), 1, "{}", outcome.report());
}

#[test]
fn a_wrong_password_fails_with_not_authorized() {
    let outcome = login("alice@localhost/laptop", "not-alice-password");
    let failure = outcome.one("user", "failed_auth");
    assert_eq!(failure["condition"], "not-authorized", "{}", outcome.report());
    assert_eq!(failure["mechanism"], "SCRAM-SHA-1", "{}", outcome.report());
    assert_eq!(failure["sasl"], "sasl2", "{}", outcome.report());
    assert!(outcome.all("session_start").is_empty(), "{}", outcome.report());
}

// FAST (XEP-0484)

/// Runs `fast` for alice (at `laptop`, with `password`) and `extra`
/// options against `server`.
fn fast(server: &Server, password: &str, extra: &[&str]) -> Outcome {
    let mut args = account("--user", "alice@localhost/laptop", password).to_vec();
    args.extend(extra);
    scenario(server, "fast", &args).succeeded()
}

/// Checks that `event`, one of `outcome`'s, has these text `fields`.
fn has(outcome: &Outcome, event: &Value, fields: &[(&str, &str)]) {
    for (name, expected) in fields {
        assert_eq!(event[name], *expected, "{name}\n{}", outcome.report());
    }
}

#[test]
fn a_fast_token_logs_alice_in_again_without_her_password() {
    let server = server_with(&[ALICE]);
    let outcome = fast(&server, ALICE.1, &[]);
    let report = || outcome.report();
    // With her password (SCRAM-SHA-1 over SASL2), asking for a token:
    // one for HT-SHA-256-NONE, valid for 14 days.
    let first = outcome.one("user", "session_start");
    has(&outcome, first, &[("mechanism", "SCRAM-SHA-1"), ("sasl", "sasl2")]);
    let token = outcome.one("user", "token");
    has(&outcome, token, &[("mechanism", "HT-SHA-256-NONE")]);
    let days = token["days"].as_f64().unwrap_or_default();
    assert!((13.9..=14.0).contains(&days), "{}", report());
    // The same installation, with the token alone: one round trip, bound
    // again to the same resource (the installation's).
    let again = outcome.one("again", "session_start");
    has(&outcome, again, &[("mechanism", "HT-SHA-256-NONE"), ("sasl", "sasl2")]);
    assert_eq!(
        bound_jid(&outcome, "again", "alice@localhost/laptop"),
        bound_jid(&outcome, "user", "alice@localhost/laptop"),
        "{}",
        report()
    );
    assert!(outcome.all("sasl_failure").is_empty(), "{}", report());
    // The server keeps it for her installation.
    let agent = token["agent"].as_str().unwrap_or_default();
    let stored = server.store(&["get", &format!("fast/alice/{agent}")]);
    let secret = token["token"].as_str().unwrap_or("?");
    assert!(stored.contains(secret), "{stored}\n{}", report());
}

#[test]
fn a_forged_fast_token_is_refused_and_the_client_falls_back_to_its_password() {
    let server = server_with(&[ALICE]);
    let agent = "5b0e7d7e-3c55-4f0c-9a86-0d4a3f1c2b7e";
    let outcome = fast(&server, ALICE.1, &["--agent", agent, "--token", "forged-token"]);
    let failure = outcome.one("user", "sasl_failure");
    has(
        &outcome,
        failure,
        &[("mechanism", "HT-SHA-256-NONE"), ("condition", "not-authorized")],
    );
    // @xmpp/client drops the token and logs in with the password, asking
    // for a new token.
    let session = outcome.one("user", "session_start");
    has(&outcome, session, &[("mechanism", "SCRAM-SHA-1")]);
    bound_jid(&outcome, "user", "alice@localhost/laptop");
    let token = outcome.one("user", "token");
    has(&outcome, token, &[("mechanism", "HT-SHA-256-NONE")]);
    assert_ne!(token["token"], "forged-token", "{}", outcome.report());
}

#[test]
fn an_expired_fast_token_fails_with_credentials_expired() {
    let server = server_with(&[ALICE]);
    let issued = fast(&server, ALICE.1, &[]);
    let token = issued.one("user", "token");
    let (agent, secret) = (token["agent"].as_str().unwrap(), token["token"].as_str().unwrap());
    // The server's record of the token, as if 14 days had passed.
    let key = format!("fast/alice/{agent}");
    let mut record: Value = serde_json::from_str(server.store(&["get", &key]).trim()).unwrap();
    for slot in ["current", "new"] {
        if let Some(token) = record[slot].as_object_mut() {
            token.insert("expiry".to_owned(), json!(1));
        }
    }
    server.store(&["put", &key, &record.to_string()]);
    // With the token and a wrong password: the token has expired, and
    // the password @xmpp/client falls back to fails too.
    let outcome = fast(&server, "not-alice-password", &["--agent", agent, "--token", secret]);
    let failures = outcome.of("user", "sasl_failure");
    assert_eq!(failures.len(), 2, "{}", outcome.report());
    has(
        &outcome,
        failures[0],
        &[("mechanism", "HT-SHA-256-NONE"), ("condition", "credentials-expired")],
    );
    has(
        &outcome,
        failures[1],
        &[("mechanism", "SCRAM-SHA-1"), ("condition", "not-authorized")],
    );
    has(
        &outcome,
        outcome.one("user", "failed_auth"),
        &[("condition", "not-authorized")],
    );
    assert!(outcome.all("session_start").is_empty(), "{}", outcome.report());
}

#[test]
fn alice_and_bob_chat_by_bare_and_full_jid() {
    let server = server_with(&[ALICE, BOB]);
    let mut args = account("--alice", "alice@localhost/laptop", ALICE.1).to_vec();
    args.extend(account("--bob", "bob@localhost/phone", BOB.1));
    let outcome = scenario(&server, "chat", &args).succeeded();
    outcome.check_alice_and_bob_chatted();
}

#[test]
fn the_server_answers_a_ping() {
    let server = server_with(&[ALICE]);
    let args = account("--user", "alice@localhost/laptop", ALICE.1);
    let outcome = scenario(&server, "ping", &args).succeeded();
    let pong = outcome.one("user", "pong");
    // XEP-0199: an empty result, from the server, for the ping's id.
    assert_eq!(pong["type"], "result", "{}", outcome.report());
    assert_eq!(pong["from"], "localhost", "{}", outcome.report());
    assert_eq!(pong["same_id"], true, "{}", outcome.report());
    assert_eq!(pong["children"], json!([]), "{}", outcome.report());
}

#[test]
fn adding_bob_to_the_roster_pushes_the_item_and_keeps_it() {
    let server = server_with(&[ALICE, BOB]);
    let mut args = account("--alice", "alice@localhost/laptop", ALICE.1).to_vec();
    args.extend(account("--bob", "bob@localhost/phone", BOB.1));
    let outcome = scenario(&server, "roster", &args).succeeded();
    let roster = |when: &str| -> Value {
        let rosters = outcome.of("alice", "roster");
        let found = rosters.iter().find(|roster| roster["when"] == when);
        found.map_or(Value::Null, |roster| roster["items"].clone())
    };
    assert_eq!(roster("before"), json!({}), "{}", outcome.report());
    assert_eq!(
        outcome.one("alice", "roster_set")["type"],
        "result",
        "{}",
        outcome.report()
    );
    // RFC 6121 2.1.6: the push comes from the account (no `from`, or her
    // bare JID), to her (RFC 6120 8.1.1.1: no `to`, her bare JID or the
    // session's full JID), with the item as it now stands.
    let bob = json!({"bob@localhost": {"subscription": "none", "ask": null, "name": "Bob"}});
    let push = outcome.one("alice", "roster_push");
    assert!(
        push["from"].is_null() || push["from"] == "alice@localhost",
        "{}",
        outcome.report()
    );
    let full = bound_jid(&outcome, "alice", "alice@localhost/laptop");
    assert!(
        [Value::Null, json!("alice@localhost"), json!(full)].contains(&push["to"]),
        "{}",
        outcome.report()
    );
    assert_eq!(push["items"], bob, "{}", outcome.report());
    assert_eq!(roster("after"), bob, "{}", outcome.report());
}

// Group chat (XEP-0045) and archives (XEP-0313, XEP-0059, XEP-0359)

const CAROL: (&str, &str) = ("carol", "carol-password");

/// The room the group chat scenarios make, and its occupant `nick`.
const TEAM: &str = "team@conference.localhost";

fn occupant(nick: &str) -> String {
    format!("{TEAM}/{nick}")
}

/// Runs `script` with alice (at `laptop`), bob (at `phone`) and carol (at
/// `tablet`) against a server with the three accounts; fails unless it
/// completes.
fn alice_bob_and_carol_run(script: &str) -> Outcome {
    let server = server_with(&[ALICE, BOB, CAROL]);
    let mut args = account("--alice", "alice@localhost/laptop", ALICE.1).to_vec();
    args.extend(account("--bob", "bob@localhost/phone", BOB.1));
    args.extend(account("--carol", "carol@localhost/tablet", CAROL.1));
    scenario(&server, script, &args).succeeded()
}

/// The one event named `event` that `client` got from `from` before
/// `done`, and of `kind` if it is a presence ('available' or
/// 'unavailable').
fn one_from<'a>(outcome: &'a Outcome, client: &str, event: &str, from: &str, kind: Option<&str>) -> &'a Value {
    let all = outcome.before_done(client, event).into_iter();
    let found: Vec<&Value> = all
        .filter(|value| value["from"] == from && kind.is_none_or(|kind| value["type"] == kind))
        .collect();
    match found[..] {
        [value] => value,
        _ => panic!(
            "expected one {event} ({kind:?}) from {from} for {client}\n{}",
            outcome.report()
        ),
    }
}

/// The muc#user status codes a reported presence (or `joined`) has.
fn codes(presence: &Value) -> Vec<u64> {
    let codes = presence["codes"].as_array().into_iter().flatten();
    codes.filter_map(Value::as_u64).collect()
}

#[test]
fn muc_three_users_make_a_room_talk_in_it_and_one_is_kicked() {
    let outcome = alice_bob_and_carol_run("muc");
    let report = || outcome.report();
    // §10.1.1: alice's entry made the room (201), hers (110); she owns it
    // and moderates it; §10.1.2: the empty form makes it an instant room.
    let alice = outcome.only_before_done("alice", "joined");
    assert!(codes(alice).contains(&110), "{}", report());
    assert!(codes(alice).contains(&201), "{}", report());
    assert_eq!(alice["affiliation"], "owner", "{}", report());
    assert_eq!(alice["role"], "moderator", "{}", report());
    assert_eq!(
        outcome.only_before_done("alice", "configured")["type"],
        "result",
        "{}",
        report()
    );
    // §7.2.2: the others enter a room that exists, as participants.
    for client in ["bob", "carol"] {
        let joined = outcome.only_before_done(client, "joined");
        assert!(codes(joined).contains(&110), "{}", report());
        assert!(!codes(joined).contains(&201), "{}", report());
        assert_eq!(joined["affiliation"], "none", "{}", report());
        assert_eq!(joined["role"], "participant", "{}", report());
    }
    // §7.2.3: each newcomer gets those there, they get the newcomer.
    for (client, nick) in [
        ("alice", "bob"),
        ("alice", "carol"),
        ("bob", "alice"),
        ("bob", "carol"),
        ("carol", "alice"),
        ("carol", "bob"),
    ] {
        let seen = outcome.before_done(client, "presence");
        assert!(
            seen.iter()
                .any(|presence| presence["from"] == occupant(nick) && presence["type"] == "available"),
            "{client} did not see {nick} enter\n{}",
            report()
        );
    }
    // §7.4: carol's message reaches everyone from her occupant JID, with
    // the room's stanza-id (XEP-0359 §3: `by` the room), the same for all;
    // her own copy keeps her id, by which clients know their echo.
    let mut stanza_ids = Vec::new();
    for (client, asked) in [
        ("alice", "alice@localhost/laptop"),
        ("bob", "bob@localhost/phone"),
        ("carol", "carol@localhost/tablet"),
    ] {
        let full = bound_jid(&outcome, client, asked);
        let message = one_from(&outcome, client, "groupchat", &occupant("carol"), None);
        assert_eq!(message["body"], "hello, team", "{}", report());
        assert_eq!(message["to"], full, "{}", report());
        assert_eq!(message["stanza_id"]["by"], TEAM, "{}", report());
        let id = message["stanza_id"]["id"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{}", report());
        stanza_ids.push(id);
    }
    assert!(stanza_ids.iter().all(|id| *id == stanza_ids[0]), "{}", report());
    let echo = one_from(&outcome, "carol", "groupchat", &occupant("carol"), None);
    assert_eq!(
        echo["id"],
        outcome.only_before_done("carol", "said")["id"],
        "{}",
        report()
    );
    // §8.2: kicked: carol gets 307 and 110, role none, by alice, why; the
    // others get 307 alone.
    assert_eq!(
        outcome.only_before_done("alice", "kicked")["type"],
        "result",
        "{}",
        report()
    );
    let kicked = one_from(&outcome, "carol", "presence", &occupant("carol"), Some("unavailable"));
    assert!(codes(kicked).contains(&307), "{}", report());
    assert!(codes(kicked).contains(&110), "{}", report());
    assert_eq!(kicked["role"], "none", "{}", report());
    assert_eq!(kicked["actor"], "alice", "{}", report());
    assert_eq!(kicked["reason"], "meeting's over", "{}", report());
    for client in ["alice", "bob"] {
        let gone = one_from(&outcome, client, "presence", &occupant("carol"), Some("unavailable"));
        assert!(codes(gone).contains(&307), "{}", report());
        assert!(!codes(gone).contains(&110), "{}", report());
        assert_eq!(gone["role"], "none", "{}", report());
    }
}

#[test]
fn archives_page_forwards_to_complete_and_back_from_the_end_for_an_account_and_a_room() {
    let outcome = alice_bob_and_carol_run("archive");
    let report = || outcome.report();
    let sent: Vec<String> = (0..200).map(|n| format!("m{n:03}")).collect();
    // RFC 6120 §10.1: alice's messages reach bob in the order she sent them.
    let received = outcome.one("bob", "received");
    assert_eq!(received["bodies"], json!(sent), "{}", report());
    // XEP-0359: bob's archive stamps what it keeps for him.
    assert_eq!(received["by"], "bob@localhost", "{}", report());
    let walk = |query: &str| -> &Value {
        let walks = outcome.of("bob", "archive");
        let found = walks.iter().find(|walk| walk["query"] == query);
        found.unwrap_or_else(|| panic!("no {query} walk\n{}", report()))
    };
    let pages = |query: &str| -> Vec<&Value> {
        let pages = outcome.of("bob", "page").into_iter();
        pages.filter(|page| page["query"] == query).collect()
    };
    let strings = |value: &Value| -> Vec<String> { serde_json::from_value(value.clone()).unwrap_or_default() };

    // XEP-0313 §4.1.1 (`with`: only alice's, not carol's), XEP-0059 §2.2:
    // four pages of 50, each after the last, complete at the end; every
    // message once, in order.
    let forward = walk("forward");
    assert_eq!(forward["bodies"], json!(sent), "{}", report());
    let ids = strings(&forward["ids"]);
    let distinct: std::collections::HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 200, "{}", report());
    let alice = bound_jid(&outcome, "alice", "alice@localhost/laptop");
    assert_eq!(forward["froms"], json!([alice]), "{}", report());
    // §4.2: the account's own archive answers, so no `from` (or its JID).
    let own = [Value::Null, json!("bob@localhost")];
    let result_froms = forward["result_froms"].as_array().cloned().unwrap_or_default();
    assert!(result_froms.iter().all(|from| own.contains(from)), "{}", report());
    let walked = pages("forward");
    assert_eq!(walked.len(), 4, "{}", report());
    for (n, page) in walked.iter().enumerate() {
        assert_eq!(page["results"], 50, "{}", report());
        assert_eq!(page["stray"], 0, "{}", report());
        assert_eq!(page["complete"], n == 3, "{}", report());
        assert_eq!(page["count"], "200", "{}", report());
        assert_eq!(page["first"], json!(ids[n * 50]), "{}", report());
        assert_eq!(page["last"], json!(ids[n * 50 + 49]), "{}", report());
        // XEP-0059 §2.6: the index is optional, right if there.
        let index = &page["index"];
        assert!(index.is_null() || *index == json!((n * 50).to_string()), "{}", report());
    }
    // The stanza-id bob got on alice's first names it in his archive.
    assert_eq!(received["stanza_id"], json!(ids[0]), "{}", report());

    // XEP-0059 §2.5: an empty <before/> is the last page, oldest first
    // (XEP-0313 §4.1.2), not complete (150 earlier ones remain).
    let last = walk("last");
    assert_eq!(last["bodies"], json!(sent[150..]), "{}", report());
    assert_eq!(last["ids"], json!(ids[150..]), "{}", report());
    let [page] = pages("last")[..] else {
        panic!("expected one last page\n{}", report());
    };
    assert_eq!(page["complete"], false, "{}", report());
    assert_eq!(page["count"], "200", "{}", report());
    assert_eq!(page["first"], json!(ids[150]), "{}", report());
    assert_eq!(page["last"], json!(ids[199]), "{}", report());
    assert_eq!(page["stray"], 0, "{}", report());

    // XEP-0313 §5: the room's archive, from the room, read by bob who
    // never entered: carol's message, under the stanza-id the room gave it.
    let said = outcome.only_before_done("alice", "said");
    assert_eq!(said["by"], TEAM, "{}", report());
    let room = walk("room");
    assert_eq!(room["bodies"], json!(["minutes are in the archive"]), "{}", report());
    assert_eq!(room["froms"], json!([occupant("carol")]), "{}", report());
    assert_eq!(room["result_froms"], json!([TEAM]), "{}", report());
    assert_eq!(room["ids"], json!([said["id"]]), "{}", report());
    assert_eq!(room["pages"], 1, "{}", report());
}

// PEP (XEP-0163) with XEP-0115 caps the script computes itself

#[test]
fn pep_a_contact_whose_caps_ask_for_locations_hears_of_one() {
    let server = server_with(&[ALICE, BOB]);
    let mut args = account("--alice", "alice@localhost/laptop", ALICE.1).to_vec();
    args.extend(account("--bob", "bob@localhost/phone", BOB.1));
    let outcome = scenario(&server, "pep", &args).succeeded();
    let report = || outcome.report();
    // The server asked what bob's caps stand for, once, by their node.
    let query = outcome.one("bob", "caps_query");
    let node = format!("https://ej.test/xmpp-js#{}", query["ver"].as_str().unwrap_or_default());
    assert_eq!(query["node"], node, "{}", report());
    let id = &outcome.one("alice", "published")["id"];
    assert!(id.as_str().is_some_and(|id| !id.is_empty()), "{}", report());
    let heard = outcome.one("bob", "pubsub");
    assert_eq!(
        heard,
        &json!({
            "client": "bob", "event": "pubsub", "from": "alice@localhost", "type": "headline",
            "node": "http://jabber.org/protocol/geoloc", "id": id, "lat": "48.8566", "lon": "2.3522",
        }),
        "{}",
        report()
    );
    let read = outcome.one("bob", "retrieved");
    assert_eq!(
        (&read["ids"], &read["lat"]),
        (&json!([id]), &json!("48.8566")),
        "{}",
        report()
    );
}
