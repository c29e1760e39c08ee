//! profanity, a terminal XMPP client (Debian's package), used as a person
//! would against the real `ej` binary serving the XMPP handler
//! (`examples/xmpp`): it runs in a private tmux server, keys are typed
//! with `tmux send-keys`, and the test reads the screen with
//! `tmux capture-pane` until what a person waits for shows up.
//!
//! alice logs in with profanity (STARTTLS, the server's self-signed
//! certificate verified: it is the only one profanity trusts), asks bob for
//! his presence, approves his request for hers, sees him online in her
//! roster, sends him a message and reads his answer, and quits. bob is a
//! slixmpp bot (`tests/xmpp/slixmpp/echo_bot.py`) that approves requests,
//! asks back, and answers every message with "echo: BODY".
//!
//! When a step times out, the assertion shows the screen, the XML
//! profanity logged (its debug log), what the bot reported and exchanged,
//! and the server's log.

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Scratch, Server, scenario};
use serde_json::Value;

/// How long a person waits for each step before giving up.
const STEP: Duration = Duration::from_secs(20);

/// How long the bot may run, in seconds (its `--timeout`).
const BOT_SECONDS: u64 = 120;

/// The accounts the test creates.
const ALICE: (&str, &str) = ("alice", "alice-password");
const BOB: (&str, &str) = ("bob", "bob-password");

/// The terminal's size: wide enough for the console's roster panel.
const COLUMNS: &str = "200";
const ROWS: &str = "50";

/// Runs `program ARGS…`; fails the test, saying how to install it, if it
/// does not run.
fn installed(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|error| {
        panic!("running {program}: {error}: run `cargo xtask test` (it installs profanity and tmux)")
    })
}

/// bob, answering messages: `echo_bot.py`, killed when dropped.
struct Bot {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Bot {
    fn start(server: &Server) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/xmpp/slixmpp/echo_bot.py");
        let python = scenario::tool("xmpp-py/bin/python", "slixmpp");
        let mut child = Command::new(python)
            .arg(script)
            .args(["--host", &server.addr.ip().to_string()])
            .args(["--port", &server.addr.port().to_string()])
            .arg("--ca")
            .arg(server.data_dir.join("tls/localhost.crt"))
            .args(["--timeout", &BOT_SECONDS.to_string()])
            .args(["--bob", "bob@localhost/bot", BOB.1])
            .args(["--peer", "alice@localhost"])
            // No `__pycache__` in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting echo_bot.py");
        let collect = |mut pipe: Box<dyn std::io::Read + Send>| {
            let text = Arc::new(Mutex::new(String::new()));
            let sink = Arc::clone(&text);
            std::thread::spawn(move || {
                let mut buffer = [0; 4096];
                while let Ok(read @ 1..) = pipe.read(&mut buffer) {
                    sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buffer[..read]));
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().expect("piped stdout")));
        let stderr = collect(Box::new(child.stderr.take().expect("piped stderr")));
        Self { child, stdout, stderr }
    }

