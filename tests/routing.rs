//! Connections that talk to each other, driven through the faulty example
//! handler's probes: addresses, routing in order under concurrent senders,
//! full mailboxes (routes wait for room, never in a circle, and come back
//! busy when it does not come), undeliverable payloads, addresses released
//! however a connection ends, lookup by prefix, and timers.

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::metrics::{endpoint, scrape, value};
use common::probes::{bind, number, sync};
use common::routes::{Pace, route_concurrently};
use common::{Client, PATIENCE, Server};

fn lookup(client: &mut Client, prefix: &str) -> String {
    client.send(&format!("<lookup prefix='{prefix}'/>"));
    client.read_until("</found>")
}

/// `<found>` listing `addresses`.
fn found(addresses: &[&str]) -> String {
    let listed: String = addresses.iter().map(|a| format!("<a>{a}</a>")).collect();
    format!("<found>{listed}</found>")
}

#[test]
fn a_routed_payload_reaches_the_holder_with_the_senders_address() {
    let server = Server::start("faulty", &[]);
    let mut alice = server.open();
    let mut bob = server.open();
    bind(&mut alice, "alice");
    bind(&mut bob, "bob");

    let payload = "<message id='m1' type='chat'><body>hi &amp; &lt;bye&gt;</body><x xmlns='urn:x'/></message>";
    alice.send(&format!("<route to='bob'>{payload}</route>"));
    bob.expect(&format!("<routed from='alice' to='bob'>{payload}</routed>"));
    // The routed event ran with bob's state: his two stanzas so far (the
    // bind and the ping), and the routed event counted.
    bob.send("<stats/>");
    bob.expect("<stats count='3' routed='1' fired='0'/>");
    sync(&mut alice);

    // `from` is the sender's first address that it still holds, or empty.
    bind(&mut alice, "alice-too");
    alice.send("<route to='bob'><a/></route>");
    bob.expect("<routed from='alice' to='bob'><a/></routed>");
    alice.send("<unbind address='alice'/>");
    alice.expect("<unbound address='alice'/>");
    alice.send("<route to='bob'><b/></route>");
    bob.expect("<routed from='alice-too' to='bob'><b/></routed>");
    let mut nobody = server.open();
    nobody.send("<route to='bob'><c/></route>");
    bob.expect("<routed from='' to='bob'><c/></routed>");

    // Routing to oneself works like routing to anyone.
    bob.send("<route to='bob'>self</route>");
    bob.expect("<routed from='bob' to='bob'>self</routed>");
    sync(&mut bob);
    sync(&mut alice);
    sync(&mut nobody);
    assert!(server.crashes().is_empty());
}

#[test]
fn routing_to_an_address_nobody_holds_comes_back_undeliverable() {
    let server = Server::start("faulty", &[]);
    let mut alice = server.open();
    bind(&mut alice, "alice");
    alice.send("<route to='nobody'><message id='1'>where are you?</message></route>");
    alice.expect("<undeliverable to='nobody'><message id='1'>where are you?</message></undeliverable>");
    // An address that was held once and let go is nobody's again.
    let mut bob = server.open();
    bind(&mut bob, "bob");
    bob.send("<unbind address='bob'/>");
    bob.expect("<unbound address='bob'/>");
    alice.send("<route to='bob'><late/></route>");
    alice.expect("<undeliverable to='bob'><late/></undeliverable>");
    sync(&mut bob);
    sync(&mut alice);
}

#[test]
fn binding_an_address_another_connection_holds_is_refused() {
    let server = Server::start("faulty", &[]);
    let mut first = server.open();
    let mut second = server.open();
    bind(&mut first, "taken");
    // Binding again what one holds is harmless.
    bind(&mut first, "taken");
    second.send("<bind address='taken'/>");
    second.expect("<binding address='taken'/>");
    second.expect("<bind-refused address='taken'/>");
    sync(&mut second);

    // The address still leads to the first connection, only.
    let mut sender = server.open();
    sender.send("<route to='taken'><hello/></route>");
    first.expect("<routed from='' to='taken'><hello/></routed>");
    sync(&mut second);
    assert_eq!(lookup(&mut sender, "taken"), found(&["taken"]));
}

