//! Handler faults, provoked on demand by the faulty example handler: each
//! is written to the crash log with what is needed to find it, and the fault
//! policy decides what happens to the connection. Every event runs in a
//! fresh instance, so nothing but the returned state outlives it.

mod common;

use common::{Client, Server, check_digest, guest};
use serde_json::Value;

const MAX_OUTPUT_BYTES: usize = 4096;
const MAX_OUTCOME_BYTES: usize = 64 * 1024;

/// Tight limits, so that faults are quick to reach.
const LIMITS: &[&str] = &[
    "--event-timeout",
    "300ms",
    "--max-memory",
    "16MiB",
    "--max-output-bytes",
    "4KiB",
    "--max-outcome-bytes",
    "64KiB",
];

fn serve(policy: &str) -> Server {
    let mut flags = LIMITS.to_vec();
    flags.extend(["--on-fault", policy]);
    Server::start("faulty", &flags)
}

/// The crash report of the one fault `client` (connection `id`) caused in
/// the `build` of faulty.
fn only_crash(server: &Server, build: &str, client: &Client, id: u64) -> Value {
    let crashes = server.wait_for_crashes(1);
    assert_eq!(crashes.len(), 1, "{crashes:#?}");
    let report = crashes.into_iter().next().unwrap();
    assert_eq!(report["connection"], id, "{report:#}");
    assert_eq!(report["peer"], client.local_addr().to_string(), "{report:#}");
    assert_eq!(report["event"], "stanza", "{report:#}");
    let digest = report["module"].as_str().expect("a module digest");
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{digest:?} is not a lower-case hex SHA-256"
    );
    assert_eq!(digest, check_digest(&guest(build)));
    assert!(report["at_ms"].as_u64().is_some_and(|ms| ms > 0), "{report:#}");
    report
}

/// Sends `stanza` under the default `close` policy: checks that the client
/// gets an `<internal-server-error/>` stream error and is closed, that the
/// server goes on serving others, and returns the crash report.
fn fault_closes_the_connection(stanza: &str) -> Value {
    fault_in_build_closes_the_connection("faulty", stanza)
}

/// As `fault_closes_the_connection`, with faulty as `build` (`faulty`, or
/// `faulty-lean`: built without WASI).
fn fault_in_build_closes_the_connection(build: &str, stanza: &str) -> Value {
    let server = Server::start(build, LIMITS);
    let mut client = server.connect();
    client.open();
    let id = server.connection_id(&client);
    client.send("<probe/>");
    client.expect("<probe global='1' count='1'/>");
    client.send(stanza);
    let rest = client.read_to_end();
    assert!(rest.contains("<stream:error><internal-server-error"), "{rest:?}");
    assert!(rest.ends_with("</stream:stream>"), "{rest:?}");
    assert_eq!(server.wait_for_close(id)["reason"], "fault");
    let report = only_crash(&server, build, &client, id);

    let mut other = server.connect();
    other.open();
    other.send("<probe/>");
    other.expect("<probe global='1' count='1'/>");
    report
}

fn backtrace(report: &Value) -> &Vec<Value> {
    report["backtrace"].as_array().expect("a backtrace array")
}

fn output(report: &Value) -> &str {
    report["output"].as_str().expect("an output string")
}

#[test]
fn every_event_runs_in_a_fresh_instance_and_only_the_state_carries_on() {
    let server = serve("close");
    let mut client = server.connect();
    client.open();
    // faulty counts the events its instance has run in a global (G) and
    // the stanzas in its state (C): G stays 1, C goes up.
    for count in 1..=5 {
        client.send("<probe/>");
        client.expect(&format!("<probe global='1' count='{count}'/>"));
    }
}

#[test]
fn a_panic_is_a_trap_with_the_message_and_a_backtrace() {
    let report = fault_closes_the_connection("<panic/>");
    assert_eq!(report["kind"], "trap", "{report:#}");
    assert!(output(&report).contains("faulty: about to panic"), "{report:#}");
    assert!(output(&report).contains("faulty: panic on demand"), "{report:#}");
    assert!(
        !output(&report).contains("RUST_BACKTRACE"),
        "advice that cannot work here: {report:#}"
    );
    assert!(!backtrace(&report).is_empty(), "{report:#}");
}

#[test]
fn the_fault_log_line_leads_with_what_the_guest_said_and_spells_the_kind_as_the_report() {
    let server = Server::start("faulty", &["--on-fault", "skip"]);
    let mut client = server.open();
    client.send("<panic/>");
    let line = server.wait_for_log("handler fault", |_| true);
    assert_eq!(line["kind"], "trap", "{line:#}");
    let guest = line["guest"].as_str().unwrap();
    assert!(guest.contains("faulty: about to panic"), "{line:#}");
    assert!(guest.contains("faulty: panic on demand"), "{line:#}");
    client.send("<error/>");
    let line = server.wait_for_log("handler fault", |line| {
        line["event"] == "stanza" && line["kind"] != "trap"
    });
    assert_eq!(line["kind"], "handler-error", "{line:#}");
}

