//! The echo handler in each language ej's examples come in (Rust, C,
//! JavaScript, Python): one suite of behaviour tests, run against every one
//! of them. `suite!` makes one test per (language, case), named
//! `LANGUAGE::CASE`, so `cargo test --test languages python::` runs one
//! language and `cargo test --test languages state_is_carried` one case.
//!
//! The Rust echo is built by cargo; the others by `cargo xtask guests` (which
//! `cargo xtask test` runs first) into `target/guests/`.

mod common;

use std::path::PathBuf;

use common::{Client, STREAM_HEADER, Scratch, Server, built_guest, check_digest, guest};

use ej::bindings::{CloseReason, Connection, Event};
use ej::fault::FaultKind;
use ej::limits::SandboxLimits;
use ej::module::Module;
use ej::sandbox::Sandbox;

/// The stream header echo answers ours with (we say `to='example.com'`).
const REPLY_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' from='example.com' version='1.0'>";

/// The namespace declarations a stanza inherits from `STREAM_HEADER`, as the
/// host inserts them after the stanza's name.
const INHERITED: &str = "xmlns='jabber:client'";

const END: &str = "</stream:stream>";

/// Flags for the handlers that carry an interpreter. They fit the default
/// limits (they need 16 MiB of memory, and take a few milliseconds an event
/// where the default timeout is 100 ms), but on a machine busy with other
/// tests their events get more time than that.
const INTERPRETED: &[&str] = &["--event-timeout", "1s"];

/// One language's echo: its module and the flags to serve it with.
struct Echo {
    module: PathBuf,
    flags: &'static [&'static str],
}

fn rust() -> Echo {
    Echo {
        module: guest("echo"),
        flags: &[],
    }
}

fn c() -> Echo {
    Echo {
        module: built_guest("echo-c"),
        flags: &[],
    }
}

fn javascript() -> Echo {
    Echo {
        module: built_guest("echo-js"),
        flags: INTERPRETED,
    }
}

fn python() -> Echo {
    Echo {
        module: built_guest("echo-py"),
        flags: INTERPRETED,
    }
}

impl Echo {
    fn serve(&self, extra: &[&str]) -> Server {
        let flags: Vec<&str> = self.flags.iter().chain(extra).copied().collect();
        Server::start_module(&self.module, &flags)
    }
}

/// `suite! { languages: [a, b], cases: [x, y] }` makes the tests `a::x`,
/// `a::y`, `b::x` and `b::y`, each calling the case with the language's echo.
macro_rules! suite {
    (languages: [$($language:ident),* $(,)?], cases: $cases:tt) => {
        $( suite!(@language $language $cases); )*
    };
    (@language $language:ident [$($case:ident),* $(,)?]) => {
        mod $language {
            $(
                #[test]
                fn $case() {
                    super::$case(&super::$language());
                }
            )*
        }
    };
}

suite! {
    languages: [rust, c, javascript, python],
    cases: [
        the_stream_header_is_answered_for_its_domain,
        stanzas_are_echoed_with_from_and_to_swapped_and_every_other_byte_kept,
        state_is_carried_from_event_to_event,
        module_answers_with_the_digest_of_the_build,
        several_stanzas_in_one_write_are_answered_in_order,
        whitespace_keepalives_between_stanzas_are_fine,
        a_stream_trickled_one_byte_per_write_gets_the_same_replies_as_written_whole,
        the_stream_end_is_answered_then_the_server_closes,
        a_fault_closes_its_own_connection_only,
        input_its_parser_refuses_is_a_handler_error,
        the_state_is_the_rust_echos_json,
    ]
}

/// Opens the stream and checks the whole reply header.
fn open(client: &mut Client) {
    client.send(STREAM_HEADER);
    client.expect(REPLY_HEADER);
}

/// A message from `from` to `to`, and echo's reply to it.
fn message(id: u32, from: &str, to: &str) -> (String, String) {
    let body = format!("<body>hello {id} &amp; &lt;bye&gt;</body></message>");
    (
        format!("<message from='{from}' to='{to}' id='m{id}' type='chat'>{body}"),
        format!("<message {INHERITED} to='{from}' from='{to}' id='m{id}' type='chat'>{body}"),
    )
}

