//! The chat example, driven by several real TCP clients: rooms seeded with
//! `ej store`, joins, nick clashes, fan-out in order, history replay,
//! leaving, and a client that vanishes mid-conversation.

mod common;

use std::sync::{Arc, Barrier};

use common::{Client, Server};

/// What chat answers to a request it does not know: a round trip that
/// proves everything sent before it has arrived, and nothing else.
const UNKNOWN_PING: &str = "<error type='feature-not-implemented'>unknown request &lt;ping&gt;</error>";

/// A chat server with the rooms `lobby` and `dev`, created by the operator.
fn serve() -> Server {
    let server = Server::start("chat", &[]);
    server.store(&["put", "room:lobby", "{}"]);
    server.store(&["put", "room:dev", "{\"topic\":\"ej\"}"]);
    server
}

/// A client whose stream is open, past the features the chat offers on a
/// plain connection (STARTTLS, which tests/tls.rs takes up).
fn open(server: &Server) -> Client {
    let mut client = server.open();
    client.expect("<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:features>");
    client
}

fn sync(client: &mut Client) {
    client.send("<ping/>");
    client.expect(UNKNOWN_PING);
}

/// Joins `room` as `nick`, reading the `<joined/>` reply only.
fn join(client: &mut Client, room: &str, nick: &str) {
    client.send(&format!("<join room='{room}' nick='{nick}'/>"));
    client.expect(&format!("<joined room='{room}' nick='{nick}'/>"));
}

fn say(client: &mut Client, room: &str, text: &str) {
    client.send(&format!("<message room='{room}'><body>{text}</body></message>"));
}

/// A message as members receive it.
fn heard(room: &str, from: &str, text: &str) -> String {
    format!("<message room='{room}' from='{from}'><body>{text}</body></message>")
}

fn presence(room: &str, nick: &str) -> String {
    format!("<presence room='{room}' nick='{nick}'/>")
}

fn gone(room: &str, nick: &str) -> String {
    format!("<presence room='{room}' nick='{nick}' type='unavailable'/>")
}

fn error(room: &str, condition: &str, text: &str) -> String {
    format!("<error room='{room}' type='{condition}'>{text}</error>")
}

/// Three members of the lobby, who have seen each other arrive.
fn three_in_the_lobby(server: &Server) -> [Client; 3] {
    let [mut alice, mut bob, mut carol] = [open(server), open(server), open(server)];
    join(&mut alice, "lobby", "alice");
    join(&mut bob, "lobby", "bob");
    bob.expect(&presence("lobby", "alice"));
    alice.expect(&presence("lobby", "bob"));
    join(&mut carol, "lobby", "carol");
    carol.expect(&presence("lobby", "alice"));
    carol.expect(&presence("lobby", "bob"));
    alice.expect(&presence("lobby", "carol"));
    bob.expect(&presence("lobby", "carol"));
    [alice, bob, carol]
}

#[test]
fn messages_fan_out_to_every_member_in_order() {
    const N: usize = 30;
    let server = serve();
    let mut members = three_in_the_lobby(&server);
    let mut elsewhere = open(&server);
    join(&mut elsewhere, "dev", "dave");

    common::chat::everyone_talks_at_once(&mut members, &["alice", "bob", "carol"], N);
    for member in &mut members {
        sync(member);
    }
    // Nothing reached the other room.
    sync(&mut elsewhere);
    assert!(server.crashes().is_empty());
}

#[test]
fn the_last_20_messages_are_replayed_on_join_and_kept_across_a_restart() {
    let server = serve();
    let mut alice = open(&server);
    join(&mut alice, "lobby", "alice");
    for i in 0..25 {
        say(&mut alice, "lobby", &format!("m{i}"));
        alice.expect(&heard("lobby", "alice", &format!("m{i}")));
    }
    let history = |from: &str, text: &str| {
        format!("<message room='lobby' from='{from}' history='true'><body>{text}</body></message>")
    };

    let mut bob = open(&server);
    join(&mut bob, "lobby", "bob");
    bob.expect(&presence("lobby", "alice"));
    for i in 5..25 {
        bob.expect(&history("alice", &format!("m{i}")));
    }
    sync(&mut bob);
    alice.expect(&presence("lobby", "bob"));
    say(&mut bob, "lobby", "late &amp; last");
    for member in [&mut alice, &mut bob] {
        member.expect(&heard("lobby", "bob", "late &amp; last"));
    }
    // The history is trimmed in the store, in the event that appended to it.
    let stored = server.store(&["list", "history/lobby/"]);
    assert_eq!(stored.lines().count(), 20, "{stored}");
    assert!(stored.lines().next().unwrap().contains("m6"), "{stored}");

    let server = server.restart("TERM");
    let mut carol = open(&server);
    join(&mut carol, "lobby", "carol");
    for i in 6..25 {
        carol.expect(&history("alice", &format!("m{i}")));
    }
    carol.expect(&history("bob", "late &amp; last"));
    sync(&mut carol);
    // A room without messages has no history.
    join(&mut carol, "dev", "carol");
    sync(&mut carol);
}

