//! Routes between nodes (`ej serve --cluster nats://…`): three nodes on one
//! PostgreSQL and one NATS server, driven through the faulty handler's
//! probes. A payload reaches an address held on another node with its
//! sender's address, in order; comes back undeliverable when nobody holds
//! the address, when its node is killed, or while NATS is down (routes on
//! one node still work then), and busy when the holder's mailbox stays
//! full; a payload accepted by a connection that then closes goes back to
//! its sender on the other node; `lookup` lists every node's addresses;
//! the chat example's rooms span the nodes; `ej reload --all-nodes`
//! reloads every node and says how each went.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::metrics::{endpoint, scrape, value};
use common::nats::Nats;
use common::postgres::Postgres;
use common::probes::{bind, sync};
use common::routes::{Pace, route_concurrently};
use common::variant::variant;
use common::{Server, ej, wait_until};

const NODES: usize = 3;

/// A PostgreSQL, a NATS server, and `NODES` nodes routing through it.
struct Cluster {
    nodes: Vec<Server>,
    nats: Nats,
    _postgres: Postgres,
}

fn cluster(test: &str, flags: &[&str]) -> Cluster {
    cluster_serving(test, &common::guest("faulty"), flags)
}

/// `cluster`, every node serving the module at `module`.
fn cluster_serving(test: &str, module: &Path, flags: &[&str]) -> Cluster {
    let postgres = Postgres::start(test);
    let nats = Nats::start();
    let mut flags = flags.to_vec();
    flags.extend(["--store", postgres.url.as_str(), "--cluster", nats.url.as_str()]);
    let nodes = (0..NODES).map(|_| Server::start_module(module, &flags)).collect();
    Cluster {
        nodes,
        nats,
        _postgres: postgres,
    }
}

#[test]
fn a_payload_reaches_an_address_on_another_node_with_its_senders_address_in_order() {
    let cluster = cluster("routes", &["--metrics", "127.0.0.1:0"]);
    let [first, second, third] = [0, 1, 2].map(|i| &cluster.nodes[i]);
    let mut alice = first.open();
    bind(&mut alice, "alice");
    let mut bob = second.open();
    bind(&mut bob, "bob");
    let mut carol = third.open();
    bind(&mut carol, "carol");

    let payload = "<message type='chat'><body>hi &amp; bye</body></message>";
    alice.send(&format!("<route to='bob'>{payload}</route>"));
    bob.expect(&format!("<routed from='alice' to='bob'>{payload}</routed>"));
    bob.send("<route to='carol'><a/></route><route to='alice'><b/></route>");
    carol.expect("<routed from='bob' to='carol'><a/></routed>");
    alice.expect("<routed from='bob' to='alice'><b/></routed>");

    // 300 in one burst from one connection arrive in the order sent.
    let burst: String = (0..300)
        .map(|i| format!("<route to='carol'><n i='{i}'/></route>"))
        .collect();
    bob.send(&burst);
    for i in 0..300 {
        carol.expect(&format!("<routed from='bob' to='carol'><n i='{i}'/></routed>"));
    }
    sync(&mut carol);
    let relayed = value(&scrape(endpoint(second)), "ej_routes_relayed_total");
    assert!(relayed >= 302.0, "{relayed}");

    for node in &cluster.nodes {
        assert!(node.crashes().is_empty(), "{:#?}", node.crashes());
    }
}

#[test]
fn a_route_follows_its_address_to_another_node() {
    let cluster = cluster("moved", &[]);
    let mut alice = cluster.nodes[0].open();
    bind(&mut alice, "alice");
    let mut first = cluster.nodes[1].open();
    bind(&mut first, "walker");
    alice.send("<route to='walker'><one/></route>");
    first.expect("<routed from='alice' to='walker'><one/></routed>");
    // The address moves to the third node: alice's node still remembers
    // the second as its holder, hears "not here", and asks again.
    first.send("<unbind address='walker'/>");
    first.expect("<unbound address='walker'/>");
    let mut second = cluster.nodes[2].open();
    wait_until(|| {
        second.send("<bind address='walker'/><ping/>");
        (!second.read_until(common::probes::PONG).contains("bind-refused")).then_some(())
    });
    alice.send("<route to='walker'><two/></route>");
    second.expect("<routed from='alice' to='walker'><two/></routed>");
    sync(&mut alice);
    sync(&mut first);
}