fn the_stream_header_is_answered_for_its_domain(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);

    // The domain is read with its references resolved, and escaped again.
    for (to, from) in [(" to=\"a&amp;b&#x27;c\"", "from='a&amp;b&apos;c'"), ("", "from=''")] {
        let mut client = server.connect();
        client.send(&format!(
            "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'{to} version='1.0'>"
        ));
        client.expect(&format!(
            "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
             xmlns:stream='http://etherx.jabber.org/streams' {from} version='1.0'>"
        ));
    }
}

fn stanzas_are_echoed_with_from_and_to_swapped_and_every_other_byte_kept(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    let (sent, echoed) = message(1, "alice@example.com/phone", "bob@example.com");
    client.send(&sent);
    client.expect(&echoed);

    for (sent, echoed) in [
        // Only one of the two: renamed to the other. Neither: unchanged.
        (
            "<presence to='room@example.com'/>".to_owned(),
            format!("<presence {INHERITED} from='room@example.com'/>"),
        ),
        (
            "<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>".to_owned(),
            format!("<iq {INHERITED} type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"),
        ),
        // Quotes, spacing and references stay; children are not touched.
        (
            "<message to = \"b@x\"\n  from='a&amp;b@x'><body from='c'>x</body></message>".to_owned(),
            format!("<message {INHERITED} from = \"b@x\"\n  to='a&amp;b@x'><body from='c'>x</body></message>"),
        ),
        // Attributes that only start like `from` or `to` are not renamed; a
        // stanza with its own namespace keeps it.
        (
            "<r:x xmlns:r='urn:r' fromage='1' tox='2' to='3'/>".to_owned(),
            format!("<r:x {INHERITED} xmlns:r='urn:r' fromage='1' tox='2' from='3'/>"),
        ),
        (
            "<message xmlns='jabber:server' from='a' to='b'/>".to_owned(),
            "<message xmlns='jabber:server' to='a' from='b'/>".to_owned(),
        ),
        // Text outside ASCII passes through.
        (
            "<message to='ж@x'><body>héllo ✓</body></message>".to_owned(),
            format!("<message {INHERITED} from='ж@x'><body>héllo ✓</body></message>"),
        ),
    ] {
        client.send(&sent);
        client.expect(&echoed);
    }
}

fn state_is_carried_from_event_to_event(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    for n in 1..=3 {
        client.send("<count/>");
        client.expect(&format!("<count n='{n}'/>"));
    }
    client.send("<presence/>");
    client.expect(&format!("<presence {INHERITED}/>"));
    client.send("<count/>");
    client.expect("<count n='5'/>");

    // Another connection has its own state.
    let mut other = server.connect();
    open(&mut other);
    other.send("<count/>");
    other.expect("<count n='1'/>");
    client.send("<count/>");
    client.expect("<count n='6'/>");
}

fn module_answers_with_the_digest_of_the_build(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    client.send("<presence/>");
    client.expect(&format!("<presence {INHERITED}/>"));
    client.send("<module/>");
    client.expect(&format!("<module n='2' digest='{}'/>", check_digest(&echo.module)));
}

fn several_stanzas_in_one_write_are_answered_in_order(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    let (sent, echoed): (Vec<_>, Vec<_>) = (1..=20).map(|id| message(id, "a@x", "b@x")).unzip();
    client.send(&format!("{}<count/>", sent.concat()));
    client.expect(&format!("{}<count n='21'/>", echoed.concat()));
}

fn whitespace_keepalives_between_stanzas_are_fine(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    for id in 1..=5 {
        client.send(" ");
        client.send("\n\t \r\n");
        let (sent, echoed) = message(id, "a@x", "b@x");
        client.send(&format!("  {sent}\n "));
        client.expect(&echoed);
    }
    client.send(&" ".repeat(4096));
    client.send("<count/>");
    client.expect("<count n='6'/>");
}

/// A whole session's transcript: every byte the server sent until it closed.
fn transcript(server: &Server, write: impl FnOnce(&mut Client, &str)) -> String {
    let (sent, _): (Vec<_>, Vec<_>) = (1..=3).map(|id| message(id, "alice@x/r", "bob@x")).unzip();
    let stream = format!(
        "{STREAM_HEADER}\n  {}<count/> <message><body>x<!-- a > b --><![CDATA[</message>]]></body></message>\n{END}",
        sent.concat()
    );
    let mut client = server.connect();
    write(&mut client, &stream);
    client.read_to_end()
}

