//! A PostgreSQL server of a test's own: a fresh cluster (`initdb`) in a
//! scratch directory, listening on 127.0.0.1 on a free port, stopped when
//! dropped, and told to stop if the test process dies first. As root it
//! runs as the `postgres` user (`initdb` refuses root). Benchmarks use it
//! too, so it stands alone.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Postgres {
    child: Option<Child>,
    /// Whether commits are synced to disk (benchmarks) or not (tests).
    durable: bool,
    port: u16,
    /// The scratch directory, removed when dropped; the cluster is in it.
    dir: PathBuf,
    data: PathBuf,
    /// `postgres://…` for `ej serve --store`.
    pub url: String,
}

impl Postgres {
    /// A server for tests: commits are not synced to disk.
    pub fn start(test: &str) -> Self {
        Self::launch(test, false)
    }

    /// A server that syncs every commit to disk, as in production: for
    /// benchmarks against the embedded store, which does.
    pub fn start_durable(bench: &str) -> Self {
        Self::launch(bench, true)
    }

    fn launch(test: &str, durable: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("ej-pg-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a scratch directory");
        let data = dir.join("data");
        if as_root() {
            run(Command::new("chown").args(["postgres:postgres"]).arg(&dir));
        }
        run(as_postgres(&bin("initdb"))
            .args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg("--pgdata")
            .arg(&data));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let mut postgres = Self {
            child: None,
            durable,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
            data,
        };
        postgres.resume();
        postgres
    }

    /// The URL of a new, empty database `name` on this server.
    pub fn database(&self, name: &str) -> String {
        run(Command::new(bin("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "postgres"])
            .arg(name));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Stops the server (a fast shutdown: connections are cut).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
            let _ = child.wait();
        }
    }

    /// Starts the stopped server again, on the same port and data, and
    /// waits until it takes queries.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = as_postgres(&bin("postgres"));
        command
            .arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string(), "-k"])
            .arg(&self.data)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"]);
        if !self.durable {
            // Tests need no durability across a power cut.
            command.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting postgres");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = Command::new(bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|status| status.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest installed PostgreSQL's program `name`.
fn bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect())
        .unwrap_or_default();
    versions.sort_by_key(|path| path.file_name().and_then(|name| name.to_str()?.parse::<u32>().ok()));
    let program = versions.last().map(|dir| dir.join("bin").join(name));
    program.filter(|path| path.is_file()).unwrap_or_else(|| {
        panic!("PostgreSQL is not installed: `cargo xtask test` installs it (Debian package postgresql)")
    })
}

fn as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0)
}

/// `program`, run as the `postgres` user when this is root, and sent
/// SIGTERM when the test process dies.
fn as_postgres(program: &Path) -> Command {
    let mut command = Command::new("setpriv");
    if as_root() {
        command.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    command.args(["--pdeathsig", "SIGTERM", "--"]).arg(program);
    command
}

fn run(command: &mut Command) {
    let out = command.output().expect("running a PostgreSQL tool");
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
