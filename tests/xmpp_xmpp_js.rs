//! @xmpp/client (xmpp.js), a real XMPP client library (JavaScript, from
//! npm), against the real `ej` binary serving the XMPP handler
//! (`examples/xmpp`) over TCP on 127.0.0.1: STARTTLS with the server's
//! self-signed certificate for `localhost` (the only CA the client trusts),
//! SASL, resource binding, chat, XEP-0199 ping, and roster management with
//! its pushes.
//!
//! Each test runs one scenario script from `tests/xmpp/xmpp-js/` (see their
//! doc comments, and `harness.mjs` for what they share) with node, against
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

#[test]
fn alice_logs_in_over_starttls_with_scram_sha_1() {
    let outcome = login("alice@localhost/laptop", ALICE.1);
    let session = outcome.one("user", "session_start");
    assert_eq!(session["jid"], "alice@localhost/laptop", "{}", outcome.report());
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
    assert!(
        [Value::Null, json!("alice@localhost"), json!("alice@localhost/laptop")].contains(&push["to"]),
        "{}",
        outcome.report()
    );
    assert_eq!(push["items"], bob, "{}", outcome.report());
    assert_eq!(roster("after"), bob, "{}", outcome.report());
}