#[test]
fn lookup_lists_the_addresses_bound_under_a_prefix_in_order() {
    let server = Server::start("faulty", &[]);
    let mut phone = server.open();
    let mut laptop = server.open();
    let mut asker = server.open();
    bind(&mut phone, "user/alice/phone");
    bind(&mut phone, "user/bob/phone");
    bind(&mut laptop, "user/alice/laptop");
    bind(&mut laptop, "user/alicia/laptop");
    assert_eq!(
        lookup(&mut asker, "user/alice/"),
        found(&["user/alice/laptop", "user/alice/phone"])
    );
    assert_eq!(
        lookup(&mut asker, "user/"),
        found(&[
            "user/alice/laptop",
            "user/alice/phone",
            "user/alicia/laptop",
            "user/bob/phone"
        ])
    );
    assert_eq!(lookup(&mut asker, "user/carol/"), found(&[]));
    phone.send("<unbind address='user/alice/phone'/>");
    phone.expect("<unbound address='user/alice/phone'/>");
    assert_eq!(lookup(&mut asker, "user/alice/"), found(&["user/alice/laptop"]));
    laptop.send("</stream:stream>");
    laptop.read_to_end();
    server.wait_for_close(server.connection_id(&laptop));
    assert_eq!(lookup(&mut asker, "user/"), found(&["user/bob/phone"]));
}

/// How each way of ending a connection looks from the test, and the close
/// reason the handler is told.
const ENDINGS: &[(&str, &str)] = &[
    ("stream-end", "stream-end"),
    ("reset", "disconnected"),
    ("malformed", "stream-error"),
    ("handler", "handler"),
    ("fault", "fault"),
];

#[test]
fn addresses_are_released_however_a_connection_ends_after_one_closed_event() {
    let server = Server::start("faulty", &[]);
    let mut watcher = server.open();
    bind(&mut watcher, "watcher");
    for (ending, reason) in ENDINGS {
        let address = format!("victim/{ending}");
        let mut victim = server.open();
        let id = server.connection_id(&victim);
        bind(&mut victim, &address);
        victim.send("<on-close route='watcher'/>");
        victim.expect("<on-close/>");
        assert_eq!(lookup(&mut watcher, "victim/"), found(&[&address]));

        match *ending {
            "stream-end" => victim.send("</stream:stream>"),
            "reset" => {
                // Unread bytes make the close a reset.
                victim.send("<ping/>");
                std::thread::sleep(Duration::from_millis(50));
                victim.reset();
            }
            "malformed" => victim.send("<a></b>"),
            "handler" => victim.send("<close/>"),
            "fault" => victim.send("<panic/>"),
            _ => unreachable!(),
        }
        // The closed event's route goes out while the address is still held.
        watcher.expect(&format!(
            "<routed from='{address}' to='watcher'><closed reason='{reason}'/></routed>"
        ));
        assert_eq!(server.wait_for_close(id)["reason"], *reason, "{ending}");

        assert_eq!(lookup(&mut watcher, "victim/"), found(&[]), "{ending}");
        watcher.send(&format!("<route to='{address}'><anyone/></route>"));
        watcher.expect(&format!("<undeliverable to='{address}'><anyone/></undeliverable>"));
        // Another connection may take the address now.
        let mut heir = server.open();
        bind(&mut heir, &address);
        watcher.send(&format!("<route to='{address}'><you/></route>"));
        heir.expect(&format!("<routed from='watcher' to='{address}'><you/></routed>"));
        heir.send("</stream:stream>");
        heir.read_to_end();
        server.wait_for_close(server.connection_id(&heir));
    }
    // Exactly one closed event each: no second `<closed/>` came.
    sync(&mut watcher);
}

#[test]
fn payloads_from_concurrent_senders_arrive_in_order_none_lost_or_duplicated() {
    let server = Server::start("faulty", &[]);
    // 800 payloads for a mailbox of 256: the senders wait for room.
    let (delivered, busy) = route_concurrently(&server, &[&server], 4, 200, Pace::Burst, |_| {});
    assert_eq!((delivered, busy), (800, 0));
    assert!(server.crashes().is_empty());
}

/// A target that spins in one event (700 ms) while payloads come: its
/// mailbox of 4 fills, and the senders wait for room up to `route_wait`.
fn spinning_target_server(route_wait: &str) -> Server {
    Server::start(
        "faulty",
        &[
            "--mailbox",
            "4",
            "--event-timeout",
            "700ms",
            "--on-fault",
            "skip",
            "--route-wait",
            route_wait,
            "--metrics",
            "127.0.0.1:0",
        ],
    )
}