#[test]
fn a_route_to_nobody_or_to_a_killed_node_comes_back_undeliverable_at_once() {
    let mut cluster = cluster("nobody", &[]);
    let mut alice = cluster.nodes[0].open();
    bind(&mut alice, "alice");
    alice.send("<route to='nobody'><x/></route>");
    alice.expect("<undeliverable to='nobody'><x/></undeliverable>");

    let mut dave = cluster.nodes[1].open();
    bind(&mut dave, "dave");
    cluster.nodes[1].signal("KILL");
    assert!(!cluster.nodes[1].wait_for_exit());
    // Its binding stays until the node is found dead (10 s), but nobody
    // subscribes to its subject any more: NATS says so at once.
    let sent = Instant::now();
    alice.send("<route to='dave'><y/></route>");
    alice.expect("<undeliverable to='dave'><y/></undeliverable>");
    assert!(sent.elapsed() < Duration::from_secs(5), "{:?}", sent.elapsed());
}

#[test]
fn a_full_mailbox_on_another_node_waits_then_sends_payloads_back_busy() {
    let flags = ["--mailbox", "4", "--event-timeout", "700ms", "--on-fault", "skip"];
    let spin = |target: &mut common::Client| {
        target.send("<loop/>");
        std::thread::sleep(Duration::from_millis(50));
    };
    let patient = cluster("patient", &[&flags[..], &["--route-wait", "5s"]].concat());
    let senders = [&patient.nodes[1], &patient.nodes[2]];
    let (delivered, busy) = route_concurrently(&patient.nodes[0], &senders, 4, 50, Pace::Burst, spin);
    assert_eq!((delivered, busy), (200, 0));

    let hasty = cluster("hasty", &[&flags[..], &["--route-wait", "100ms"]].concat());
    let senders = [&hasty.nodes[1], &hasty.nodes[2]];
    let (delivered, busy) = route_concurrently(&hasty.nodes[0], &senders, 4, 50, Pace::Burst, spin);
    assert!(delivered >= 4, "{delivered} delivered, {busy} busy");
    assert!(busy > 0, "{delivered} delivered, {busy} busy");

    // A node that holds one waiting route per lane answers the rest busy
    // at once, however patient the route wait (5 s: none were above).
    let cramped = ["--route-wait", "5s", "--cluster-queue", "16"];
    let cramped = cluster("cramped", &[&flags[..], &cramped[..]].concat());
    let senders = [&cramped.nodes[1], &cramped.nodes[2]];
    let (delivered, busy) = route_concurrently(&cramped.nodes[0], &senders, 4, 50, Pace::Burst, spin);
    assert!(delivered >= 4, "{delivered} delivered, {busy} busy");
    assert!(busy > 0, "{delivered} delivered, {busy} busy");
}

#[test]
fn a_payload_accepted_by_a_connection_that_then_closes_goes_back_to_its_sender() {
    let flags = ["--event-timeout", "700ms", "--metrics", "127.0.0.1:0"];
    let cluster = cluster("bounce", &flags);
    let mut alice = cluster.nodes[0].open();
    bind(&mut alice, "alice");
    let mut bob = cluster.nodes[1].open();
    bind(&mut bob, "bob");
    // Bob spins until his event's deadline, and his connection is closed
    // for the fault, with the payload waiting in his mailbox.
    bob.send("<loop/>");
    let running = || value(&scrape(endpoint(&cluster.nodes[1])), "ej_instances_in_use");
    wait_until(|| (running() >= 1.0).then_some(()));
    alice.send("<route to='bob'><late/></route>");
    alice.expect("<undeliverable to='bob'><late/></undeliverable>");
}

#[test]
fn while_nats_is_down_routes_to_other_nodes_come_back_and_local_ones_arrive() {
    let mut cluster = cluster("nats-down", &[]);
    let mut alice = cluster.nodes[0].open();
    bind(&mut alice, "alice");
    let mut bob = cluster.nodes[1].open();
    bind(&mut bob, "bob");
    let mut erin = cluster.nodes[0].open();
    bind(&mut erin, "erin");
    alice.send("<route to='bob'><before/></route>");
    bob.expect("<routed from='alice' to='bob'><before/></routed>");
    // Its answer is on its way back to alice's node: lost with NATS, it
    // would come back busy (delivered or not, nobody can tell then), which
    // is not what this test is about.
    std::thread::sleep(Duration::from_millis(300));

    cluster.nats.stop();
    let disconnected = || cluster.nodes[0].status().contains("nats disconnected").then_some(());
    wait_until(disconnected);
    alice.send("<route to='bob'><during/></route>");
    alice.expect("<undeliverable to='bob'><during/></undeliverable>");
    alice.send("<route to='erin'><local/></route>");
    erin.expect("<routed from='alice' to='erin'><local/></routed>");

    cluster.nats.resume();
    wait_until(|| {
        alice.send("<route to='bob'><after/></route><ping/>");
        let text = alice.read_until(common::probes::PONG);
        (!text.contains("<undeliverable")).then_some(())
    });
    bob.expect("<routed from='alice' to='bob'><after/></routed>");
    assert!(cluster.nodes[1].status().contains("nats connected"));
}

