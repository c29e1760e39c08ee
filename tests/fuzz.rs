//! Bounded fuzzing on stable Rust, with every test run: streams mutated
//! towards XML's edges (see `common::fuzz`) must frame the same whether
//! the bytes arrive whole or in random pieces, and never panic; random
//! lists of actions from a guest (the faulty handler's `<chaos/>`), on
//! connections that then leave politely or not, must leave the host
//! serving, with no panic. A failure prints its seed; `EJ_FUZZ_SEED=N`
//! replays it, and
//! `EJ_FUZZ_CASES=1000000 cargo test --release -p ej --test fuzz` runs
//! longer. (`fuzz/` has the same property as a cargo-fuzz target, for
//! coverage-guided runs on nightly.)

mod common;

use std::time::Duration;

use common::Server;
use common::fuzz::{Rng, cases, mutate, seed};
use common::probes::sync;
use ej::framer::{Frame, Framer};

/// Stream openings and stanzas, well-formed, to mutate.
const SEEDS: &[&str] = &[
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' \
     to='example.com' version='1.0'><message to='a@b' type='chat'><body>hi &amp; bye</body></message>",
    "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'>\
     <iq type='get' id='1'><query xmlns='jabber:iq:roster'/></iq><presence/></stream:stream>",
    "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client' xmlns:x='urn:x'>\
     <x:thing x:a='1' b=\"2\"><![CDATA[<not markup>]]><!-- note --><c xml:lang='en'>&#x263A;</c></x:thing>",
    "<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>  \n <a/>\t<b>text</b>",
];

/// Everything the framer yields for `input` cut into `pieces`, up to and
/// including whether it failed.
fn frames(input: &[u8], pieces: &[usize]) -> (Vec<Frame>, bool) {
    let mut framer = Framer::new(4096);
    let mut frames = Vec::new();
    let mut rest = input;
    for &size in pieces.iter().chain(std::iter::repeat(&input.len().max(1))) {
        if rest.is_empty() {
            break;
        }
        let (piece, after) = rest.split_at(size.clamp(1, rest.len()));
        rest = after;
        framer.push(piece);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
        }
    }
    (frames, false)
}

#[test]
fn mutated_streams_frame_alike_whole_and_in_any_pieces() {
    let mut rng = Rng::new(seed());
    let cases = cases(50_000);
    for case in 0..cases {
        let seed = SEEDS[rng.below(SEEDS.len())];
        let input = mutate(&mut rng, seed.as_bytes(), SEEDS);
        let pieces: Vec<usize> = (0..rng.below(40)).map(|_| rng.below(24) + 1).collect();
        let whole = frames(&input, &[input.len()]);
        let chunked = frames(&input, &pieces);
        assert_eq!(
            whole,
            chunked,
            "case {case}: the frames depend on how the bytes were cut ({pieces:?}) for input {:?}",
            String::from_utf8_lossy(&input)
        );
    }
}

#[test]
fn random_action_lists_from_a_guest_never_take_the_host_down() {
    let server = Server::start("faulty", &["--on-fault", "skip"]);
    let mut rng = Rng::new(seed());
    for _ in 0..cases(200) {
        let mut client = server.open();
        for _ in 0..=rng.below(4) {
            client.send(&format!("<chaos seed='{}' n='{}'/>", rng.next(), rng.below(300)));
        }
        // Whatever comes back for a moment; then the peer goes, politely
        // or not.
        let _ = client.try_read_until("never", Duration::from_millis(20));
        if rng.below(2) == 0 {
            client.reset();
        }
    }
    let mut client = server.open();
    sync(&mut client);
    let panics: Vec<String> = server
        .text_log()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "{panics:#?}");
}