fn a_stream_trickled_one_byte_per_write_gets_the_same_replies_as_written_whole(echo: &Echo) {
    let server = echo.serve(&[]);
    let whole = transcript(&server, |client, stream| client.send(stream));
    let trickled = transcript(&server, |client, stream| client.trickle(stream));
    assert!(whole.starts_with(REPLY_HEADER), "{whole}");
    assert!(whole.contains("<count n='4'/>"), "{whole}");
    assert!(whole.ends_with(END), "{whole}");
    assert_eq!(trickled, whole);
}

fn the_stream_end_is_answered_then_the_server_closes(echo: &Echo) {
    let server = echo.serve(&[]);
    let mut client = server.connect();
    open(&mut client);
    let id = server.connection_id(&client);
    client.send("<count/>");
    client.expect("<count n='1'/>");
    client.send(END);
    // read_to_end returns only once the server has closed the socket.
    assert_eq!(client.read_to_end(), END);
    assert_eq!(server.wait_for_close(id)["reason"], "stream-end");
}

/// A stanza too big to echo under `--max-outcome-bytes` faults its event:
/// that connection gets a stream error and is closed, and a connection in
/// the middle of its own stream goes on as if nothing happened.
fn a_fault_closes_its_own_connection_only(echo: &Echo) {
    let server = echo.serve(&["--max-outcome-bytes", "4KiB"]);
    let mut bystander = server.connect();
    open(&mut bystander);
    bystander.send("<count/>");
    bystander.expect("<count n='1'/>");

    let mut victim = server.connect();
    open(&mut victim);
    let id = server.connection_id(&victim);
    victim.send(&format!(
        "<message to='a@x'><body>{}</body></message>",
        "x".repeat(8 * 1024)
    ));
    let rest = victim.read_to_end();
    assert!(rest.contains("<stream:error><internal-server-error"), "{rest:?}");
    assert_eq!(server.wait_for_close(id)["reason"], "fault");
    let crashes = server.wait_for_crashes(1);
    assert_eq!(crashes[0]["connection"], id, "{crashes:#?}");
    assert_eq!(crashes[0]["kind"], "outcome-too-large", "{crashes:#?}");

    bystander.send("<count/>");
    bystander.expect("<count n='2'/>");
    let mut newcomer = server.connect();
    open(&mut newcomer);
    newcomer.send("<count/>");
    newcomer.expect("<count n='1'/>");
    assert_eq!(server.crashes().len(), 1);
}

