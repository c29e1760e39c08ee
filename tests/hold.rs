//! Connections held: many raw TCP connections (2,000 in CI;
//! `EJ_HOLD_CONNECTIONS=10000` in `bench/hold.sh`) open their stream with
//! the real `ej` serving the faulty handler, from as many loopback
//! addresses as `--max-connections-per-ip` (default 1,000) asks; each is
//! held, then answers a ping, then closes cleanly — and the server is back
//! to no open connection. Prints the server's resident memory per
//! connection.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use common::metrics::{endpoint, scrape, value};
use common::probes::PONG;
use common::{Client, Server, setting, wait_until};

/// Connections from one address, the default `--max-connections-per-ip`.
const PER_ADDRESS: usize = 1000;

fn rss(server: &Server) -> u64 {
    ej_load::proc::sample(server.pid())
        .expect("reading ej's /proc")
        .rss_bytes
}

#[test]
fn every_connection_is_held_served_and_closed_cleanly() {
    let count = setting("EJ_HOLD_CONNECTIONS", 2000);
    let hold = Duration::from_secs(setting("EJ_HOLD_SECONDS", 1));
    let server = Server::start("faulty", &["--metrics", "127.0.0.1:0"]);
    let metrics = endpoint(&server);
    let before = rss(&server);

    let started = Instant::now();
    let mut clients: Vec<Client> = (0..count)
        .map(|n| {
            let from = Ipv4Addr::new(
                127,
                0,
                1,
                u8::try_from(1 + n / PER_ADDRESS).expect("at most 254 addresses"),
            );
            let mut client = Client::connect_from(server.addr, from);
            client.open();
            client
        })
        .collect();
    let opened = started.elapsed();
    std::thread::sleep(hold);
    let held = rss(&server);
    assert_eq!(value(&scrape(metrics), "ej_connections_open"), count as f64);

    for client in &mut clients {
        client.send("<ping/>");
    }
    for client in &mut clients {
        client.expect(PONG);
    }
    for client in &mut clients {
        client.send("</stream:stream>");
    }
    for mut client in clients {
        assert!(client.read_to_end().ends_with("</stream:stream>"));
    }
    let figures = wait_until(|| {
        let figures = scrape(metrics);
        (value(&figures, "ej_connections_open") == 0.0).then_some(figures)
    });
    assert_eq!(value(&figures, "ej_connections_accepted_total"), count as f64);
    assert_eq!(value(&figures, "ej_faults_total{kind=\"trap\"}"), 0.0);
    eprintln!(
        "hold: {count} connections opened in {:.1} s, held {} s, all answered and closed; \
         RSS {} MiB before, {} MiB held: {:.1} KiB per connection",
        opened.as_secs_f64(),
        hold.as_secs(),
        before >> 20,
        held >> 20,
        held.saturating_sub(before) as f64 / 1024.0 / count as f64
    );
}
