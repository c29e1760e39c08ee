//! The Prometheus endpoint (`--metrics`): what a scrape says after known
//! traffic — connections accepted and refused, events and faults by kind,
//! the latency histogram, bytes out, store commits, dropped events — and
//! that it listens on loopback only.

mod common;

use common::metrics::{endpoint, scrape, value};
use common::probes::sync;
use common::{Client, Server, ej};

#[test]
fn a_scrape_counts_connections_events_faults_and_bytes() {
    let server = Server::start("faulty", &["--metrics", "127.0.0.1:0", "--max-connections-per-ip", "3"]);
    let bound = endpoint(&server);
    let mut alice = server.open();
    sync(&mut alice);
    sync(&mut alice);
    let _carol = server.open();
    let mut bob = server.open();
    let mut refused = Client::connect(server.addr);
    refused.read_to_end();
    bob.send("<panic/>");
    bob.read_to_end();

    // Once bob's connection has closed (its place is given back last).
    let figures = common::wait_until(|| {
        let figures = scrape(bound);
        (value(&figures, "ej_connections_open") == 2.0).then_some(figures)
    });
    assert_eq!(value(&figures, "ej_connections_accepted_total"), 3.0, "{figures}");
    assert_eq!(
        value(
            &figures,
            "ej_connections_refused_total{limit=\"max-connections-per-ip\"}"
        ),
        1.0
    );
    assert_eq!(value(&figures, "ej_faults_total{kind=\"trap\"}"), 1.0, "{figures}");
    // alice's two pings and bob's panic; three stream headers; bob's close.
    assert_eq!(value(&figures, "ej_events_total{kind=\"stanza\"}"), 3.0, "{figures}");
    assert_eq!(
        value(&figures, "ej_events_total{kind=\"stream-open\"}"),
        3.0,
        "{figures}"
    );
    assert_eq!(value(&figures, "ej_events_total{kind=\"closed\"}"), 1.0, "{figures}");
    assert_eq!(value(&figures, "ej_event_seconds_count"), 7.0, "{figures}");
    assert_eq!(
        value(&figures, "ej_event_seconds_bucket{le=\"+Inf\"}"),
        7.0,
        "{figures}"
    );
    assert!(value(&figures, "ej_outbound_bytes_total") > 0.0, "{figures}");
    assert_eq!(value(&figures, "ej_instances_in_use"), 0.0, "{figures}");
}

#[test]
fn store_commits_and_dropped_events_are_counted() {
    let server = Server::start("faulty", &["--metrics", "127.0.0.1:0", "--max-chain", "5"]);
    let bound = endpoint(&server);
    let mut client = server.open();
    client.send("<put key='k' value='v'/>");
    client.expect("<stored key='k'/>");
    // A read-only event commits nothing to count.
    sync(&mut client);
    assert_eq!(value(&scrape(bound), "ej_store_commits_total"), 1.0);
    // Each bounce routes the payload to nobody again: the chain is cut.
    client.send("<stubborn/>");
    client.expect("<stubborn/>");
    client.send("<route to='nobody'><x/></route>");
    sync(&mut client);
    let figures = scrape(bound);
    assert!(value(&figures, "ej_events_dropped_total") >= 1.0, "{figures}");
}

#[test]
fn the_metrics_endpoint_listens_on_loopback_only() {
    let out = ej()
        .args(["serve", "--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:0", "--module"])
        .arg(common::guest("echo"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback addresses only"), "{stderr}");
}
