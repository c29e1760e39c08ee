//! Many connections racing on the store through the faulty handler's
//! probes (`<increment/>`, `<claim/>`, `<join/>`), spread over one server
//! or over every node of a cluster.

use super::probes::PONG;
use super::{Client, Server};

/// Opens `n` connections, the `i`th on `servers[i % servers.len()]`, and
/// runs `talk` on each in its own thread, all at once; returns what each
/// returned, in connection order.
pub fn concurrently<T: Send>(servers: &[&Server], n: usize, talk: impl Fn(usize, &mut Client) -> T + Sync) -> Vec<T> {
    let mut clients: Vec<Client> = (0..n).map(|i| servers[i % servers.len()].open()).collect();
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let talk = &talk;
        let barrier = &barrier;
        let threads: Vec<_> = clients
            .iter_mut()
            .enumerate()
            .map(|(i, client)| {
                scope.spawn(move || {
                    barrier.wait();
                    talk(i, client)
                })
            })
            .collect();
        threads.into_iter().map(|thread| thread.join().unwrap()).collect()
    })
}

/// Has `n` connections each send `steps` copies of `increment` at once;
/// returns the values each was handed, in the order it got them.
pub fn increment_concurrently(servers: &[&Server], n: usize, steps: usize, increment: &str) -> Vec<Vec<u64>> {
    concurrently(servers, n, |_, client| {
        client.send(&increment.repeat(steps));
        client.send("<ping/>");
        incremented(&client.read_until(PONG))
    })
}

/// Every value handed out, in order.
pub fn sorted(replies: &[Vec<u64>]) -> Vec<u64> {
    let mut all: Vec<u64> = replies.iter().flatten().copied().collect();
    all.sort_unstable();
    all
}

/// The values of every `<incremented/>` reply in `text`.
pub fn incremented(text: &str) -> Vec<u64> {
    text.split("<incremented ")
        .skip(1)
        .map(|reply| {
            let value = reply.split("value='").nth(1).expect("a value");
            value[..value.find('\'').unwrap()].parse().unwrap()
        })
        .collect()
}

/// Two connections per round race to claim one of two keys under "at most
/// one of them is on"; returns, per connection, the rounds its claim won.
/// Even connections claim `a`, odd ones `b`.
pub fn claim_concurrently(servers: &[&Server], n: usize, rounds: usize) -> Vec<Vec<usize>> {
    concurrently(servers, n, |i, client| {
        let (mine, other) = if i % 2 == 0 { ("a", "b") } else { ("b", "a") };
        for round in 0..rounds {
            client.send(&format!("<claim mine='r{round}:{mine}' other='r{round}:{other}'/>"));
        }
        client.send("<ping/>");
        let text = client.read_until(PONG);
        (0..rounds)
            .filter(|round| text.contains(&format!("<claimed key='r{round}:{mine}' ok='true'/>")))
            .collect()
    })
}

/// Checks the outcome of `claim_concurrently`: in each round claims on one
/// key only won, and one key is on in the store.
pub fn check_claims(server: &Server, outcomes: &[Vec<usize>], rounds: usize) {
    for round in 0..rounds {
        let won: Vec<usize> = (0..outcomes.len()).filter(|&i| outcomes[i].contains(&round)).collect();
        assert!(!won.is_empty(), "round {round}: the first claim always succeeds");
        assert!(
            won.iter().all(|i| i % 2 == won[0] % 2),
            "round {round}: claims on both keys succeeded: {won:?}"
        );
        let on = server.store(&["list", &format!("r{round}:")]);
        assert_eq!(on.lines().count(), 1, "round {round}: {on}");
    }
}

/// `n` connections race to join each of `rooms` rooms of at most `max`
/// members (a scan, then a write if there is space); returns how many
/// joins each made.
pub fn join_concurrently(servers: &[&Server], n: usize, rooms: usize, max: usize) -> Vec<usize> {
    concurrently(servers, n, |i, client| {
        for room in 0..rooms {
            client.send(&format!("<join prefix='room{room}:' member='m{i:02}' max='{max}'/>"));
        }
        client.send("<ping/>");
        client.read_until(PONG).matches("<joined ").count()
    })
}