fn spin(target: &mut Client) {
    target.send("<loop/>");
    std::thread::sleep(Duration::from_millis(50));
}

#[test]
fn a_route_to_a_full_mailbox_waits_for_room_and_loses_nothing() {
    let server = spinning_target_server("5s");
    let (delivered, busy) = route_concurrently(&server, &[&server], 4, 50, Pace::Burst, spin);
    assert_eq!((delivered, busy), (200, 0));
    assert_eq!(server.wait_for_crashes(1)[0]["kind"], "timeout");
    let figures = scrape(endpoint(&server));
    assert!(value(&figures, "ej_route_waits_total") > 0.0, "{figures}");
    assert_eq!(value(&figures, "ej_routes_busy_total"), 0.0, "{figures}");
}

#[test]
fn a_mailbox_that_stays_full_past_the_route_wait_sends_payloads_back_busy() {
    let server = spinning_target_server("100ms");
    for pace in [Pace::RoundTrip, Pace::Burst] {
        let (delivered, busy) = route_concurrently(&server, &[&server], 4, 50, pace, spin);
        assert!(delivered >= 4, "{delivered} delivered, {busy} busy");
        assert!(busy > 0, "{delivered} delivered, {busy} busy");
    }
    assert!(value(&scrape(endpoint(&server)), "ej_routes_busy_total") > 0.0);
}

/// Reads what `client` is sent until `n` routed payloads or busy ones have
/// come; returns the numbers of each, in arrival order.
fn returned(client: &mut Client, n: usize) -> (Vec<usize>, Vec<usize>) {
    let (mut routed, mut busy) = (Vec::new(), Vec::new());
    while routed.len() + busy.len() < n {
        let text = client.read_until("</");
        let text = text + &client.read_until(">");
        let text = text.trim_start_matches(|c| c != '<');
        if text.starts_with("<routed ") {
            routed.push(number(text, "i"));
        } else {
            assert!(text.starts_with("<busy "), "{text:?}");
            busy.push(number(text, "i"));
        }
    }
    (routed, busy)
}

#[test]
fn connections_flooding_each_others_full_mailboxes_deliver_everything_in_order() {
    // Each routes 300 payloads to the other through mailboxes of 4: each
    // waits for room in the other's mailbox while draining its own, so
    // neither waits for the other forever (a minute's route wait would
    // show as a timeout) and nothing comes back.
    const N: usize = 300;
    let server = Server::start("faulty", &["--mailbox", "4", "--route-wait", "60s"]);
    let mut a = server.open();
    let mut b = server.open();
    bind(&mut a, "a");
    bind(&mut b, "b");
    let burst = |to: &str| -> String {
        (0..N)
            .map(|i| format!("<route to='{to}'><n i='{i}'/></route>"))
            .collect()
    };
    a.send(&burst("b"));
    b.send(&burst("a"));
    let other = std::thread::spawn(move || returned(&mut b, N));
    let all: Vec<usize> = (0..N).collect();
    assert_eq!(returned(&mut a, N), (all.clone(), Vec::new()));
    assert_eq!(other.join().unwrap(), (all, Vec::new()));
}

#[test]
fn a_connection_routing_to_its_own_full_mailbox_drains_it_and_gets_everything() {
    let server = Server::start("faulty", &["--mailbox", "4", "--route-wait", "60s"]);
    let mut client = server.open();
    bind(&mut client, "me");
    client.send(
        &(0..50)
            .map(|i| format!("<route to='me'><n i='{i}'/></route>"))
            .collect::<String>(),
    );
    assert_eq!(returned(&mut client, 50), ((0..50).collect(), Vec::new()));
    sync(&mut client);
}

#[test]
fn payloads_waiting_for_a_connection_that_closes_come_back_undeliverable() {
    // The target spins until its deadline, then is closed for the fault,
    // with payloads waiting for it.
    let server = Server::start("faulty", &["--event-timeout", "500ms"]);
    let mut target = server.open();
    let id = server.connection_id(&target);
    bind(&mut target, "target");
    let mut sender = server.open();
    spin(&mut target);
    for i in 0..3 {
        sender.send(&format!("<route to='target'><n i='{i}'/></route>"));
        sync(&mut sender);
    }
    assert_eq!(server.wait_for_close(id)["reason"], "fault");
    for i in 0..3 {
        sender.expect(&format!("<undeliverable to='target'><n i='{i}'/></undeliverable>"));
    }
}

