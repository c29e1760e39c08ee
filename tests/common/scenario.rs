//! Scenario scripts: a real client library, driven by a script in its own
//! language against a server started here, reporting what happened as one
//! JSON object per line on stdout, and its log (the XML it exchanged) on
//! stderr. A test runs a script, then asserts on its [`Outcome`].

use std::io::Read as _;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::Server;

/// The XMPP handler, served with `accounts` (name, password) created.
pub fn server_with(accounts: &[(&str, &str)]) -> Server {
    let server = Server::start("xmpp", &[]);
    for (name, password) in accounts {
        server.command(&["user", "add", name, password]);
    }
    server
}

/// `--NAME JID PASSWORD` for a scenario.
pub fn account<'a>(option: &'a str, jid: &'a str, password: &'a str) -> [&'a str; 3] {
    [option, jid, password]
}

/// `relative`, under the target directory's `tools/`, where `cargo xtask
/// test` installs the client libraries; fails the test if it is missing.
pub fn tool(relative: &str, what: &str) -> PathBuf {
    let path = super::target_dir().join("tools").join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask test` to install {what} (it does so before testing)",
        path.display()
    );
    path
}

/// What a scenario script printed, and how it ended.
pub struct Outcome {
    /// The script's name, and the library it drives.
    pub script: String,
    pub library: String,
    /// None if it was killed for overrunning its time.
    pub status: Option<ExitStatus>,
    /// Each line of its stdout: the JSON object, or the line as a string.
    pub events: Vec<Value>,
    pub stderr: String,
    pub server_log: Vec<String>,
}

/// Runs `command` (a scenario script named `script`, driving `library`,
/// against `server`), killing it if it runs longer than `limit`.
pub fn run(server: &Server, library: &str, script: &str, command: &mut Command, limit: Duration) -> Outcome {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("starting the scenario script {script}: {error}"));
    let read_all = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = read_all(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = read_all(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("waiting for the script") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = stdout.join().expect("reading the script's stdout");
    let events = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| Value::String(line.to_owned())))
        .collect();
    Outcome {
        script: script.to_owned(),
        library: library.to_owned(),
        status,
        events,
        stderr: stderr.join().expect("reading the script's stderr"),
        server_log: server_log(server),
    }
}

/// What the server logged of its connections so far: how each ended,
/// and the handler's faults (with the crash reports' details).
pub fn server_log(server: &Server) -> Vec<String> {
    let mut lines = server.text_log();
    for message in [
        "connection opened",
        "TLS started",
        "TLS failed",
        "connection closed",
        "handler fault",
    ] {
        lines.extend(server.logs_of(message).iter().map(Value::to_string));
    }
    lines.extend(server.crashes().iter().map(Value::to_string));
    lines
}

/// The lines of a client's log worth showing when a test fails: the XML
/// it exchanged, its warnings and errors.
pub fn xml_lines(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| {
            ["SEND:", "RECV:", " ERROR ", " WARNING ", "Traceback", "Error"]
                .iter()
                .any(|mark| line.contains(mark))
        })
        .collect()
}

impl Outcome {
    /// Everything there is to know when an assertion fails: the events,
    /// the XML the library exchanged, its warnings and errors, the
    /// server's log.
    pub fn report(&self) -> String {
        let events: Vec<String> = self.events.iter().map(Value::to_string).collect();
        let xml = xml_lines(&self.stderr);
        format!(
            "{} exited with {:?}\n--- events:\n{}\n--- {}'s XML and errors:\n{}\n--- server log:\n{}",
            self.script,
            self.status,
            events.join("\n"),
            self.library,
            xml.join("\n"),
            self.server_log.join("\n"),
        )
    }

    /// Fails the test unless the script completed its scenario.
    pub fn succeeded(self) -> Self {
        assert!(
            self.status.is_some_and(|status| status.success()),
            "the scenario did not complete\n{}",
            self.report()
        );
        self
    }

    /// The events named `event`.
    pub fn all(&self, event: &str) -> Vec<&Value> {
        self.events.iter().filter(|value| value["event"] == event).collect()
    }

    /// The events named `event` that `client` reported.
    pub fn of(&self, client: &str, event: &str) -> Vec<&Value> {
        let all = self.all(event).into_iter();
        all.filter(|value| value["client"] == client).collect()
    }

    /// The bodies of the messages `client` received, in order.
    pub fn bodies(&self, client: &str) -> Vec<&str> {
        let messages = self.of(client, "message").into_iter();
        messages
            .map(|message| message["body"].as_str().unwrap_or_default())
            .collect()
    }

    /// The roster the server last returned to `client` (JID → item).
    pub fn last_roster(&self, client: &str) -> &Value {
        let rosters = self.of(client, "roster");
        let roster = rosters
            .last()
            .unwrap_or_else(|| panic!("no roster for {client}\n{}", self.report()));
        &roster["items"]
    }

    /// Whether `client` received a presence from `from` of type `kind`.
    pub fn saw_presence(&self, client: &str, from: &str, kind: &str) -> bool {
        let presences = self.of(client, "presence");
        presences
            .iter()
            .any(|presence| presence["from"] == from && presence["type"] == kind)
    }

    /// Where the first event named `event` that `client` reported with
    /// `field` = `value` is among all events.
    pub fn position(&self, client: &str, event: &str, field: &str, value: &str) -> usize {
        self.events
            .iter()
            .position(|each| each["client"] == client && each["event"] == event && each[field] == value)
            .unwrap_or_else(|| panic!("no {event} with {field} {value} for {client}\n{}", self.report()))
    }

    /// What `client` reported as `event` before the scenario reported
    /// `done` (after it, clients log out, and rooms tell of each leaving in
    /// the order the server happens to take their ends).
    pub fn before_done(&self, client: &str, event: &str) -> Vec<&Value> {
        let done = self.events.iter().position(|value| value["event"] == "done");
        let done = done.unwrap_or_else(|| panic!("the scenario did not report done\n{}", self.report()));
        let events = self.events[..done].iter();
        events
            .filter(|value| value["client"] == client && value["event"] == event)
            .collect()
    }

    /// The one event named `event` that `client` reported before `done`.
    pub fn only_before_done(&self, client: &str, event: &str) -> &Value {
        match self.before_done(client, event)[..] {
            [value] => value,
            _ => panic!("expected one {event} for {client} before done\n{}", self.report()),
        }
    }

    /// The one event named `event` that `client` reported.
    pub fn one(&self, client: &str, event: &str) -> &Value {
        match self.of(client, event)[..] {
            [value] => value,
            _ => panic!("expected one {event} for {client}\n{}", self.report()),
        }
    }

    /// Checks the chat of alice and bob, each sending the other a chat
    /// message to the bare JID ("to alice's bare JID") and one to the full
    /// JID (the one its `session_start` reports: `laptop` and `phone` with
    /// RFC 6120 binding, or those tags and a server-made part with Bind2):
    /// whatever JID it was sent to, a message arrives from the sender's
    /// full JID, addressed as it was sent.
    pub fn check_alice_and_bob_chatted(&self) {
        let received = |client: &str| -> Vec<(String, String, String)> {
            let mut messages: Vec<_> = self
                .of(client, "message")
                .iter()
                .map(|message| {
                    assert_eq!(message["type"], "chat", "{}", self.report());
                    let field = |name: &str| message[name].as_str().unwrap_or_default().to_owned();
                    (field("from"), field("to"), field("body"))
                })
                .collect();
            messages.sort();
            messages
        };
        let full = |client: &str| {
            self.one(client, "session_start")["jid"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        let owned = |from: &str, to: &str, body: &str| (from.to_owned(), to.to_owned(), body.to_owned());
        for (me, peer) in [("alice", "bob"), ("bob", "alice")] {
            assert_eq!(
                received(me),
                [
                    owned(&full(peer), &format!("{me}@localhost"), &format!("to {me}'s bare JID")),
                    owned(&full(peer), &full(me), &format!("to {me}'s full JID")),
                ],
                "{}",
                self.report()
            );
        }
    }
}