#[test]
fn a_loop_runs_into_the_deadline() {
    let report = fault_closes_the_connection("<loop/>");
    assert_eq!(report["kind"], "timeout", "{report:#}");
}

#[test]
fn a_hoard_runs_into_the_memory_limit() {
    let report = fault_closes_the_connection("<alloc/>");
    assert_eq!(report["kind"], "memory", "{report:#}");
}

#[test]
fn a_flood_of_output_is_cut_short_and_kept_bounded() {
    // faulty ignores failed writes: it spins until its deadline unless the
    // host traps it first.
    check_flood(&fault_closes_the_connection("<flood/>"), FLOOD_KINDS);
}

/// A flood's report: one of `kinds`, with faulty's lines in the output,
/// and no more of them than the limit.
fn check_flood(report: &Value, kinds: &[&str]) {
    assert!(kinds.contains(&report["kind"].as_str().unwrap()), "{report:#}");
    let output = output(report);
    assert!(output.contains("faulty: flooding"), "{report:#}");
    assert!(
        output.len() <= MAX_OUTPUT_BYTES,
        "{} bytes of output kept",
        output.len()
    );
}

#[test]
fn a_returned_error_is_a_handler_error() {
    let report = fault_closes_the_connection("<error/>");
    assert_eq!(report["kind"], "handler-error", "{report:#}");
    assert!(
        report["reason"].as_str().unwrap().contains("faulty: error on demand"),
        "{report:#}"
    );
}

#[test]
fn an_outcome_past_the_limit_is_refused() {
    let report = fault_closes_the_connection(&format!("<big n='{}'/>", MAX_OUTCOME_BYTES + 1000));
    assert_eq!(report["kind"], "outcome-too-large", "{report:#}");
}

#[test]
fn an_outcome_within_the_limit_is_sent() {
    let server = serve("close");
    let mut client = server.connect();
    client.open();
    let n = MAX_OUTCOME_BYTES - 1000;
    client.send(&format!("<big n='{n}'/>"));
    let big = client.read_until("</big>");
    assert_eq!(big.len(), n, "the <big> stanza and nothing else");
    client.send("<probe/>");
    client.expect("<probe global='1' count='2'/>");
    assert!(server.crashes().is_empty());
}

// A handler built without WASI (wasm32-unknown-unknown) has no stderr and
// the SDK's own allocator: the same faults, told as clearly.

#[test]
fn without_wasi_a_panic_still_reports_its_message_and_a_backtrace() {
    let report = fault_in_build_closes_the_connection("faulty-lean", "<panic/>");
    assert_eq!(report["kind"], "trap", "{report:#}");
    // Through the `output` import; faulty's own stderr line goes nowhere.
    assert!(output(&report).contains("faulty: panic on demand"), "{report:#}");
    assert!(output(&report).contains("panicked at"), "{report:#}");
    assert!(!backtrace(&report).is_empty(), "{report:#}");
}

#[test]
fn without_wasi_a_flood_of_output_is_cut_short_and_kept_bounded() {
    // Through the `output` import alone: past the limit the host drops it,
    // and faulty spins on until its deadline.
    check_flood(
        &fault_in_build_closes_the_connection("faulty-lean", "<flood/>"),
        &["timeout"],
    );
}

#[test]
fn without_wasi_a_hoard_runs_into_the_memory_limit() {
    let report = fault_in_build_closes_the_connection("faulty-lean", "<alloc/>");
    assert_eq!(report["kind"], "memory", "{report:#}");
}

#[test]
fn without_wasi_a_runaway_recursion_is_a_trap() {
    let report = fault_in_build_closes_the_connection("faulty-lean", "<recurse/>");
    assert_eq!(report["kind"], "trap", "{report:#}");
}

#[test]
fn without_wasi_an_event_may_need_more_memory_than_the_instance_starts_with() {
    // The SDK's allocator starts from a 256 KiB arena; this event needs
    // about six times that (the filler, then the reply made of it), so the
    // memory grows. (Within the default outcome and outbound limits, 1 MiB.)
    let n = 800 << 10;
    let server = Server::start("faulty-lean", &[]);
    let mut client = server.open();
    client.send(&format!("<big n='{n}'/>"));
    let big = client.read_until("</big>");
    assert_eq!(big.len(), n, "the <big> stanza and nothing else");
    for count in 2..=4 {
        client.send("<probe/>");
        client.expect(&format!("<probe global='1' count='{count}'/>"));
    }
    assert!(server.crashes().is_empty());
}

/// The kinds a flood of output may be reported as.
const FLOOD_KINDS: &[&str] = &["trap", "timeout"];

/// Every fault faulty can provoke, and the kinds its crash report may have.
const FAULTS: &[(&str, &[&str])] = &[
    ("<panic/>", &["trap"]),
    ("<loop/>", &["timeout"]),
    ("<alloc/>", &["memory"]),
    ("<flood/>", FLOOD_KINDS),
    ("<error/>", &["handler-error"]),
    ("<big n='100000'/>", &["outcome-too-large"]),
];

