//! `ej-load` against the real `ej` serving the XMPP handler: 20 users log
//! in with SCRAM over plain TCP and exchange chat messages for 2 s; every
//! message must arrive, with no error, and the server's `/proc` readings
//! must be in the report. The same over STARTTLS, trusting the server's
//! self-signed certificate. And overload: full mailboxes slow the senders
//! and lose nothing, or, when routes may not wait, turn messages back as
//! `resource-constraint` errors.

mod common;

use clap::Parser as _;
use common::Server;

/// Makes `users` accounts `PREFIX0`… on `server`, runs `ej-load` against
/// it with `args` added, and returns its report and table.
fn load(server: &Server, users: usize, prefix: &str, args: &[&str]) -> (serde_json::Value, String) {
    for user in 0..users {
        server.command(&["user", "add", &format!("{prefix}{user}"), "load-password"]);
    }
    let addr = server.addr.to_string();
    let users = users.to_string();
    let mut argv = vec![
        "ej-load",
        "--addr",
        &addr,
        "--users",
        &users,
        "--user-prefix",
        prefix,
        "--quiet",
    ];
    argv.extend_from_slice(args);
    let options = ej_load::Options::parse_from(argv);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(ej_load::run(&options)).expect("the load runs");
    let table = report.table();
    (report.json, table)
}

#[test]
fn every_message_is_delivered() {
    let server = Server::start("xmpp", &[]);
    let pid = server.pid().to_string();
    let (json, table) = load(
        &server,
        20,
        "load",
        &[
            "--concurrency",
            "5",
            "--rate",
            "100",
            "--duration",
            "2",
            "--drain",
            "5",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(json["logins"], 20, "{table}");
    let sent = json["sent"].as_u64().expect("a count");
    assert!(sent >= 150, "{table}");
    assert_eq!(json["delivered"], sent, "{table}");
    assert_eq!(json["lost"], 0, "{table}");
    assert_eq!(json["stanza_errors"], 0, "{table}");
    assert_eq!(json["stream_errors"], 0, "{table}");
    assert!(json["latency_ms"]["max"].as_f64().expect("a latency") > 0.0, "{table}");
    assert!(
        json["server"]["rss_after_login_bytes"].as_u64().expect("an RSS") > 0,
        "{table}"
    );
    assert!(
        json["server"]["cpu_load_seconds"].as_f64().expect("CPU time") > 0.0,
        "{table}"
    );
}

#[test]
fn over_starttls() {
    let server = Server::start("xmpp", &[]);
    let ca_file = server.data_dir.join("tls/localhost.crt");
    let ca_file = ca_file.to_str().expect("a UTF-8 path");
    let (json, table) = load(
        &server,
        4,
        "tls",
        &["--rate", "40", "--duration", "1", "--starttls", "--ca-file", ca_file],
    );
    assert_eq!(json["logins"], 4, "{table}");
    assert_eq!(json["lost"], 0, "{table}");
    assert!(json["delivered"].as_u64().expect("a count") >= 30, "{table}");
}

#[test]
fn overload_slows_the_senders_and_loses_nothing() {
    // Mailboxes of 2 and random pairs: receivers' mailboxes are full most of
    // the time, so routes wait for room (and the senders' clients with
    // them) instead of coming back; every message still arrives.
    let server = Server::start("xmpp", &["--mailbox", "2"]);
    let (json, table) = load(
        &server,
        10,
        "busy",
        &["--rate", "1000", "--duration", "1.5", "--drain", "20", "--random-pairs"],
    );
    assert_eq!(json["logins"], 10, "{table}");
    let sent = json["sent"].as_u64().expect("a count");
    assert!(sent >= 1000, "{table}");
    assert_eq!(json["delivered"], sent, "{table}");
    assert_eq!(json["lost"], 0, "{table}");
    assert_eq!(json["duplicates"], 0, "{table}");
    assert_eq!(json["stanza_errors"], 0, "{table}");
}

#[test]
fn a_receiver_that_cannot_keep_up_sends_messages_back_as_resource_constraint() {
    // The same overload, but routes may not wait: each message either
    // arrives or comes back to its sender as a `resource-constraint` error
    // (type `wait`) — none vanishes, none is re-routed in circles.
    // A mailbox of one at twice the rate: a receiver busy with one message
    // refuses the next that comes meanwhile (at half this, on a quiet
    // machine, every receiver once kept up and nothing was refused).
    let server = Server::start("xmpp", &["--mailbox", "1", "--route-wait", "0ms"]);
    let (json, table) = load(
        &server,
        10,
        "busy",
        &["--rate", "2000", "--duration", "1.5", "--drain", "5", "--random-pairs"],
    );
    let sent = json["sent"].as_u64().expect("a count");
    let delivered = json["delivered"].as_u64().expect("a count");
    let refused = json["stanza_errors"].as_u64().expect("a count");
    assert!(refused > 0, "{table}");
    assert_eq!(delivered + refused, sent, "{table}");
    assert_eq!(json["duplicates"], 0, "{table}");
    for error in json["errors"].as_array().expect("the errors noted") {
        let error = error.as_str().expect("a text");
        assert!(error.contains("resource-constraint"), "{error}\n{table}");
    }
}