#[test]
fn routed_payloads_and_the_targets_own_stanzas_keep_their_order() {
    const N: usize = 150;
    let server = Server::start("faulty", &[]);
    let mut target = server.open();
    bind(&mut target, "target");
    let mut sender = server.open();
    bind(&mut sender, "sender");
    let start = Arc::new(Barrier::new(2));
    let go = Arc::clone(&start);
    let routing = std::thread::spawn(move || {
        go.wait();
        for i in 0..N {
            sender.send(&format!("<route to='target'><n i='{i}'/></route>"));
        }
        sync(&mut sender);
    });
    start.wait();
    for i in 0..N {
        target.send(&format!("<own i='{i}'/>"));
    }
    routing.join().unwrap();

    let last_own = format!("<own xmlns='jabber:client' i='{}'/>", N - 1);
    let last_routed = format!("<n i='{}'/></routed>", N - 1);
    let mut text = String::new();
    let deadline = Instant::now() + PATIENCE;
    while !(text.contains(&last_own) && text.contains(&last_routed)) {
        assert!(Instant::now() < deadline, "timed out; received {text:?}");
        if let Some(more) = target.try_read_until(">", Duration::from_millis(50)) {
            text.push_str(&more);
        }
    }
    let (mut own, mut routed) = (Vec::new(), Vec::new());
    for piece in text.split('<') {
        if piece.starts_with("own ") {
            own.push(number(piece, "i"));
        } else if piece.starts_with("n ") {
            routed.push(number(piece, "i"));
        }
    }
    assert_eq!(own, (0..N).collect::<Vec<_>>());
    assert_eq!(routed, (0..N).collect::<Vec<_>>());
    // Every event ran on the target's own state, in one sequence.
    target.send("<stats/>");
    target.expect(&format!("<stats count='{}' routed='{N}' fired='0'/>", N + 3));
}

#[test]
fn a_timer_fires_after_its_delay_and_not_before() {
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    for ms in [0u64, 300] {
        let tag = format!("t{ms}");
        let set = Instant::now();
        client.send(&format!("<timer tag='{tag}' ms='{ms}'/>"));
        client.expect(&format!("<timer-set tag='{tag}'/>"));
        client.expect(&format!("<fired tag='{tag}'/>"));
        let took = set.elapsed();
        assert!(took >= Duration::from_millis(ms), "{tag} fired after {took:?}");
        assert!(took < Duration::from_millis(ms + 2000), "{tag} fired after {took:?}");
    }
    client.send("<stats/>");
    client.expect("<stats count='3' routed='0' fired='2'/>");
}

#[test]
fn a_cancelled_timer_never_fires() {
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    client.send("<timer tag='doomed' ms='150'/><timer tag='control' ms='400'/><cancel-timer tag='doomed'/>");
    client.expect("<timer-set tag='doomed'/>");
    client.expect("<timer-set tag='control'/>");
    client.expect("<timer-cancelled tag='doomed'/>");
    // Had `doomed` fired, it would have come first.
    client.expect("<fired tag='control'/>");
    // Cancelling what is not set is harmless.
    client.send("<cancel-timer tag='never-set'/>");
    client.expect("<timer-cancelled tag='never-set'/>");
    sync(&mut client);
}

#[test]
fn setting_a_tag_again_moves_its_timer() {
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    // Later: set for 150 ms, moved to 600 ms.
    let set = Instant::now();
    client.send("<timer tag='later' ms='150'/><timer tag='later' ms='600'/><timer tag='mark' ms='350'/>");
    client.expect("<timer-set tag='later'/>");
    client.expect("<timer-set tag='later'/>");
    client.expect("<timer-set tag='mark'/>");
    client.expect("<fired tag='mark'/>");
    client.expect("<fired tag='later'/>");
    assert!(set.elapsed() >= Duration::from_millis(600), "{:?}", set.elapsed());
    // Sooner: set for 5 s, moved to 100 ms; fires once.
    let set = Instant::now();
    client.send("<timer tag='sooner' ms='5000'/><timer tag='sooner' ms='100'/>");
    client.expect("<timer-set tag='sooner'/>");
    client.expect("<timer-set tag='sooner'/>");
    client.expect("<fired tag='sooner'/>");
    assert!(set.elapsed() < Duration::from_secs(3), "{:?}", set.elapsed());
    sync(&mut client);
    client.send("<stats/>");
    client.expect("<stats count='7' routed='0' fired='3'/>");
}

