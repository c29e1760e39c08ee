//! The soak: clients drive store writes through the real `ej` serving the
//! faulty handler — with a share of events made to fault (panics after a
//! write, endless loops), clients that reset their connection right after
//! asking for a write, hot swaps between two builds of the module, and
//! `kill -9` followed by a restart on the same data directory. An external
//! ledger (a file) records every write asked for and every one
//! acknowledged; at the end the store must hold every acknowledged write,
//! no write of a faulted event and nothing nobody asked for, and the server
//! must be back to no open connection and the file descriptors it had on
//! start. `--metrics` and the server's RSS are sampled every second into a
//! CSV that `bench/soak_plot.py` draws.
//!
//! Bounded in CI (20,000 writes, one swap, one kill); `bench/soak.sh` runs
//! a million (`EJ_SOAK_EVENTS`, `EJ_SOAK_SWAPS`, `EJ_SOAK_KILLS`) and draws
//! the plot. The ledger and the CSV are left in `EJ_SOAK_DIR` (default:
//! `target/tmp/soak`).

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fuzz::Rng;
use common::ledger::Ledger;
use common::metrics::{endpoint, scrape, value};
use common::sampler::{Live, Marks, sample};
use common::variant::Builds;
use common::{Client, PATIENCE, Server, ej, guest, replace, setting, wait_until};

/// Clients writing at once.
const WORKERS: u64 = 16;
/// Out of 1,000 events: how many put then panic, how many loop until their
/// deadline, and how many are followed by a reset of the connection.
const PANICS: u64 = 10;
const LOOPS: u64 = 1;
const RESETS: u64 = 5;

/// What the clients share with the driver.
struct Shared {
    /// Where the server listens, or none while it is being restarted.
    addr: Mutex<Option<SocketAddr>>,
    /// Events handed out so far, and how many to hand out.
    issued: AtomicU64,
    budget: u64,
    ledger: Ledger,
    acked: AtomicU64,
    faults: AtomicU64,
    resets: AtomicU64,
    /// Connections ended by a kill or a swap's hiccup rather than by us.
    dropped: AtomicU64,
}