#[test]
fn lookup_lists_the_addresses_of_every_node() {
    let cluster = cluster("lookup", &[]);
    let mut clients: Vec<_> = cluster.nodes.iter().map(Server::open).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        bind(client, &format!("frank/{i}"));
    }
    bind(&mut clients[0], "grace/0");
    clients[2].send("<lookup prefix='frank/'/>");
    clients[2].expect("<found><a>frank/0</a><a>frank/1</a><a>frank/2</a></found>");
}

#[test]
fn a_chat_room_with_a_member_on_each_node_hears_everyone_in_order() {
    const N: usize = 20;
    let cluster = cluster_serving("chat", &common::guest("chat"), &[]);
    cluster.nodes[0].store(&["put", "room:lobby", "{}"]);
    let presence = |nick: &str| format!("<presence room='lobby' nick='{nick}'/>");
    let nicks = ["alice", "bob", "carol"];
    let mut members: Vec<common::Client> = Vec::new();
    for (node, nick) in cluster.nodes.iter().zip(nicks) {
        let mut member = node.open();
        member.read_until("</stream:features>");
        member.send(&format!("<join room='lobby' nick='{nick}'/>"));
        member.expect(&format!("<joined room='lobby' nick='{nick}'/>"));
        for (earlier, seen) in members.iter_mut().zip(nicks) {
            // The newcomer hears of each member (in the room's order), and
            // each member, on another node, of the newcomer.
            member.expect(&presence(seen));
            earlier.expect(&presence(nick));
        }
        members.push(member);
    }
    common::chat::everyone_talks_at_once(&mut members, &nicks, N);
}

#[test]
fn a_node_that_cannot_reach_nats_or_parse_its_url_does_not_start() {
    let postgres = Postgres::start("no-nats");
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let nats = format!("nats://{free}");
    let flags = ["--store", &postgres.url, "--cluster", &nats, "--cluster-timeout", "1s"];
    let stderr = common::refused_start(&flags);
    assert!(stderr.contains("connecting to NATS at nats://"), "{stderr}");
    let flags = ["--store", &postgres.url, "--cluster", "nats://[not-a-host"];
    let stderr = common::refused_start(&flags);
    assert!(stderr.contains("connecting to NATS at nats://[not-a-host"), "{stderr}");

    let out = ej()
        .args(["serve", "--cluster", "nats://127.0.0.1:4222"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--store"), "--cluster needs --store: {stderr}");
}

#[test]
fn reload_with_all_nodes_swaps_every_node_and_names_one_that_does_not_answer() {
    let scratch = common::Scratch::new("reload-all-nodes");
    let module = scratch.path("handler.wasm");
    let original = std::fs::read(common::guest("faulty")).unwrap();
    std::fs::write(&module, &original).unwrap();
    let mut cluster = cluster_serving("reload-all", &module, &[]);
    std::fs::write(&module, variant(&original, "next")).unwrap();
    let reload = |node: &Server| {
        ej().args(["reload", "--all-nodes", "--admin"])
            .arg(&node.admin)
            .output()
            .unwrap()
    };
    let out = reload(&cluster.nodes[1]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    let swapped: Vec<&str> = text.lines().filter(|line| line.contains(" swapped ")).collect();
    assert_eq!(swapped.len(), NODES, "{text}");
    assert_eq!(
        swapped.iter().filter(|line| line.starts_with("ok node ")).count(),
        NODES - 1,
        "{text}"
    );
    let digest = swapped[0].rsplit(' ').next().unwrap();
    for node in &cluster.nodes {
        let status = node.status();
        assert!(status.contains(digest), "every node serves the new build: {status}");
    }

    // A node gone without leaving is named, and the reload fails.
    cluster.nodes[2].signal("KILL");
    assert!(!cluster.nodes[2].wait_for_exit());
    let out = reload(&cluster.nodes[0]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!out.status.success(), "{text}");
    assert_eq!(
        text.lines().filter(|line| line.starts_with("error node ")).count(),
        1,
        "{text}"
    );
    assert!(text.lines().any(|line| line.starts_with("ok node ")), "{text}");
}
