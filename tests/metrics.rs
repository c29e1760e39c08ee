//! The Prometheus endpoint (`--metrics`): what a scrape says after known
//! traffic — connections accepted and refused, events and faults by kind,
//! the latency histogram, bytes out — and that it listens on loopback only.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::probes::sync;
use common::{Client, Server, ej};

/// The figures the server at `metrics` serves now.
fn scrape(metrics: SocketAddr) -> String {
    let mut stream = TcpStream::connect(metrics).expect("connecting to the metrics endpoint");
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: ej\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    response.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// The value of the sample `name` (with its labels) in `figures`.
fn value(figures: &str, name: &str) -> f64 {
    figures
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{figures}"))
        .parse()
        .unwrap()
}

#[test]
fn a_scrape_counts_connections_events_faults_and_bytes() {
    let server = Server::start("faulty", &["--metrics", "127.0.0.1:0", "--max-connections-per-ip", "3"]);
    let bound = server.wait_for_log("metrics", |_| true)["bound"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
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