/// The host hands handlers well-formed XML only, so the handler's own
/// parsers are driven here directly, through the sandbox: each refuses what
/// is not a start tag with an error (a `handler-error` fault, not a trap),
/// and the module goes on handling good events.
fn input_its_parser_refuses_is_a_handler_error(echo: &Echo) {
    let fx = Direct::new(echo, "garbage");
    let state = fx.ok(b"", Event::StreamOpen(STREAM_HEADER.to_owned()));
    for garbage in [
        "not xml at all",
        "",
        "<a from='1' from='2'/>",
        "<a b/>",
        "<a b='&bogus;'/>",
        "<a b='1",
    ] {
        let fault = fx.fault(&state, Event::Stanza(garbage.to_owned()));
        assert_eq!(fault.kind, FaultKind::HandlerError, "{garbage:?}: {fault:?}");
    }
    let fault = fx.fault(b"{\"stanzas\":", Event::Stanza("<count/>".to_owned()));
    assert_eq!(fault.kind, FaultKind::HandlerError, "{fault:?}");

    let state = fx.ok(&state, Event::Stanza("<count/>".to_owned()));
    assert_eq!(state, br#"{"stanzas":1,"domain":"example.com"}"#);
}

/// Every echo keeps the same JSON state, byte for byte, and takes the
/// state any other left: a connection could move between them.
fn the_state_is_the_rust_echos_json(echo: &Echo) {
    let fx = Direct::new(echo, "state");
    let header = "<stream:stream xmlns='jabber:client' to='x&amp;y&#10;\t&quot;z&lt;\\é&#1;' version='1.0'>";
    let state = fx.ok(b"", Event::StreamOpen(header.to_owned()));
    assert_eq!(
        String::from_utf8(state.clone()).unwrap(),
        r#"{"stanzas":0,"domain":"x&y\n \"z<\\é\u0001"}"#
    );
    let state = fx.ok(&state, Event::Stanza("<a/>".to_owned()));
    // What the others do not send, they keep as it was.
    for event in [
        Event::Timer("t".to_owned()),
        Event::BindRefused("a@x".to_owned()),
        Event::Closed(CloseReason::Disconnected),
    ] {
        let completed = fx.handle(&state, event).expect("a quiet event");
        assert!(completed.outcome.actions.is_empty());
        assert_eq!(completed.outcome.state, state);
    }
    // Fields in another order, white space, an unknown field: still read.
    let other = br#" { "domain" : "d" , "extra" : [1, {"k": null}], "stanzas" : 41 } "#;
    assert_eq!(
        fx.ok(other, Event::Stanza("<a/>".to_owned())),
        br#"{"stanzas":42,"domain":"d"}"#
    );
}

/// A module loaded straight into a sandbox, to hand it events the host
/// would never deliver.
struct Direct {
    runtime: tokio::runtime::Runtime,
    sandbox: Sandbox,
    module: Module,
    env: ej::imports::Env,
    conn: Connection,
    _scratch: Scratch,
}

impl Direct {
    fn new(echo: &Echo, test: &str) -> Self {
        let scratch = Scratch::new(&format!("languages-{test}-{}", echo.module.display()).replace('/', "-"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let limits = SandboxLimits {
            event_timeout: std::time::Duration::from_secs(1),
            ..SandboxLimits::default()
        };
        let sandbox = Sandbox::new(limits)
            .and_then(|sandbox| sandbox.with_compile_cache(&common::compile_cache()))
            .expect("creating a sandbox");
        let module = Module::load(&sandbox, &echo.module).expect("loading the module");
        let env = ej::imports::Env {
            db: std::sync::Arc::new(ej::db::Db::open(&scratch.path("data"), ej::db::CACHE).expect("opening a store")),
            registry: std::sync::Arc::new(ej::registry::Registry::default()),
            holds: std::sync::Arc::default(),
            cluster: None,
            relay: None,
        };
        let conn = Connection {
            id: 1,
            peer: "127.0.0.1:1".into(),
            listener: "127.0.0.1:2".into(),
            module: module.info().clone(),
            tls: None,
        };
        Self {
            runtime,
            sandbox,
            module,
            env,
            conn,
            _scratch: scratch,
        }
    }

    fn handle(&self, state: &[u8], event: Event) -> Result<ej::sandbox::Completed, ej::fault::Fault> {
        self.runtime
            .block_on(self.sandbox.handle(&self.module, &self.conn, state, &event, &self.env))
    }

    /// Handles an event that must fail; returns the fault.
    fn fault(&self, state: &[u8], event: Event) -> ej::fault::Fault {
        let shown = format!("{event:?}");
        match self.handle(state, event) {
            Ok(completed) => panic!(
                "{shown} was accepted, state {:?}",
                String::from_utf8_lossy(&completed.outcome.state)
            ),
            Err(fault) => fault,
        }
    }

    /// Handles an event that must succeed; returns the new state.
    fn ok(&self, state: &[u8], event: Event) -> Vec<u8> {
        let kind = event.kind();
        self.handle(state, event)
            .unwrap_or_else(|fault| panic!("{kind} failed: {fault:?}"))
            .outcome
            .state
    }
}

/// One connection, its handler replaced by the same echo in each other
/// language in turn (a hot swap between two stanzas): the count goes on.
#[test]
fn a_connection_keeps_its_state_when_its_handler_changes_language() {
    let scratch = Scratch::new("languages-swap");
    let languages = [rust(), c(), javascript(), python(), rust()];
    let path = scratch.path("handler.wasm");
    std::fs::copy(&languages[0].module, &path).unwrap();
    let server = Server::start_module(&path, INTERPRETED);
    let mut client = server.connect();
    open(&mut client);
    client.send("<count/>");
    client.expect("<count n='1'/>");
    for (n, echo) in (2..).zip(&languages[1..]) {
        common::replace(&path, &std::fs::read(&echo.module).unwrap());
        let out = server.reload();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        client.send("<module/>");
        client.expect(&format!("<module n='{n}' digest='{}'/>", check_digest(&echo.module)));
    }
}