#[test]
fn a_nick_taken_in_a_room_is_refused() {
    let server = serve();
    let mut alice = open(&server);
    let mut bob = open(&server);
    join(&mut alice, "lobby", "al");
    bob.send("<join room='lobby' nick='al'/>");
    bob.expect(&error("lobby", "conflict", "the nick al is taken in lobby"));
    // The same nick in another room is fine, and so is another nick here.
    join(&mut bob, "dev", "al");
    join(&mut bob, "lobby", "bob");
    bob.expect(&presence("lobby", "al"));
    alice.expect(&presence("lobby", "bob"));
    sync(&mut alice);
    sync(&mut bob);
}

#[test]
fn of_clients_racing_for_one_nick_exactly_one_gets_it() {
    const RACERS: usize = 6;
    let server = serve();
    let start = Arc::new(Barrier::new(RACERS));
    let conflict = error("lobby", "conflict", "the nick racer is taken in lobby");
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let mut client = open(&server);
            let (start, conflict) = (Arc::clone(&start), conflict.clone());
            std::thread::spawn(move || {
                start.wait();
                client.send("<join room='lobby' nick='racer'/>");
                let first = client.read_until(">");
                let won = if first == "<joined room='lobby' nick='racer'/>" {
                    // Lost the race to bind after all? Then the refusal
                    // comes before anything sent after the reply.
                    client.send("<ping/>");
                    let after = client.read_until(UNKNOWN_PING);
                    match after.strip_suffix(UNKNOWN_PING) {
                        Some("") => true,
                        Some(refused) if refused == conflict => false,
                        _ => panic!("after joining: {after:?}"),
                    }
                } else {
                    let error = format!("{first}{}", client.read_until("</error>"));
                    assert_eq!(error, conflict);
                    false
                };
                // Only a member may talk.
                say(&mut client, "lobby", "mine");
                if won {
                    client.expect(&heard("lobby", "racer", "mine"));
                } else {
                    client.expect(&error("lobby", "not-acceptable", "you are not in lobby: join it first"));
                }
                (won, client)
            })
        })
        .collect();
    let mut finishers = Vec::new();
    for racer in racers {
        finishers.push(racer.join().unwrap());
    }
    let winners = finishers.iter().filter(|(won, _)| *won).count();
    assert_eq!(winners, 1);
    // A newcomer sees one racer, and the one message.
    let mut newcomer = open(&server);
    join(&mut newcomer, "lobby", "newcomer");
    newcomer.expect(&presence("lobby", "racer"));
    newcomer.expect("<message room='lobby' from='racer' history='true'><body>mine</body></message>");
    sync(&mut newcomer);
    for (won, client) in &mut finishers {
        if *won {
            client.expect(&presence("lobby", "newcomer"));
        }
        sync(client);
    }
    assert!(server.crashes().is_empty());
}

#[test]
fn unknown_rooms_and_bad_requests_get_clear_errors() {
    let server = serve();
    let mut client = open(&server);
    let requests = [
        (
            "<join room='nowhere' nick='x'/>",
            error("nowhere", "item-not-found", "there is no room nowhere"),
        ),
        (
            "<join nick='x'/>",
            "<error type='bad-request'>&lt;join&gt; needs a room attribute</error>".to_owned(),
        ),
        (
            "<join room='lobby'/>",
            error("lobby", "bad-request", "&lt;join&gt; needs a nick attribute"),
        ),
        (
            "<join room='lobby' nick='a/b'/>",
            error(
                "lobby",
                "bad-request",
                "a nick is 1 to 64 characters, without &apos;/&apos;",
            ),
        ),
        (
            "<message room='lobby'><body>hi</body></message>",
            error("lobby", "not-acceptable", "you are not in lobby: join it first"),
        ),
        (
            "<leave room='lobby'/>",
            error("lobby", "not-acceptable", "you are not in lobby"),
        ),
    ];
    for (request, reply) in &requests {
        client.send(request);
        client.expect(reply);
    }
    join(&mut client, "lobby", "me");
    let requests = [
        (
            "<join room='lobby' nick='again'/>".to_owned(),
            error("lobby", "not-allowed", "you are already in lobby as me"),
        ),
        (
            "<message room='lobby'/>".to_owned(),
            error("lobby", "bad-request", "a message needs a &lt;body&gt;"),
        ),
        (
            "<message room='lobby'><body>a <b>bold</b> move</body></message>".to_owned(),
            error("lobby", "bad-request", "a body is text, without markup"),
        ),
        (
            "<message room='lobby'><body> </body></message>".to_owned(),
            error("lobby", "bad-request", "a message needs a &lt;body&gt; with text"),
        ),
        (
            format!("<message room='lobby'><body>{}</body></message>", "x".repeat(5000)),
            error("lobby", "policy-violation", "a body is at most 4096 bytes"),
        ),
        (
            "<message><body>x</body></message>".to_owned(),
            "<error type='bad-request'>&lt;message&gt; needs a room attribute</error>".to_owned(),
        ),
        (
            "<rooms/>".to_owned(),
            "<rooms><room name='dev'/><room name='lobby'/></rooms>".to_owned(),
        ),
    ];
    for (request, reply) in &requests {
        client.send(request);
        client.expect(reply);
    }
    // References in a body arrive resolved, and escaped again.
    say(&mut client, "lobby", "fish &amp; chips &lt;3 &#x263A; &quot;yum&quot;");
    client.expect(&heard("lobby", "me", "fish &amp; chips &lt;3 \u{263A} &quot;yum&quot;"));
    sync(&mut client);
    assert!(server.crashes().is_empty());
}

