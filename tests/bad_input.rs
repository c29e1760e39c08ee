//! Input the host refuses before any handler sees it: each gets the right
//! stream error, then the connection is closed, and the server goes on
//! serving everyone else.

mod common;

use common::{Client, STREAM_HEADER, Server};

const MAX_STANZA_BYTES: usize = 1024;

fn serve() -> Server {
    Server::start("echo", &["--max-stanza-bytes", "1KiB"])
}

/// Reads what is left of `client`'s connection: a `<condition/>` stream
/// error, the end of the stream, then the close. Checks that the connection
/// closed for a stream error and that a new connection is still served.
/// Returns everything that arrived.
fn assert_stream_error(server: &Server, mut client: Client, condition: &str) -> String {
    let id = server.connection_id(&client);
    let rest = client.read_to_end();
    let error = format!("<stream:error><{condition} xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>");
    assert!(rest.contains(&error), "expected {error} in {rest:?}");
    assert!(rest.ends_with("</stream:error></stream:stream>"), "{rest:?}");
    assert_eq!(server.wait_for_close(id)["reason"], "stream-error");

    let mut other = server.connect();
    other.open();
    other.send("<count/>");
    other.expect("<count n='1'/>");
    rest
}

/// A client whose stream is open.
fn opened(server: &Server) -> Client {
    let mut client = server.connect();
    client.open();
    client
}

#[test]
fn a_mismatched_end_tag_is_not_well_formed() {
    let server = serve();
    let mut client = opened(&server);
    client.send("<message to='a@x'><body>hi</message></body>");
    assert_stream_error(&server, client, "not-well-formed");
}

#[test]
fn a_bad_attribute_is_not_well_formed() {
    let server = serve();
    for bad in ["<message to=a@x/>", "<message to='a' to='b'/>", "<message a='1'b='2'/>"] {
        let mut client = opened(&server);
        client.send("<count/>");
        client.expect("<count n='1'/>");
        client.send(bad);
        assert_stream_error(&server, client, "not-well-formed");
    }
}

/// The first `len` bytes of a stanza longer than that.
fn oversized_prefix(len: usize) -> String {
    let prefix = "<message to='a@x'><body>";
    format!("{prefix}{}", "x".repeat(len - prefix.len()))
}

/// What a stanza inherits from the stream header, and the guest receives
/// with it: it counts against the limit too.
const INHERITED: &str = " xmlns='jabber:client'";

#[test]
fn a_stanza_of_exactly_the_limit_with_what_it_inherits_is_accepted() {
    let server = serve();
    let mut client = opened(&server);
    let body_end = "</body></message>";
    let stanza = format!(
        "{}{body_end}",
        oversized_prefix(MAX_STANZA_BYTES - INHERITED.len() - body_end.len())
    );
    assert_eq!(stanza.len() + INHERITED.len(), MAX_STANZA_BYTES);
    client.send(&stanza);
    client.read_until("</message>");
    client.send("<count/>");
    client.expect("<count n='2'/>");
    // One byte more is one too many.
    let mut client = opened(&server);
    client.send(&format!(
        "{}{body_end}",
        oversized_prefix(MAX_STANZA_BYTES - INHERITED.len() - body_end.len() + 1)
    ));
    assert_stream_error(&server, client, "policy-violation");
}

#[test]
fn a_stanza_over_the_limit_is_a_policy_violation() {
    let server = serve();
    let mut client = opened(&server);
    client.send(&format!("{}</body></message>", oversized_prefix(2 * MAX_STANZA_BYTES)));
    assert_stream_error(&server, client, "policy-violation");
}

#[test]
fn a_stanza_sent_a_byte_now_and_then_times_out_while_a_slow_one_in_time_is_served() {
    let server = Server::start("echo", &["--stanza-timeout", "1s"]);
    let mut client = opened(&server);
    for piece in ["<message><bo", "dy>slow but", " in time</body></message>"] {
        client.send(piece);
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    client.read_until("in time</body></message>");
    let started = std::time::Instant::now();
    client.send("<message>");
    for _ in 0..5 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        client.send("x");
    }
    let error = assert_stream_error(&server, client, "connection-timeout");
    assert!(error.contains("a stanza took longer than 1s"), "{error}");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
}

#[test]
fn a_stanza_nested_deeper_than_the_limit_is_a_policy_violation() {
    let server = serve();
    let mut client = opened(&server);
    // Sixty-four levels are fine; the sixty-fifth start tag ends the stream
    // without waiting for the rest.
    let within = format!("{}<b/>{}", "<a>".repeat(63), "</a>".repeat(63));
    client.send(&within);
    client.read_until("<b/>");
    client.send(&"<a>".repeat(65));
    let error = assert_stream_error(&server, client, "policy-violation");
    assert!(error.contains("nested deeper than 64"), "{error}");
}

#[test]
fn a_stanza_over_the_limit_sent_one_byte_at_a_time_is_a_policy_violation() {
    let server = serve();
    let mut client = opened(&server);
    // One byte past the limit is enough: the host must not wait for the end
    // of a stanza it will never accept.
    client.trickle(&oversized_prefix(MAX_STANZA_BYTES + 1));
    assert_stream_error(&server, client, "policy-violation");
}

#[test]
fn a_doctype_is_restricted_xml() {
    let server = serve();

    let mut client = server.connect();
    client.send("<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'>]>");
    let rest = assert_stream_error(&server, client, "restricted-xml");
    // Nothing was sent yet: the host opens a stream to carry the error.
    assert!(rest.starts_with("<?xml version='1.0'?><stream:stream "), "{rest:?}");

    let mut client = opened(&server);
    client.send("<!DOCTYPE message>");
    let rest = assert_stream_error(&server, client, "restricted-xml");
    assert!(!rest.contains("<stream:stream"), "one stream header only: {rest:?}");
}

#[test]
fn garbage_before_the_header_is_refused() {
    let server = serve();
    for garbage in [
        "hello",
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "</stream:stream>",
    ] {
        let mut client = server.connect();
        client.send(garbage);
        let rest = assert_stream_error(&server, client, "not-well-formed");
        assert!(rest.starts_with("<?xml version='1.0'?><stream:stream "), "{rest:?}");
    }
    let mut client = server.connect();
    client.send(&format!("hello{STREAM_HEADER}"));
    assert_stream_error(&server, client, "not-well-formed");
}

#[test]
fn a_stream_in_another_encoding_is_refused_as_unsupported() {
    let server = serve();
    let mut client = server.connect();
    client.send("<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream to='example.com'>");
    assert_stream_error(&server, client, "unsupported-encoding");
}

#[test]
fn control_characters_and_bad_namespace_declarations_are_not_well_formed() {
    let server = serve();
    for bad in [
        "<message>\u{1b}[31m</message>",
        "<message xmlns:p=''/>",
        "<message>]]></message>",
    ] {
        let mut client = opened(&server);
        client.send(bad);
        assert_stream_error(&server, client, "not-well-formed");
    }
}

#[test]
fn a_peer_that_never_sends_its_stream_header_is_closed() {
    let server = Server::start("echo", &["--header-timeout", "300ms"]);
    let silent = server.connect();
    let mut prompt = server.open();
    assert_stream_error(&server, silent, "connection-timeout");
    // One that opened its stream in time is not affected.
    prompt.send("<ping/>");
    prompt.expect("<ping xmlns='jabber:client'/>");
}
