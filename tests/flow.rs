//! Flow control and the ends of connections: read throttling, peers that do
//! not read, peers that leave at awkward moments, graceful shutdown, and one
//! connection's handler never holding up another's.

mod common;

use std::time::{Duration, Instant};

use common::{Client, Server};

/// Longest a prompt reply may take while other connections misbehave.
const PROMPT: Duration = Duration::from_secs(1);

/// `<m>` stanzas of about `size` bytes each, about `total` bytes in all,
/// followed by `<done/>`; faulty and echo answer `<done/>` with `<done .../>`.
fn filler(total: usize, size: usize) -> String {
    let mut text = String::new();
    let mut n = 0;
    while text.len() < total {
        let head = format!("<m n='{n}'>");
        text.push_str(&head);
        text.push_str(&"x".repeat(size.saturating_sub(head.len() + 4)));
        text.push_str("</m>");
        n += 1;
    }
    text.push_str("<done/>");
    text
}

/// Sends `text`, then waits for the answer to its final `<done/>`; returns
/// how long that took.
fn time_round_trip(client: &mut Client, text: &str) -> Duration {
    let started = Instant::now();
    client.send(text);
    let replies = client
        .try_read_until("<done ", Duration::from_secs(20))
        .expect("every stanza answered");
    let elapsed = started.elapsed();
    assert_eq!(replies.matches("</m>").count(), text.matches("</m>").count());
    elapsed
}

/// Sends a ping and checks that its echo comes back promptly.
fn ping_promptly(client: &mut Client, n: usize) {
    let started = Instant::now();
    client.send(&format!("<ping n='{n}'/>"));
    client.read_until(&format!("<ping xmlns='jabber:client' n='{n}'/>"));
    let elapsed = started.elapsed();
    assert!(elapsed < PROMPT, "ping {n} took {elapsed:?}");
}

#[test]
fn the_read_rate_flag_bounds_how_fast_a_peer_is_read() {
    let server = Server::start("echo", &["--read-rate", "4KiB"]);
    let mut client = server.connect();
    client.open();
    // A bucket of at most one second's worth (4 KiB) and 4 KiB more each
    // second: 16 KiB cannot all be read in less than 3 s.
    let elapsed = time_round_trip(&mut client, &filler(16 * 1024, 100));
    assert!(
        elapsed >= Duration::from_millis(2500),
        "16 KiB read at 4 KiB/s in {elapsed:?}"
    );
}

#[test]
fn a_handler_can_throttle_its_peer_below_the_flag() {
    let server = Server::start("faulty", &[]);
    let mut client = server.connect();
    client.open();
    client.send("<throttle rate='4096'/>");
    client.expect("<throttled/>");
    // The new rate applies from the very next read (the reader was already
    // waiting for it with the old rate's allowance): a full bucket of 4 KiB,
    // then 4 KiB a second, so 16 KiB take 3 s. At the flag's 1 MiB/s, or
    // with one more read at the old rate, they would take milliseconds.
    let elapsed = time_round_trip(&mut client, &filler(16 * 1024, 500));
    assert!(
        elapsed >= Duration::from_millis(2500),
        "16 KiB read at 4 KiB/s in {elapsed:?}"
    );
}

#[test]
fn a_peer_that_does_not_read_is_cut_off_while_others_are_served() {
    let server = Server::start("faulty", &["--max-outbound-bytes", "64KiB", "--linger", "200ms"]);
    let mut sluggard = server.connect();
    sluggard.open();
    let id = server.connection_id(&sluggard);
    let mut other = server.connect();
    other.open();

    // Each request asks for 60 KB the sluggard never reads: once the socket
    // buffers are full, the writer stalls and the 64 KiB outbox overflows.
    let mut closed = None;
    for n in 0..2000 {
        sluggard.try_send(b"<big n='60000'/>", Duration::from_millis(100));
        ping_promptly(&mut other, n);
        closed = server.find_log("connection closed", |fields| fields["id"] == id);
        if closed.is_some() {
            break;
        }
    }
    let closed = closed.expect("the sluggard is cut off");
    assert_eq!(closed["reason"], "stream-error");
    for n in 0..5 {
        ping_promptly(&mut other, n);
    }
}

#[test]
fn a_peer_that_leaves_while_its_handler_runs_is_let_go_at_the_deadline() {
    let server = Server::start("faulty", &["--event-timeout", "1s", "--on-fault", "skip"]);
    let mut client = server.connect();
    client.open();
    let id = server.connection_id(&client);
    // Both stanzas arrive together: once the probe is answered, the loop runs.
    client.send("<probe/><loop/>");
    client.expect("<probe global='1' count='1'/>");
    let left = Instant::now();
    client.reset();
    let closed = server.wait_for_close(id);
    let elapsed = left.elapsed();
    assert_eq!(closed["reason"], "disconnected");
    assert!(
        elapsed < Duration::from_secs(3),
        "closed {elapsed:?} after the peer left"
    );
    assert_eq!(server.wait_for_crashes(1)[0]["kind"], "timeout");
}

#[test]
fn a_peer_that_leaves_while_throttled_is_let_go_promptly() {
    let server = Server::start("echo", &["--read-rate", "1KiB"]);
    let mut client = server.connect();
    client.open();
    let id = server.connection_id(&client);
    // 200 KiB would take over three minutes to read at 1 KiB/s; write what
    // the socket buffers take.
    let bulk = filler(200 * 1024, 1000);
    let written = client.try_send(bulk.as_bytes(), Duration::from_millis(300));
    assert!(written > 4096, "only {written} bytes written");
    let left = Instant::now();
    client.reset();
    let closed = server.wait_for_close(id);
    let elapsed = left.elapsed();
    assert_eq!(closed["reason"], "disconnected");
    assert!(
        elapsed < Duration::from_secs(2),
        "closed {elapsed:?} after the peer left"
    );
}

