//! Many connections routing numbered payloads to one: in order per
//! sender, each delivered or back busy, none lost, none twice.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use super::probes::{PONG, attr, bind, number, sync};
use super::{Client, PATIENCE, Server};

/// How senders send their payloads.
#[derive(Clone, Copy)]
pub enum Pace {
    /// All at once, in one write.
    Burst,
    /// Each followed by a round trip, so that the sender's session handles
    /// its own bounces before it reads the next route.
    RoundTrip,
}

/// Routes `per_sender` numbered payloads from each of `senders` connections
/// (on `sender_nodes`, in turn) to one target on `target_node`, all at once; waits until every payload was either
/// delivered or came back busy; checks per-sender order, nothing lost,
/// nothing twice. Returns (delivered, busy) in total.
pub fn route_concurrently(
    target_node: &Server,
    sender_nodes: &[&Server],
    senders: usize,
    per_sender: usize,
    pace: Pace,
    before: impl FnOnce(&mut Client),
) -> (usize, usize) {
    let mut target = target_node.open();
    bind(&mut target, "target");
    let bounced: Arc<Mutex<Vec<Vec<usize>>>> = Arc::new(Mutex::new(vec![Vec::new(); senders]));
    let done = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(senders + 1));
    let threads: Vec<_> = (0..senders)
        .map(|s| {
            let mut client = sender_nodes[s % sender_nodes.len()].open();
            bind(&mut client, &format!("sender/{s}"));
            let (bounced, done, start) = (Arc::clone(&bounced), Arc::clone(&done), Arc::clone(&start));
            std::thread::spawn(move || {
                let route = |i: usize| format!("<route to='target'><n s='{s}' i='{i}'/></route>");
                let record = |text: &str| {
                    for item in text.split_inclusive("</busy>") {
                        assert!(item.starts_with("<busy to='target'><n "), "{item:?}");
                        assert_eq!(number(item, "s"), s);
                        bounced.lock().unwrap()[s].push(number(item, "i"));
                    }
                };
                start.wait();
                match pace {
                    Pace::Burst => client.send(&(0..per_sender).map(route).collect::<String>()),
                    Pace::RoundTrip => {
                        for i in 0..per_sender {
                            client.send(&format!("{}<ping/>", route(i)));
                            let text = client.read_until(PONG);
                            record(text.strip_suffix(PONG).unwrap());
                        }
                    }
                }
                while !done.load(Ordering::Relaxed) {
                    if let Some(text) = client.try_read_until("</busy>", Duration::from_millis(20)) {
                        record(&text);
                    }
                }
                sync(&mut client);
            })
        })
        .collect();
    before(&mut target);
    start.wait();

    let mut delivered = vec![Vec::new(); senders];
    let deadline = Instant::now() + PATIENCE;
    loop {
        let arrived: usize =
            delivered.iter().map(Vec::len).sum::<usize>() + bounced.lock().unwrap().iter().map(Vec::len).sum::<usize>();
        if arrived >= senders * per_sender {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{arrived} of {} payloads delivered or bounced; the server logged {:?}",
            senders * per_sender,
            target_node.find_log("event dropped: too many pending", |_| true)
        );
        if let Some(text) = target.try_read_until("</routed>", Duration::from_millis(20)) {
            assert!(text.starts_with("<routed from='sender/"), "{text:?}");
            let s = number(&text, "s");
            assert_eq!(attr(&text, "from"), format!("sender/{s}"), "{text:?}");
            delivered[s].push(number(&text, "i"));
        }
    }
    done.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap();
    }
    // Nothing more comes: no duplicates.
    sync(&mut target);

    let bounced = bounced.lock().unwrap();
    for s in 0..senders {
        let (got, back) = (&delivered[s], &bounced[s]);
        assert!(
            got.is_sorted_by(|a, b| a < b),
            "sender {s}: delivered out of order: {got:?}"
        );
        assert!(
            back.is_sorted_by(|a, b| a < b),
            "sender {s}: busy out of order: {back:?}"
        );
        let mut all: Vec<usize> = got.iter().chain(back).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..per_sender).collect::<Vec<_>>(), "sender {s}: lost or doubled");
    }
    (delivered.iter().map(Vec::len).sum(), bounced.iter().map(Vec::len).sum())
}
