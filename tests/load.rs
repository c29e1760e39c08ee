//! `ej-load` against the real `ej` serving the XMPP handler: 20 users log
//! in with SCRAM over plain TCP and exchange chat messages for 2 s; every
//! message must arrive, with no error, and the server's `/proc` readings
//! must be in the report.

mod common;

use clap::Parser as _;
use common::Server;

#[test]
fn every_message_is_delivered() {
    const USERS: usize = 20;
    let server = Server::start("xmpp", &[]);
    for user in 0..USERS {
        server.command(&["user", "add", &format!("load{user}"), "load-password"]);
    }
    let addr = server.addr.to_string();
    let pid = server.pid().to_string();
    let users = USERS.to_string();
    let options = ej_load::Options::parse_from([
        "ej-load",
        "--addr",
        &addr,
        "--users",
        &users,
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
        "--quiet",
    ]);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let report = runtime.block_on(ej_load::run(&options)).expect("the load runs");
    let json = &report.json;
    let table = report.table();
    assert_eq!(json["logins"], USERS, "{table}");
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
