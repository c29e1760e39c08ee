//! Sessions that outlive their sockets (`hold`) and are taken over by new
//! connections (`take-over`), driven through the faulty example handler's
//! probes: a detached session keeps its addresses and runs its events, a
//! new connection carries on with its state, addresses and waiting
//! payloads (once each, in order), the window ends in `closed(expired)`,
//! and the limits: tokens held twice or too long, `--max-held`.

mod common;

use std::time::{Duration, Instant};

use common::probes::{attr, bind, number, sync};
use common::{Client, Server};

/// A connection told of the others' `detached` and `closed` events: they
/// route them here (`<on-close route='watch'/>`).
fn watcher(server: &Server) -> Client {
    let mut watch = server.open();
    bind(&mut watch, "watch");
    watch
}

/// Opens a connection bound at `address` that reports to the watcher and
/// holds its session under `token` for `ms`.
fn holding(server: &Server, address: &str, token: &str, ms: u32) -> Client {
    let mut client = server.open();
    bind(&mut client, address);
    client.send("<on-close route='watch'/>");
    client.expect("<on-close/>");
    client.send(&format!("<hold token='{token}' ms='{ms}'/>"));
    client.expect(&format!("<held token='{token}'/>"));
    sync(&mut client);
    client
}

/// The next payload routed to the watcher.
fn told(watch: &mut Client) -> String {
    watch.read_until("</routed>")
}

/// What a connection holding nothing is told by `<take-over token='T'/>`.
fn take_over(client: &mut Client, token: &str) -> String {
    client.send(&format!("<take-over token='{token}'/>"));
    client.read_until("/>")
}

fn lookup(client: &mut Client, prefix: &str) -> String {
    client.send(&format!("<lookup prefix='{prefix}'/>"));
    client.read_until("</found>")
}

#[test]
fn a_detached_session_runs_its_events_until_a_new_connection_takes_it_over() {
    let server = Server::start("faulty", &[]);
    let mut watch = watcher(&server);
    // Five stanzas: the bind and its sync, on-close, hold and its sync.
    let alice = holding(&server, "alice", "alice-token", 30_000);
    alice.reset();
    let detached = told(&mut watch);
    assert!(detached.contains("<detached count='5' routed='0'/>"), "{detached}");

    // The session still holds its address and handles what is routed to
    // it, without a socket to write to.
    let mut bob = server.open();
    bind(&mut bob, "bob");
    bob.send("<route to='alice'><m n='1'/></route>");
    sync(&mut bob);
    assert_eq!(lookup(&mut bob, "alice"), "<found><a>alice</a></found>");

    // A new connection takes it over: the held state (five stanzas, one
    // routed payload) plus its own (the take-over stanza).
    let mut carol = server.open();
    let took = take_over(&mut carol, "alice-token");
    assert_eq!(took, "<took-over count='6' routed='1' fired='0'/>");
    bob.send("<route to='alice'><m n='2'/></route>");
    carol.expect("<routed from='bob' to='alice'><m n='2'/></routed>");
    carol.send("<stats/>");
    carol.expect("<stats count='7' routed='2' fired='0'/>");

    // The taken session is the one that closes, with its own on-close.
    carol.send("</stream:stream>");
    carol.read_to_end();
    let closed = told(&mut watch);
    assert!(closed.contains("<closed reason='stream-end'/>"), "{closed}");
    assert_eq!(lookup(&mut bob, "alice"), "<found></found>");
    // Nothing else reached the watcher: the old socket's loss was the only
    // detach, and the take-over closed nothing.
    sync(&mut watch);
}

#[test]
fn a_session_nobody_takes_over_expires_and_lets_go_of_its_addresses() {
    let server = Server::start("faulty", &[]);
    let mut watch = watcher(&server);
    let alice = holding(&server, "alice", "t", 300);
    let lost = Instant::now();
    alice.reset();
    assert!(told(&mut watch).contains("<detached "));
    let closed = told(&mut watch);
    assert!(closed.contains("<closed reason='expired'/>"), "{closed}");
    assert!(lost.elapsed() >= Duration::from_millis(300));

    let mut bob = server.open();
    bind(&mut bob, "bob");
    bob.send("<route to='alice'><m/></route>");
    bob.expect("<undeliverable to='alice'><m/></undeliverable>");
    assert_eq!(take_over(&mut bob, "t"), "<took-over/>");
}

