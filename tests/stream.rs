//! Framing and echo: what a well-behaved peer sees, over real TCP against
//! the real binary serving the echo (and faulty) example handlers.

mod common;

use common::{Client, STREAM_HEADER, Server};

/// The stream header echo answers ours with (we say `to='example.com'`).
const REPLY_HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
     xmlns:stream='http://etherx.jabber.org/streams' from='example.com' version='1.0'>";

/// The namespace declarations a stanza inherits from `STREAM_HEADER`, as the
/// host inserts them after the stanza's name.
const INHERITED: &str = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'";

const END: &str = "</stream:stream>";

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

#[test]
fn the_stream_header_is_answered() {
    let server = Server::start("echo", &[]);
    let mut client = server.connect();
    open(&mut client);
}

#[test]
fn a_stanza_is_echoed_with_from_and_to_swapped_and_its_inherited_namespace() {
    let server = Server::start("echo", &[]);
    let mut client = server.connect();
    open(&mut client);
    let (sent, echoed) = message(1, "alice@example.com/phone", "bob@example.com");
    client.send(&sent);
    client.expect(&echoed);

    // Only one of the two: renamed to the other. Neither: unchanged.
    client.send("<presence to='room@example.com'/>");
    client.expect(&format!("<presence {INHERITED} from='room@example.com'/>"));
    client.send("<iq type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
    client.expect(&format!(
        "<iq {INHERITED} type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
}

#[test]
fn state_is_carried_from_event_to_event() {
    let server = Server::start("echo", &[]);
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
}

#[test]
fn several_stanzas_in_one_write_are_answered_in_order() {
    let server = Server::start("echo", &[]);
    let mut client = server.connect();
    open(&mut client);
    let (sent, echoed): (Vec<_>, Vec<_>) = (1..=20).map(|id| message(id, "a@x", "b@x")).unzip();
    client.send(&format!("{}<count/>", sent.concat()));
    client.expect(&format!("{}<count n='21'/>", echoed.concat()));
}

#[test]
fn whitespace_keepalives_between_stanzas_are_fine() {
    let server = Server::start("echo", &[]);
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

#[test]
fn the_stream_end_is_answered_then_the_server_closes() {
    let server = Server::start("echo", &[]);
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

#[test]
fn a_stream_trickled_one_byte_per_write_gets_the_same_replies_as_written_whole() {
    let server = Server::start("echo", &[]);
    let whole = transcript(&server, |client, stream| client.send(stream));
    let trickled = transcript(&server, |client, stream| client.trickle(stream));
    assert!(whole.starts_with(REPLY_HEADER), "{whole}");
    assert!(whole.contains("<count n='4'/>"), "{whole}");
    assert!(whole.ends_with(END), "{whole}");
    assert_eq!(trickled, whole);
}

#[test]
fn every_event_runs_in_a_fresh_instance_while_state_carries_on() {
    let server = Server::start("faulty", &[]);
    let mut client = server.connect();
    open(&mut client);
    for count in 1..=5 {
        client.send("<probe/>");
        client.expect(&format!("<probe global='1' count='{count}'/>"));
    }
}