#[test]
fn timers_die_with_their_connection() {
    let server = Server::start("faulty", &[]);
    let mut watcher = server.open();
    bind(&mut watcher, "watcher");
    // A control connection that stays, with the same timer.
    let mut stays = server.open();
    stays.send("<timer tag='control' ms='400' notify='watcher'/>");
    stays.expect("<timer-set tag='control'/>");
    let mut ids = Vec::new();
    for (ending, tag) in [("stream-end", "graceful"), ("reset", "abrupt")] {
        let mut doomed = server.open();
        ids.push(server.connection_id(&doomed));
        doomed.send(&format!("<timer tag='{tag}' ms='300' notify='watcher'/>"));
        doomed.expect(&format!("<timer-set tag='{tag}'/>"));
        if ending == "reset" {
            doomed.reset();
        } else {
            doomed.send("</stream:stream>");
            doomed.read_to_end();
        }
    }
    for id in ids {
        server.wait_for_close(id);
    }
    // The control timer fires, and nothing from the closed ones came first
    // (their timers were due earlier).
    watcher.expect("<routed from='' to='watcher'><fired tag='control'/></routed>");
    stays.expect("<fired tag='control'/>");
    std::thread::sleep(Duration::from_millis(200));
    sync(&mut watcher);
    assert!(server.find_log("handler fault", |_| true).is_none());
}

#[test]
fn a_handler_that_reroutes_every_bounce_is_stopped_and_its_connection_stays_live() {
    // Each bounce routes the payload again to the same missing address, and
    // each refused bind binds again: endless chains of self-caused events.
    let mut server = Server::start("faulty", &["--max-chain", "20"]);
    let mut client = server.open();
    let mut holder = server.open();
    bind(&mut holder, "taken");
    client.send("<stubborn/>");
    client.expect("<stubborn/>");
    client.send("<route to='nobody'><hello/></route>");
    sync(&mut client);
    client.send("<bind address='taken'/>");
    client.expect("<binding address='taken'/>");
    sync(&mut client);
    let dropped = server.wait_for_log(
        "self-caused events dropped: the chain of events one event caused is too long",
        |_| true,
    );
    assert_eq!(dropped["limit"], 20);
    // Both chains ended at the limit, and the connection answers at once.
    client.send("<stats/>");
    client.expect("<stats count='6' routed='0' fired='0'/>");

    // And shutdown is prompt even with a chain running.
    client.send("<route to='nobody'><again/></route>");
    let started = std::time::Instant::now();
    server.signal("TERM");
    assert!(client.read_to_end().contains("<system-shutdown "));
    assert!(server.wait_for_exit());
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn a_reset_from_a_timer_while_a_stanza_is_half_read_takes_effect_after_it() {
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    client.send("<timer tag='r' ms='100' reset='yes'/>");
    client.expect("<timer-set tag='r'/>");
    client.send("<half><bo");
    client.expect("<fired tag='r'/>");
    // The stanza in progress still belongs to the old stream…
    client.send("dy/></half>");
    client.expect("<half xmlns='jabber:client'><body/></half>");
    // …and the stream restarts after it.
    assert!(client.open().contains("<stream:stream"));
    sync(&mut client);
    assert!(server.crashes().is_empty());
}

#[test]
fn a_timer_past_the_limit_is_refused_and_the_handler_hears_of_it() {
    let server = Server::start("faulty", &["--max-timers", "1"]);
    let mut client = server.open();
    client.send("<timer tag='a' ms='60000'/>");
    client.expect("<timer-set tag='a'/>");
    // Moving a timer that is set is no new timer.
    client.send("<timer tag='a' ms='50000'/>");
    client.expect("<timer-set tag='a'/>");
    client.send("<timer tag='b' ms='10'/>");
    client.expect("<timer-set tag='b'/>");
    client.expect("<timer-refused tag='b'/>");
    sync(&mut client);
}
