//! Reading a server's Prometheus endpoint (`--metrics 127.0.0.1:0`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::Server;

/// Where `server`, started with `--metrics 127.0.0.1:0`, serves its figures.
pub fn endpoint(server: &Server) -> SocketAddr {
    server.wait_for_log("metrics", |_| true)["bound"]
        .as_str()
        .expect("the metrics line names its address")
        .parse()
        .expect("a socket address")
}

/// The figures the endpoint at `metrics` serves now.
pub fn scrape(metrics: SocketAddr) -> String {
    try_scrape(metrics).expect("scraping the metrics endpoint")
}

/// The figures, or none if the endpoint is gone or answers otherwise.
pub fn try_scrape(metrics: SocketAddr) -> Option<String> {
    let mut stream = TcpStream::connect(metrics).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nhost: ej\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let figures = response.strip_prefix("HTTP/1.1 200 OK\r\n")?;
    Some(figures.split_once("\r\n\r\n")?.1.to_owned())
}

/// The value of the sample `name` (with its labels) in `figures`.
pub fn value(figures: &str, name: &str) -> f64 {
    figures
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{figures}"))
        .parse()
        .unwrap()
}