#[test]
fn leaving_and_closing_the_stream_tell_the_others() {
    let server = serve();
    let mut alice = open(&server);
    let mut bob = open(&server);
    join(&mut alice, "lobby", "alice");
    join(&mut bob, "lobby", "bob");
    bob.expect(&presence("lobby", "alice"));
    alice.expect(&presence("lobby", "bob"));

    bob.send("<leave room='lobby'/>");
    bob.expect("<left room='lobby' nick='bob'/>");
    alice.expect(&gone("lobby", "bob"));
    say(&mut bob, "lobby", "hello?");
    bob.expect(&error("lobby", "not-acceptable", "you are not in lobby: join it first"));
    say(&mut alice, "lobby", "alone");
    alice.expect(&heard("lobby", "alice", "alone"));
    sync(&mut bob);

    // The nick is free again.
    join(&mut bob, "lobby", "bob");
    bob.expect(&presence("lobby", "alice"));
    bob.expect("<message room='lobby' from='alice' history='true'><body>alone</body></message>");
    alice.expect(&presence("lobby", "bob"));

    alice.send("</stream:stream>");
    assert!(alice.read_to_end().ends_with("</stream:stream>"));
    bob.expect(&gone("lobby", "alice"));
    say(&mut bob, "lobby", "bye");
    bob.expect(&heard("lobby", "bob", "bye"));
    sync(&mut bob);
}

#[test]
fn a_client_that_vanishes_mid_conversation_leaves_and_the_others_go_on() {
    let server = serve();
    let [mut alice, mut bob, mut carol] = three_in_the_lobby(&server);
    let carol_id = server.connection_id(&carol);
    say(&mut alice, "lobby", "hi all");
    for member in [&mut alice, &mut bob, &mut carol] {
        member.expect(&heard("lobby", "alice", "hi all"));
    }
    // Carol says something and is gone at once, her socket reset, while bob
    // is talking too.
    say(&mut carol, "lobby", "gotta go");
    say(&mut bob, "lobby", "what?");
    carol.reset();

    // Each of the others hears bob, and that carol is gone; and carol's
    // last words if the server read them before the reset, but then before
    // she is gone (her session routed them first).
    let (left, what, last_words) = (
        gone("lobby", "carol"),
        heard("lobby", "bob", "what?"),
        heard("lobby", "carol", "gotta go"),
    );
    for member in [&mut alice, &mut bob] {
        let mut text = String::new();
        while !(text.contains(&left) && text.contains(&what)) {
            text.push_str(&member.read_until(">"));
        }
        if let Some(at) = text.find(&last_words) {
            assert!(at < text.find(&left).unwrap(), "{text:?}");
        }
        let rest = text
            .replacen(&left, "", 1)
            .replacen(&what, "", 1)
            .replacen(&last_words, "", 1);
        assert_eq!(rest, "", "{text:?}");
        sync(member);
    }
    assert_eq!(server.wait_for_close(carol_id)["reason"], "disconnected");

    say(&mut alice, "lobby", "still here?");
    say(&mut bob, "lobby", "yes");
    for member in [&mut alice, &mut bob] {
        let mut got = vec![member.read_until("</message>"), member.read_until("</message>")];
        got.sort();
        assert_eq!(
            got,
            [heard("lobby", "alice", "still here?"), heard("lobby", "bob", "yes")]
        );
    }

    // Carol's nick is free, and her replacement sees only who is there.
    let mut carol = open(&server);
    join(&mut carol, "lobby", "carol");
    carol.expect(&presence("lobby", "alice"));
    carol.expect(&presence("lobby", "bob"));
    let mut history = String::new();
    while !(history.contains("<body>yes</body>") && history.contains("<body>still here?</body>")) {
        history.push_str(&carol.read_until("</message>"));
    }
    sync(&mut carol);
    alice.expect(&presence("lobby", "carol"));
    bob.expect(&presence("lobby", "carol"));
    assert!(server.crashes().is_empty());
}