    /// The JSON objects the bot has printed so far.
    fn events(&self) -> Vec<Value> {
        let stdout = self.stdout.lock().unwrap();
        stdout
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())))
            .collect()
    }

    /// The events named `event`.
    fn all(&self, event: &str) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|each| each["event"] == event)
            .collect()
    }

    /// Whether the bot has exited, and how.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("waiting for the bot")
    }

    /// Its events, and the XML it exchanged with its warnings and errors.
    fn report(&self) -> String {
        let events: Vec<String> = self.events().iter().map(Value::to_string).collect();
        let stderr = self.stderr.lock().unwrap();
        let xml = common::scenario::xml_lines(&stderr);
        format!(
            "--- the bot's events:\n{}\n--- the bot's XML and errors:\n{}",
            events.join("\n"),
            xml.join("\n")
        )
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// profanity in a tmux server of its own, with a home of its own; the tmux
/// server (and profanity with it) is killed when dropped, the home removed.
struct Terminal {
    /// The tmux server's socket, in the scratch directory.
    socket: PathBuf,
    home: PathBuf,
    _scratch: Scratch,
}

/// The tmux session profanity runs in.
const SESSION: &str = "profanity";

impl Terminal {
    /// Starts profanity, trusting only `certificate` (PEM), with a debug
    /// log of everything it sends and receives.
    fn start(certificate: &Path) -> Self {
        let scratch = Scratch::new("profanity");
        let home = scratch.path("home");
        let config = home.join(".config");
        let data = home.join(".local/share");
        let trusted = scratch.path("trusted");
        for dir in [config.join("profanity"), data.clone(), trusted.clone()] {
            std::fs::create_dir_all(&dir).expect("creating profanity's directories");
        }
        let ca = trusted.join("localhost.crt");
        std::fs::copy(certificate, &ca).expect("copying the server's certificate");
        // No splash, no version check over the network, no reconnecting
        // after a failure, no desktop notifications; and `trusted` as the
        // directory of trusted certificates rather than /etc/ssl/certs
        // (see below).
        let profrc = format!(
            "[ui]\nsplash=false\nvercheck=false\n\n\
             [connection]\nreconnect=0\ntls.certpath={}\n\n\
             [notifications]\nmessage=false\nroom=false\nsub=false\ninvite=false\ntyping=false\nremind=0\n",
            trusted.display()
        );
        std::fs::write(config.join("profanity/profrc"), profrc).expect("writing profrc");

        let socket = scratch.path("tmux.sock");
        let terminal = Self {
            socket,
            home: home.clone(),
            _scratch: scratch,
        };
        let out = terminal
            .tmux()
            // profanity hands its certificate directory to libstrophe,
            // which has OpenSSL look in its default locations first: there
            // a system certificate with the same subject (CN=localhost,
            // such as ssl-cert's snakeoil in /etc/ssl/certs) shadows the
            // server's, and verification fails. So the default locations
            // hold the server's certificate, and nothing else: profanity
            // verifies the server (chain and name) against it alone.
            .env("SSL_CERT_FILE", &ca)
            .env("SSL_CERT_DIR", &trusted)
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", &config)
            .env("XDG_DATA_HOME", &data)
            .env("LANG", "C.UTF-8")
            .env("LC_ALL", "C.UTF-8")
            .env_remove("TMUX")
            // Keep the screen if profanity exits, to show it.
            .args(["set-option", "-g", "remain-on-exit", "on", ";"])
            .args(["new-session", "-d", "-s", SESSION, "-x", COLUMNS, "-y", ROWS])
            .args(["profanity", "--log", "DEBUG"])
            .output()
            .expect("running tmux: run `cargo xtask test` (it installs profanity and tmux)");
        assert!(
            out.status.success(),
            "tmux new-session failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        terminal
    }

    /// `tmux` on this terminal's server, without a configuration file.
    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.arg("-S").arg(&self.socket).args(["-f", "/dev/null"]);
        command
    }

    /// Runs `tmux ARGS…`; what it printed.
    fn run(&self, args: &[&str]) -> String {
        let out = self.tmux().args(args).output().expect("running tmux");
        assert!(
            out.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text` and presses Enter.
    fn type_line(&self, text: &str) {
        self.run(&["send-keys", "-t", SESSION, "-l", text]);
        self.run(&["send-keys", "-t", SESSION, "Enter"]);
    }

    /// What the screen shows.
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", SESSION])
    }

    /// What the screen shows, with what scrolled off it.
    fn screen_and_history(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", SESSION, "-S", "-500"])
    }

    /// Whether profanity has exited.
    fn exited(&self) -> bool {
        self.run(&["display-message", "-p", "-t", SESSION, "#{pane_dead}"])
            .trim()
            == "1"
    }

    /// The XML, warnings and errors in profanity's debug log.
    fn log(&self) -> String {
        let path = self.home.join(".local/share/profanity/logs/profanity.log");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|error| format!("({}: {error})", path.display()));
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| {
                ["SENT:", "RECV:", "WRN:", "ERR:"]
                    .iter()
                    .any(|mark| line.contains(mark))
            })
            .collect();
        lines.join("\n")
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").output();
    }
}

/// The text of the console's roster panel, right of the main window, one
/// trimmed line for each line of the screen: empty when the screen shows
/// no roster panel.
fn roster_panel(screen: &str) -> Vec<String> {
    let lines: Vec<Vec<char>> = screen.lines().map(|line| line.chars().collect()).collect();
    // Its last presence group's header, which every roster shows.
    let header: Vec<char> = "Offline (".chars().collect();
    let column = lines.iter().find_map(|line| {
        line.windows(header.len())
            .position(|window| window == header.as_slice())
    });
    let Some(column) = column else {
        return Vec::new();
    };
    lines
        .iter()
        .map(|line| line.iter().skip(column).collect::<String>().trim().to_owned())
        .collect()
}

/// Whether the roster panel lists `jid` as online.
fn online_in_roster_panel(screen: &str, jid: &str) -> bool {
    let panel = roster_panel(screen);
    panel
        .windows(2)
        .any(|pair| pair[0].starts_with("Online (") && pair[1] == jid)
}

/// alice at her terminal, bob's bot, and the server.
struct Stage {
    terminal: Terminal,
    bot: Bot,
    server: Server,
}

impl Stage {
    /// Everything there is to know when a step fails.
    fn report(&self) -> String {
        let server_log = common::scenario::server_log(&self.server);
        format!(
            "--- the screen (with history):\n{}\n--- profanity's XML, warnings and errors:\n{}\n{}\n--- server log:\n{}",
            self.terminal.screen_and_history(),
            self.terminal.log(),
            self.bot.report(),
            server_log.join("\n"),
        )
    }

    /// Waits until the screen satisfies `check`; fails with the report if
    /// it does not within a step's time.
    fn wait_for_screen(&self, what: &str, check: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + STEP;
        while !check(&self.terminal.screen()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what} on profanity's screen\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the screen shows `text`.
    fn wait_for_text(&self, text: &str) {
        self.wait_for_screen(&format!("{text:?}"), |screen| screen.contains(text));
    }

    /// Waits until the bot has reported `event`; returns it.
    fn wait_for_bot(&self, event: &str) -> Value {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(found) = self.bot.all(event).into_iter().next() {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for the bot's {event}\n{}",
                self.report()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn alice_chats_with_bob_in_profanity() {
    let profanity = installed("profanity", &["--version"]);
    let tmux = installed("tmux", &["-V"]);
    eprintln!(
        "{} / {}",
        String::from_utf8_lossy(&profanity.stdout)
            .lines()
            .next()
            .unwrap_or_default(),
        String::from_utf8_lossy(&tmux.stdout).trim()
    );

    let server = scenario::server_with(&[ALICE, BOB]);
    let bot = Bot::start(&server);
    let terminal = Terminal::start(&server.data_dir.join("tls/localhost.crt"));
    let mut stage = Stage { terminal, bot, server };
    stage.wait_for_bot("ready");
    stage.wait_for_text("Welcome to Profanity");

    // Log in: the address and port given, STARTTLS required (profanity's
    // default), the password typed at its prompt.
    let port = stage.server.addr.port().to_string();
    let connect = format!("/connect alice@localhost server 127.0.0.1 port {port} tls force");
    stage.terminal.type_line(&connect);
    stage.wait_for_text("Enter password:");
    stage.terminal.type_line(ALICE.1);
    stage.wait_for_text("logged in successfully");
    stage.wait_for_screen("[TLS] [online] in the title bar", |screen| {
        screen
            .lines()
            .next()
            .is_some_and(|title| title.contains("[TLS] [online]"))
    });

    // alice asks to see bob's presence; his bot approves and asks back,
    // and she approves that.
    stage.terminal.type_line("/sub request bob@localhost");
    stage.wait_for_text("Sent subscription request to bob@localhost.");
    stage.wait_for_text("Received authorization request from bob@localhost");
    stage.terminal.type_line("/sub allow bob@localhost");
    stage.wait_for_text("Accepted subscription for bob@localhost");

    // Her roster: bob, online, in the panel and with both subscriptions.
    stage.wait_for_screen("bob online in the roster panel", |screen| {
        online_in_roster_panel(screen, "bob@localhost")
    });
    stage.terminal.type_line("/roster");
    stage.wait_for_text("bob@localhost - both");

    // A message, and bob's answer in the chat window.
    stage.terminal.type_line("/msg bob@localhost hello from profanity");
    stage.wait_for_text("me: hello from profanity");
    stage.wait_for_text("echo: hello from profanity");
    stage.wait_for_screen("the chat window with bob", |screen| {
        screen
            .lines()
            .next()
            .is_some_and(|title| title.contains("bob@localhost"))
    });
    let received = stage.wait_for_bot("message");
    assert!(
        received["from"]
            .as_str()
            .is_some_and(|from| from.starts_with("alice@localhost/")),
        "{}",
        stage.report()
    );
    assert_eq!(received["body"], "hello from profanity", "{}", stage.report());
    assert_eq!(received["type"], "chat", "{}", stage.report());

    // alice quits: profanity exits, and bob sees her go (the bot then
    // logs out and exits).
    stage.terminal.type_line("/quit");
    let deadline = Instant::now() + STEP;
    while !stage.terminal.exited() {
        assert!(Instant::now() < deadline, "profanity did not quit\n{}", stage.report());
        std::thread::sleep(Duration::from_millis(100));
    }
    let deadline = Instant::now() + STEP;
    let status = loop {
        if let Some(status) = stage.bot.exited() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "bob did not see alice go offline\n{}",
            stage.report()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "the bot failed: {status}\n{}", stage.report());
    assert!(stage.server.crashes().is_empty(), "{}", stage.report());
}