#[test]
fn taking_over_a_session_whose_peer_is_still_there_closes_that_socket_without_a_closed_event() {
    let server = Server::start("faulty", &[]);
    let mut watch = watcher(&server);
    let mut alice = holding(&server, "alice", "t", 30_000);
    let mut carol = server.open();
    assert_eq!(
        take_over(&mut carol, "t"),
        "<took-over count='6' routed='0' fired='0'/>"
    );
    assert_eq!(alice.read_to_end(), "");
    // Neither `detached` nor `closed` for the old socket.
    sync(&mut watch);
    let mut bob = server.open();
    bob.send("<route to='alice'><m/></route>");
    carol.expect("<routed from='' to='alice'><m/></routed>");
    drop(bob);
    // The hold moved along: carol's socket going away detaches the session.
    carol.reset();
    assert!(told(&mut watch).contains("<detached count='6' routed='1'/>"));
}

#[test]
fn an_unknown_token_or_ones_own_takes_over_nothing_and_changes_nothing() {
    let server = Server::start("faulty", &[]);
    let mut carol = holding(&server, "carol", "mine", 30_000);
    assert_eq!(take_over(&mut carol, "nobody"), "<took-over/>");
    assert_eq!(take_over(&mut carol, "mine"), "<took-over/>");
    carol.send("<stats/>");
    carol.expect("<stats count='8' routed='0' fired='0'/>");
    assert_eq!(lookup(&mut carol, "carol"), "<found><a>carol</a></found>");
}

#[test]
fn a_zero_window_lets_go_of_the_hold() {
    let server = Server::start("faulty", &[]);
    let mut watch = watcher(&server);
    let mut alice = holding(&server, "alice", "t", 30_000);
    alice.send("<hold token='t' ms='0'/>");
    alice.expect("<held token='t'/>");
    sync(&mut alice);
    alice.reset();
    assert!(told(&mut watch).contains("<closed reason='disconnected'/>"));
    let mut carol = server.open();
    assert_eq!(take_over(&mut carol, "t"), "<took-over/>");
}

#[test]
fn a_token_another_connection_holds_or_an_overlong_one_is_a_fault() {
    let server = Server::start("faulty", &[]);
    let _alice = holding(&server, "alice", "t", 30_000);
    let mut bob = server.open();
    bob.send("<hold token='t' ms='1000'/>");
    let crashes = server.wait_for_crashes(1);
    assert_eq!(crashes[0]["kind"], "bad-action", "{crashes:?}");
    assert!(bob.read_to_end().contains("<internal-server-error"));

    let mut carol = server.open();
    carol.send(&format!("<hold token='{}' ms='1000'/>", "x".repeat(257)));
    let crashes = server.wait_for_crashes(2);
    assert!(
        crashes[1]["reason"].as_str().unwrap().contains("257 bytes"),
        "{crashes:?}"
    );
    assert!(carol.read_to_end().contains("<internal-server-error"));
}

#[test]
fn past_max_held_a_peer_that_goes_away_closes_as_if_nothing_were_held() {
    let server = Server::start("faulty", &["--max-held", "1"]);
    let mut watch = watcher(&server);
    let alice = holding(&server, "alice", "a", 30_000);
    let bob = holding(&server, "bob", "b", 30_000);
    alice.reset();
    assert!(told(&mut watch).contains("<detached "));
    bob.reset();
    let closed = told(&mut watch);
    assert!(closed.contains("<closed reason='disconnected'/>"), "{closed}");
    server.wait_for_log(
        "session not held: as many sessions as allowed are waiting for their peers",
        |_| true,
    );
}

#[test]
fn payloads_routed_while_a_session_is_taken_over_arrive_once_and_in_order() {
    const PAYLOADS: usize = 300;
    let server = Server::start("faulty", &[]);
    let mut alice = holding(&server, "alice", "t", 30_000);
    let mut bob = server.open();
    bind(&mut bob, "bob");
    let routes: String = (0..PAYLOADS)
        .map(|n| format!("<route to='alice'><m n='{n}'/></route>"))
        .collect();
    bob.send(&routes);
    let mut carol = server.open();
    let took = take_over(&mut carol, "t");
    // Those the old socket got, then those the new one gets.
    let before = alice.read_to_end();
    let handled_before = number(&took, "routed");
    let mut seen = numbers(&before);
    assert_eq!(
        seen.len(),
        handled_before,
        "the old socket got all it handled: {before}"
    );
    while seen.len() < PAYLOADS {
        let routed = carol.read_until("</routed>");
        seen.push(number(&routed, "n"));
    }
    assert_eq!(
        seen,
        (0..PAYLOADS).collect::<Vec<_>>(),
        "took over after {handled_before}"
    );
    sync(&mut bob);
    assert_eq!(attr(&took, "count"), "6");
}

/// The `n` of every `<m n='N'/>` in `text`, in order.
fn numbers(text: &str) -> Vec<usize> {
    text.split("<m n='")
        .skip(1)
        .map(|rest| rest[..rest.find('\'').unwrap()].parse().unwrap())
        .collect()
}