#[test]
fn a_spinning_handler_does_not_hold_up_other_connections() {
    let server = Server::start("faulty", &["--event-timeout", "3s", "--on-fault", "skip"]);
    let mut spinner = server.connect();
    spinner.open();
    spinner.send("<probe/><loop/>");
    spinner.expect("<probe global='1' count='1'/>");

    let mut other = server.connect();
    other.open();
    for n in 0..5 {
        ping_promptly(&mut other, n);
    }
    assert!(server.crashes().is_empty(), "the loop was still running meanwhile");

    // After its deadline the spinner is back, its state as before the loop.
    assert_eq!(server.wait_for_crashes(1)[0]["kind"], "timeout");
    spinner.send("<probe/>");
    spinner.expect("<probe global='1' count='2'/>");
}

#[test]
fn two_spinning_handlers_on_two_cores_do_not_hold_up_a_third_connection() {
    let server = Server::start("faulty", &["--event-timeout", "3s", "--on-fault", "skip"]);
    let spinners: Vec<Client> = (0..2)
        .map(|_| {
            let mut spinner = server.connect();
            spinner.open();
            spinner.send("<probe/><loop/>");
            spinner.expect("<probe global='1' count='1'/>");
            spinner
        })
        .collect();

    let mut other = server.connect();
    other.open();
    for n in 0..5 {
        ping_promptly(&mut other, n);
    }
    assert!(server.crashes().is_empty(), "the loops were still running meanwhile");
    assert_eq!(server.wait_for_crashes(2).len(), 2);
    drop(spinners);
}

#[test]
fn shutdown_closes_every_stream_then_exits_cleanly() {
    let mut server = Server::start("echo", &[]);
    let mut clients: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    let mut ids = Vec::new();
    for client in &mut clients {
        client.open();
        client.send("<count/>");
        client.expect("<count n='1'/>");
        ids.push(server.connection_id(client));
    }
    server.signal("TERM");
    for client in &mut clients {
        let rest = client.read_to_end();
        assert!(rest.contains("<stream:error><system-shutdown "), "{rest:?}");
        assert!(rest.ends_with("</stream:stream>"), "{rest:?}");
    }
    for id in ids {
        assert_eq!(server.wait_for_close(id)["reason"], "shutdown");
    }
    assert!(server.wait_for_exit(), "ej exited with a failure");
}

#[test]
fn a_peer_that_half_closes_gets_every_reply_and_its_stream_end() {
    // Many pipelined stanzas and the end of the stream, then the client
    // shuts down its sending side (as `nc -N` and `cat file | nc` do) and
    // reads: it gets every echo, then the server's end of stream.
    const STANZAS: usize = 5_000;
    let server = Server::start("echo", &["--read-rate", "256KiB"]);
    let mut client = server.open();
    let id = server.connection_id(&client);
    let stanzas: String = (0..STANZAS).map(|n| format!("<m n='{n}'/>")).collect();
    let writer = client.clone_stream();
    let sending = std::thread::spawn(move || {
        let mut writer = writer;
        std::io::Write::write_all(&mut writer, stanzas.as_bytes()).unwrap();
        std::io::Write::write_all(&mut writer, b"</stream:stream>").unwrap();
        writer.shutdown(std::net::Shutdown::Write).unwrap();
    });
    let rest = client.read_to_end();
    sending.join().unwrap();
    assert_eq!(rest.matches("<m ").count(), STANZAS, "every stanza echoed");
    assert!(
        rest.ends_with("</stream:stream>"),
        "{:?}",
        &rest[rest.len().saturating_sub(200)..]
    );
    assert_eq!(server.wait_for_close(id)["reason"], "stream-end");
}

#[test]
fn a_peer_that_resets_has_its_unhandled_input_dropped() {
    // A reset with spinning stanzas queued behind the one running: only the
    // running one is charged; the rest are dropped, not run one by one.
    let server = Server::start("faulty", &["--on-fault", "skip"]);
    let mut client = server.open();
    let id = server.connection_id(&client);
    client.send(&"<loop/>".repeat(30));
    std::thread::sleep(Duration::from_millis(50));
    client.reset();
    let closed = server.wait_for_close(id);
    assert_eq!(closed["reason"], "disconnected");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        server.crashes().len() <= 2,
        "{} spinning events ran after the reset",
        server.crashes().len()
    );
}

#[test]
fn a_close_with_unread_input_still_delivers_what_was_written() {
    // The handler sends a large reply and closes while the peer keeps
    // sending: the reply still arrives whole, then the end of the stream.
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    client.send("<big n='500000'/><close/>");
    let writer = client.clone_stream();
    let flooding = std::thread::spawn(move || {
        let mut writer = writer;
        let junk = "<m/>".repeat(1000);
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && std::io::Write::write_all(&mut writer, junk.as_bytes()).is_ok() {}
    });
    let rest = client.read_to_end();
    flooding.join().unwrap();
    assert!(rest.contains("</big>"), "got {} bytes", rest.len());
    assert!(
        rest.ends_with("</stream:stream>"),
        "{:?}",
        &rest[rest.len().saturating_sub(100)..]
    );
}
