//! Every event is a serializable transaction: concurrent read-modify-write
//! events on shared keys lose no update, keep invariants across keys (no
//! write skew), and see no phantoms in the ranges they scan, because an
//! event whose reads went stale is run again. Driven through the faulty
//! example handler's `<increment/>`, `<claim/>` and `<join/>` probes from
//! many connections at once.

mod common;

use std::collections::BTreeMap;

use common::Server;
use common::probes::PONG;
use common::races::{
    check_claims, claim_concurrently, concurrently, increment_concurrently, join_concurrently, sorted,
};

#[test]
fn concurrent_increments_of_one_counter_lose_nothing_and_each_reply_is_sent_once() {
    const CONNECTIONS: usize = 10;
    const STEPS: usize = 200;
    let server = Server::start("faulty", &[]);
    let replies = increment_concurrently(&[&server], CONNECTIONS, STEPS, "<increment key='counter'/>");
    // Each increment saw a value nobody else saw: the values handed out are
    // exactly 1..=N×M, each once, and in order on each connection.
    for mine in &replies {
        assert_eq!(mine.len(), STEPS);
        assert!(mine.windows(2).all(|pair| pair[0] < pair[1]), "{mine:?}");
    }
    assert_eq!(sorted(&replies), (1..=(CONNECTIONS * STEPS) as u64).collect::<Vec<_>>());
    assert_eq!(server.store(&["get", "counter"]), format!("{}\n", CONNECTIONS * STEPS));
    assert!(server.crashes().is_empty(), "{:#?}", server.crashes());
}

#[test]
fn two_keys_under_one_invariant_never_skew() {
    // "At most one of a and b is on": each claim reads the other key and
    // sets its own. Under snapshot isolation alone, two claims racing on
    // the two keys would both see the other off and both succeed.
    const ROUNDS: usize = 20;
    const CONNECTIONS: usize = 8;
    let server = Server::start("faulty", &[]);
    let outcomes = claim_concurrently(&[&server], CONNECTIONS, ROUNDS);
    check_claims(&server, &outcomes, ROUNDS);
}

#[test]
fn a_scanned_range_admits_no_phantoms() {
    // A room of at most 5, one key per member: 30 connections race to join
    // by scanning the room and adding themselves if there is space.
    const MAX: usize = 5;
    const ROOMS: usize = 4;
    let server = Server::start("faulty", &[]);
    let joined = join_concurrently(&[&server], 30, ROOMS, MAX);
    assert_eq!(joined.iter().sum::<usize>(), MAX * ROOMS, "{joined:?}");
    for room in 0..ROOMS {
        let members = server.store(&["list", &format!("room{room}:")]);
        assert_eq!(members.lines().count(), MAX, "room {room}: {members}");
    }
}

#[test]
fn an_event_that_faults_on_its_rerun_leaves_nothing_behind() {
    // Every increment that would reach 100 panics after writing: the
    // counter stops at 99, each value 1..=99 is handed out once, and every
    // later increment faults too (each after losing races and rerunning).
    const CONNECTIONS: usize = 10;
    const STEPS: usize = 20;
    let server = Server::start("faulty", &["--on-fault", "skip"]);
    let increment = "<increment key='capped' fail-at='100'/>";
    let replies = increment_concurrently(&[&server], CONNECTIONS, STEPS, increment);
    assert_eq!(sorted(&replies), (1..=99).collect::<Vec<_>>());
    assert_eq!(server.store(&["get", "capped"]), "99\n");
    let crashes = server.wait_for_crashes(CONNECTIONS * STEPS - 99);
    assert_eq!(crashes.len(), CONNECTIONS * STEPS - 99);
    assert!(crashes.iter().all(|crash| crash["kind"] == "trap"), "{crashes:#?}");
}

#[test]
fn an_event_that_keeps_losing_faults_with_conflict_after_its_retries() {
    // With no retries allowed, racing increments lose some events to
    // conflicts: each such event faults as `conflict` and changes nothing.
    const CONNECTIONS: usize = 8;
    const STEPS: usize = 50;
    let server = Server::start("faulty", &["--on-fault", "skip", "--max-retries", "0"]);
    let replies = increment_concurrently(&[&server], CONNECTIONS, STEPS, "<increment key='contended'/>");
    let all = sorted(&replies);
    let committed = all.len();
    assert_eq!(
        all,
        (1..=committed as u64).collect::<Vec<_>>(),
        "no value twice, none skipped"
    );
    assert_eq!(server.store(&["get", "contended"]), format!("{committed}\n"));
    let lost = CONNECTIONS * STEPS - committed;
    assert!(lost > 0, "eight connections racing on one key never conflicted");
    let crashes = server.wait_for_crashes(lost);
    assert_eq!(crashes.len(), lost);
    for crash in &crashes {
        assert_eq!(crash["kind"], "conflict", "{crash:#}");
        assert!(
            crash["reason"].as_str().unwrap().contains("--max-retries 0"),
            "{crash:#}"
        );
    }
    let kinds: BTreeMap<String, usize> = crashes.iter().fold(BTreeMap::new(), |mut kinds, crash| {
        *kinds.entry(crash["event"].as_str().unwrap().to_owned()).or_default() += 1;
        kinds
    });
    assert_eq!(kinds.keys().collect::<Vec<_>>(), ["stanza"]);
}

#[test]
fn reads_of_one_event_all_see_one_moment() {
    // A writer moves a token between two keys, one event per move; a
    // reader's `<count/>`, which gets the two keys one after the other,
    // must always find exactly one token, never a mix of before and after.
    let server = Server::start("faulty", &[]);
    server.store(&["put", "token:a", "1"]);
    let results = concurrently(&[&server], 2, |i, client| {
        if i == 0 {
            for n in 0..300 {
                let (from, to) = if n % 2 == 0 { ("a", "b") } else { ("b", "a") };
                client.send(&format!("<move from='token:{from}' to='token:{to}'/>"));
            }
            client.send("<ping/>");
            client.read_until(PONG);
            Vec::new()
        } else {
            client.send(&"<count keys='token:a token:b'/>".repeat(300));
            client.send("<ping/>");
            let text = client.read_until(PONG);
            text.split("<count n='")
                .skip(1)
                .map(|count| count[..1].parse::<usize>().unwrap())
                .collect()
        }
    });
    assert_eq!(results[1].len(), 300);
    assert!(results[1].iter().all(|&tokens| tokens == 1), "{:?}", results[1]);
}
