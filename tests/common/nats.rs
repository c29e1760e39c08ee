//! A NATS server of a test's own (Debian's `nats-server`), listening on
//! 127.0.0.1 on a free port, stopped when dropped, and told to stop if the
//! test process dies first. Benchmarks use it too, so it stands alone.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const PROGRAM: &str = "/usr/sbin/nats-server";

pub struct Nats {
    child: Option<Child>,
    port: u16,
    /// `nats://…` for `ej serve --cluster`.
    pub url: String,
}

impl Nats {
    pub fn start() -> Self {
        assert!(
            std::path::Path::new(PROGRAM).is_file(),
            "nats-server is not installed: `cargo xtask test` installs it (Debian package nats-server)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut nats = Self {
            child: None,
            port,
            url: format!("nats://127.0.0.1:{port}"),
        };
        nats.resume();
        nats
    }

    /// Stops the server; its clients lose their connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again on the same port, and waits until it
    /// takes connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "SIGTERM", "--", PROGRAM])
            .args(["-a", "127.0.0.1", "-p", &self.port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}