/// One client: writes `w{worker}.{n}` = `n` for each event number `n` it
/// is handed, injecting faults and resets, reconnecting whenever its
/// connection ends.
fn client(shared: &Shared, worker: u64) {
    let mut rng = Rng::new(worker + 1);
    let mut connection: Option<Client> = None;
    loop {
        let n = shared.issued.fetch_add(1, Ordering::Relaxed);
        if n >= shared.budget {
            break;
        }
        let mut client = match connection.take() {
            Some(client) => client,
            None => connect(shared),
        };
        let roll = rng.next() % 1000;
        let key = format!("w{worker}.{n}");
        if roll < PANICS + LOOPS {
            let stanza = if roll < PANICS {
                shared.ledger.faulted(&key);
                format!("<put-then-panic key='{key}' value='{n}'/>")
            } else {
                "<loop/>".to_owned()
            };
            // Under `--on-fault close`: a stream error, then the end.
            client.try_send(stanza.as_bytes(), PATIENCE);
            if client.try_read_until("<internal-server-error", PATIENCE).is_some() {
                shared.faults.fetch_add(1, Ordering::Relaxed);
            }
            continue;
        }
        shared.ledger.sent(&key, &n.to_string());
        let put = format!("<put key='{key}' value='{n}'/>");
        if client.try_send(put.as_bytes(), PATIENCE) < put.len() {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        if roll < PANICS + LOOPS + RESETS {
            client.reset();
            shared.resets.fetch_add(1, Ordering::Relaxed);
        } else if client
            .try_read_until(&format!("<stored key='{key}'/>"), PATIENCE)
            .is_some()
        {
            shared.ledger.acked(&key);
            shared.acked.fetch_add(1, Ordering::Relaxed);
            connection = Some(client);
        } else {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
    if let Some(mut client) = connection {
        client.send("</stream:stream>");
        client.read_to_end();
    }
}

/// A connection with its stream open, waiting while the server is down.
fn connect(shared: &Shared) -> Client {
    let deadline = Instant::now() + 6 * PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "the server did not come back");
        if let Some(client) = shared.addr.lock().unwrap().and_then(Client::try_open) {
            return client;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many file descriptors process `pid` has open.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("reading /proc/PID/fd")
        .count()
}

/// Everything the store holds, read with `ej store list` once the server
/// has stopped.
fn store_contents(server: &mut Server) -> HashMap<String, String> {
    server.signal("TERM");
    assert!(server.wait_for_exit(), "ej did not shut down cleanly");
    let out = ej()
        .args(["store", "--data-dir"])
        .arg(&server.data_dir)
        .args(["list", "", "--limit", "100000000"])
        .output()
        .expect("running ej store list");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    text.lines()
        .map(|line| {
            let (key, value) = line.split_once('\t').expect("KEY<TAB>VALUE");
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

#[test]
fn a_soak_loses_no_acknowledged_write_and_leaks_nothing() {
    let events = setting("EJ_SOAK_EVENTS", 20_000);
    let swaps = setting("EJ_SOAK_SWAPS", 1);
    let kills = setting("EJ_SOAK_KILLS", 1);
    let dir = std::env::var_os("EJ_SOAK_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soak"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&dir).unwrap();

    let mut builds = Builds::new(std::fs::read(guest("faulty")).unwrap(), false);
    let module = dir.join("faulty.wasm");
    std::fs::write(&module, builds.next()).unwrap();
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    let data = data.to_str().expect("a UTF-8 path").to_owned();
    let mut server = Server::start_module(&module, &["--metrics", "127.0.0.1:0", "--data-dir", &data]);
    let mut baseline = fds(server.pid());

    let shared = Arc::new(Shared {
        addr: Mutex::new(Some(server.addr)),
        issued: AtomicU64::new(0),
        budget: events,
        ledger: Ledger::create(&dir.join("ledger.txt")),
        acked: AtomicU64::new(0),
        faults: AtomicU64::new(0),
        resets: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let live: Live = Arc::new(Mutex::new(Some((server.pid(), endpoint(&server)))));
    let marks = Arc::new(Marks::default());
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (live, marks, stop, csv) = (
            Arc::clone(&live),
            Arc::clone(&marks),
            Arc::clone(&stop),
            dir.join("soak.csv"),
        );
        std::thread::spawn(move || sample(&live, &marks, &csv, &stop))
    };
    let started = Instant::now();
    let clients: Vec<_> = (0..WORKERS)
        .map(|worker| {
            let shared = Arc::clone(&shared);
            std::thread::spawn(move || client(&shared, worker))
        })
        .collect();

    // Swaps and kills, taking turns, spread evenly over the run.
    let disruptions = swaps + kills;
    for at in 1..=disruptions {
        let milestone = events * at / (disruptions + 1);
        while shared.issued.load(Ordering::Relaxed) < milestone {
            std::thread::sleep(Duration::from_millis(10));
        }
        let swap = if marks.swaps.load(Ordering::Relaxed) >= swaps {
            false
        } else {
            marks.kills.load(Ordering::Relaxed) >= kills || at % 2 == 1
        };
        if swap {
            replace(&module, &builds.next());
            let out = server.reload();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            marks.swaps.fetch_add(1, Ordering::Relaxed);
        } else {
            *shared.addr.lock().unwrap() = None;
            *live.lock().unwrap() = None;
            server = server.restart("KILL");
            baseline = fds(server.pid());
            *live.lock().unwrap() = Some((server.pid(), endpoint(&server)));
            *shared.addr.lock().unwrap() = Some(server.addr);
            marks.kills.fetch_add(1, Ordering::Relaxed);
        }
    }
    for client in clients {
        client.join().expect("a client failed");
    }
    let took = started.elapsed();

    let metrics = endpoint(&server);
    wait_until(|| (value(&scrape(metrics), "ej_connections_open") == 0.0).then_some(()));
    stop.store(true, Ordering::Relaxed);
    let rows = sampler.join().expect("the sampler failed");
    let open_fds = wait_until(|| {
        let now = fds(server.pid());
        (now == baseline).then_some(now)
    });

    let verdict = shared.ledger.check(&store_contents(&mut server));
    let acked = shared.acked.load(Ordering::Relaxed);
    eprintln!(
        "soak: {events} events in {:.1} s ({:.0}/s); {acked} writes acknowledged, {} present; \
         {} faults injected ({} writes in faulted events), {} resets, {} connections dropped by kills and swaps; \
         {} swaps, {} kills; unacknowledged writes: {} committed, {} not; lost {}, wrong {}, \
         faulted present {}, unknown {}; fds {open_fds} (baseline {baseline}); {rows} CSV rows in {}",
        took.as_secs_f64(),
        events as f64 / took.as_secs_f64(),
        verdict.acked_present,
        shared.faults.load(Ordering::Relaxed),
        verdict.faulted,
        shared.resets.load(Ordering::Relaxed),
        shared.dropped.load(Ordering::Relaxed),
        marks.swaps.load(Ordering::Relaxed),
        marks.kills.load(Ordering::Relaxed),
        verdict.unacked_present,
        verdict.unacked_absent,
        verdict.lost.len(),
        verdict.wrong.len(),
        verdict.faulted_present.len(),
        verdict.unknown.len(),
        dir.display(),
    );
    assert!(verdict.clean(), "{verdict:#?}");
    assert_eq!(verdict.acked_present as u64, acked);
    assert!(acked > events * 9 / 10, "too few writes acknowledged");
    assert!(shared.faults.load(Ordering::Relaxed) > 0, "no fault injected");
    assert!(shared.resets.load(Ordering::Relaxed) > 0, "no reset");
    assert_eq!(marks.swaps.load(Ordering::Relaxed), swaps);
    assert_eq!(marks.kills.load(Ordering::Relaxed), kills);
}