#[test]
fn under_the_skip_policy_faulted_events_are_discarded_and_the_connection_stays() {
    let server = serve("skip");
    let mut client = server.connect();
    client.open();
    let id = server.connection_id(&client);
    client.send("<probe/>");
    client.expect("<probe global='1' count='1'/>");
    for (n, (stanza, _)) in FAULTS.iter().enumerate() {
        // faulty counts every stanza before it faults: the host must drop
        // that increment with the rest of the faulted event's outcome.
        client.send(&format!("{stanza}<probe/>"));
        let reply = client.read_until("/>");
        assert_eq!(
            reply,
            format!("<probe global='1' count='{}'/>", n + 2),
            "after {stanza}"
        );
    }

    let crashes = server.wait_for_crashes(FAULTS.len());
    assert_eq!(crashes.len(), FAULTS.len(), "{crashes:#?}");
    for (report, (stanza, kinds)) in crashes.iter().zip(FAULTS) {
        assert!(
            kinds.contains(&report["kind"].as_str().unwrap()),
            "{stanza}: {report:#}"
        );
        assert_eq!(report["connection"], id, "{report:#}");
        assert_eq!(report["event"], "stanza", "{report:#}");
    }
    assert!(
        server
            .find_log("connection closed", |fields| fields["id"] == id)
            .is_none()
    );

    client.send("<ping/>");
    client.expect("<ping xmlns='jabber:client'/>");
    client.send("</stream:stream>");
    assert!(client.read_to_end().ends_with("</stream:stream>"));
    assert_eq!(server.wait_for_close(id)["reason"], "stream-end");
}

#[test]
fn guest_controlled_text_cannot_forge_log_lines() {
    // An address holding a newline and what looks like a log line, logged
    // when the bind is refused: the text log keeps it on one line, escaped.
    let server = Server::start("faulty", &["--log-format", "text", "--max-addresses", "0"]);
    let mut client = server.open();
    let forged = "2026-01-01T00:00:00.000000Z  INFO ej: forged line";
    client.send(&format!("<bind address='evil&#10;{forged}'/>"));
    client.read_until("<binding ");
    let logged = common::wait_until(|| {
        let lines = server.text_log();
        lines.iter().any(|line| line.contains("bind refused")).then_some(lines)
    });
    let refused = logged.iter().find(|line| line.contains("bind refused")).unwrap();
    assert!(refused.contains(r#"address="evil\n2026"#), "{refused}");
    assert!(!logged.iter().any(|line| line.starts_with(forged)), "{logged:#?}");
    assert!(
        !logged.iter().any(|line| line.contains('\u{1b}')),
        "no colours into a pipe: {logged:#?}"
    );
}

#[test]
fn an_outcome_of_too_many_actions_faults_however_small_they_are() {
    let server = Server::start("faulty", &["--on-fault", "skip", "--max-actions", "100"]);
    let mut client = server.open();
    client.send("<many n='100'/>");
    client.expect("<many/>");
    client.send("<many n='200000'/><probe/>");
    client.read_until("<probe ");
    let crashes = server.wait_for_crashes(1);
    assert_eq!(crashes[0]["kind"], "outcome-too-large", "{crashes:#?}");
    assert!(
        crashes[0]["reason"]
            .as_str()
            .unwrap()
            .contains("200000 actions exceeds the limit of 100 actions"),
        "{crashes:#?}"
    );
}

#[test]
fn a_peer_past_its_connection_cap_is_told_why_while_other_peers_get_in() {
    let server = Server::start("echo", &["--max-connections-per-ip", "2"]);
    let first = server.open();
    let _second = server.open();
    let mut third = Client::connect(server.addr);
    let refused = third.read_to_end();
    assert!(
        refused.contains("<policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>")
            && refused.contains("too many connections from your address"),
        "{refused}"
    );
    // Another address is another peer.
    let mut elsewhere = Client::connect_from(server.addr, std::net::Ipv4Addr::new(127, 0, 0, 2));
    elsewhere.open();
    // A place given back is taken again.
    let id = server.connection_id(&first);
    drop(first);
    server.wait_for_close(id);
    server.open();
    server.wait_for_log("connection refused: too many connections from one address", |line| {
        line["limit"] == 2
    });
}

#[test]
fn a_flood_of_refused_connections_writes_a_line_a_second() {
    let server = Server::start("echo", &["--max-connections", "1"]);
    let _only = server.open();
    let mut refused = Client::connect(server.addr);
    let told = refused.read_to_end();
    assert!(
        told.contains("<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"),
        "{told}"
    );
    let started = std::time::Instant::now();
    for _ in 0..500 {
        let mut refused = Client::connect(server.addr);
        let _ = refused.try_read_until("never", std::time::Duration::from_secs(1));
    }
    let seconds = started.elapsed().as_secs() as usize;
    let message = "connection refused: too many connections";
    let lines = common::wait_until(|| {
        let lines = server.logs_of(message);
        (!lines.is_empty()).then_some(lines)
    });
    assert!(lines.len() <= seconds + 2, "{} lines in {seconds} s", lines.len());
    if let Some(later) = lines.get(1) {
        assert!(later["suppressed"].as_u64().unwrap() > 0, "{later}");
    }
}
