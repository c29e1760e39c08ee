//! Hot swap: a new module takes over between two events, under live
//! traffic, losing nothing; a broken one changes nothing.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::variant::variant;
use common::{Client, Scratch, Server, guest, replace};

/// Two builds of `name` with different digests, and the digest of each.
struct Versions {
    files: [Vec<u8>; 2],
    digests: [String; 2],
}

impl Versions {
    fn of(name: &str, scratch: &Scratch) -> Self {
        let original = std::fs::read(guest(name)).unwrap();
        let files = [variant(&original, "one"), variant(&original, "two")];
        let digests = [0, 1].map(|i| {
            let path = scratch.path(&format!("{name}-{i}.wasm"));
            std::fs::write(&path, &files[i]).unwrap();
            common::check_digest(&path)
        });
        assert_ne!(digests[0], digests[1]);
        Self { files, digests }
    }
}

/// Asks echo which build answers, checking the stanza count goes up by one.
fn module_digest(client: &mut Client, expected_count: u64) -> String {
    client.send("<module/>");
    let reply = client.read_until("'/>");
    let prefix = format!("<module n='{expected_count}' digest='");
    reply
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("expected {prefix}…, got {reply}"))
        .trim_end_matches("'/>")
        .to_owned()
}

fn module_file(scratch: &Scratch, versions: &Versions) -> PathBuf {
    let path = scratch.path("handler.wasm");
    std::fs::write(&path, &versions.files[0]).unwrap();
    path
}

#[test]
fn swaps_under_load_lose_nothing_and_every_later_reply_is_the_new_version() {
    const CLIENTS: usize = 24;
    const SWAPS: usize = 12;
    let scratch = Scratch::new("swap-load");
    let versions = Versions::of("echo", &scratch);
    let path = module_file(&scratch, &versions);
    let server = Server::start_module(&path, &[]);

    // Each swap: when its file was replaced, when the reload completed, and
    // the digest it swapped in.
    let mut swaps = vec![(Instant::now(), Instant::now(), versions.digests[0].clone())];
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let mut client = server.connect();
            client.open();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                // (question sent, answer received, build that answered)
                let mut answers = Vec::new();
                let mut count = 0;
                while !stop.load(Ordering::Relaxed) {
                    count += 1;
                    let sent = Instant::now();
                    let digest = module_digest(&mut client, count);
                    answers.push((sent, Instant::now(), digest));
                }
                client.send("</stream:stream>");
                assert!(
                    client.read_to_end().ends_with("</stream:stream>"),
                    "a connection was dropped"
                );
                answers
            })
        })
        .collect();

    for swap in 1..=SWAPS {
        std::thread::sleep(Duration::from_millis(200));
        let next = swap % 2;
        let started = Instant::now();
        replace(&path, &versions.files[next]);
        let out = server.reload();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains(&format!("swapped {}", versions.digests[next])),
            "{stdout}"
        );
        swaps.push((started, Instant::now(), versions.digests[next].clone()));
    }
    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);

    let (mut total, mut strict) = (0, 0);
    for client in clients {
        // A lost, duplicated or misordered reply fails `module_digest` there.
        let answers = client.join().expect("a client failed");
        total += answers.len();
        for (sent, received, digest) in answers {
            // Asked after swap k completed, answered before swap k+1 began:
            // only build k may answer.
            let k = swaps.iter().rposition(|(_, done, _)| *done <= sent).unwrap();
            if swaps
                .get(k + 1)
                .is_none_or(|(next_started, _, _)| received < *next_started)
            {
                assert_eq!(digest, swaps[k].2, "a reply after a swap came from the old build");
                strict += 1;
            } else {
                assert!(versions.digests.contains(&digest));
            }
        }
    }
    assert!(
        total > CLIENTS * SWAPS && strict > CLIENTS * 2,
        "too light a load to prove anything: {total} replies, {strict} checked strictly"
    );
    assert!(server.crashes().is_empty());
}

#[test]
fn a_broken_replacement_is_rejected_and_the_old_module_keeps_serving() {
    let scratch = Scratch::new("swap-broken");
    let versions = Versions::of("echo", &scratch);
    let path = module_file(&scratch, &versions);
    let server = Server::start_module(&path, &[]);
    let mut client = server.connect();
    client.open();
    assert_eq!(module_digest(&mut client, 1), versions.digests[0]);

    for (broken, why) in [
        (b"not wasm at all".to_vec(), "not a WebAssembly component"),
        (b"\0asm\x01\0\0\0".to_vec(), "a core wasm module"),
        (b"\0asm\x0d\0\x01\0".to_vec(), "handle"),
    ] {
        replace(&path, &broken);
        let out = server.reload();
        assert!(!out.status.success(), "a broken module was accepted");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.starts_with("error ") && stdout.contains(why), "{stdout}");
    }
    assert_eq!(module_digest(&mut client, 2), versions.digests[0]);
    assert!(server.status().contains(&versions.digests[0]));

    replace(&path, &versions.files[1]);
    assert!(server.reload().status.success());
    assert_eq!(
        module_digest(&mut client, 3),
        versions.digests[1],
        "state carried across the swap"
    );
}

#[test]
fn watch_reloads_on_rename_and_on_in_place_writes() {
    let scratch = Scratch::new("swap-watch");
    let versions = Versions::of("echo", &scratch);
    let path = module_file(&scratch, &versions);
    let server = Server::start_module(&path, &["--watch"]);
    let mut client = server.connect();
    client.open();
    assert_eq!(module_digest(&mut client, 1), versions.digests[0]);

    replace(&path, &versions.files[1]);
    server.wait_for_log("module swapped", |fields| {
        fields["digest"] == versions.digests[1].as_str()
    });
    assert_eq!(module_digest(&mut client, 2), versions.digests[1]);

    // In place, in two writes: the watcher waits for the file to settle.
    let (head, tail) = versions.files[0].split_at(versions.files[0].len() / 2);
    std::fs::write(&path, head).unwrap();
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    std::io::Write::write_all(&mut file, tail).unwrap();
    drop(file);
    server.wait_for_log("module swapped", |fields| {
        fields["digest"] == versions.digests[0].as_str()
    });
    assert_eq!(module_digest(&mut client, 3), versions.digests[0]);
}

#[test]
fn sighup_reloads() {
    let scratch = Scratch::new("swap-hup");
    let versions = Versions::of("echo", &scratch);
    let path = module_file(&scratch, &versions);
    let server = Server::start_module(&path, &[]);
    let mut client = server.connect();
    client.open();
    replace(&path, &versions.files[1]);
    server.signal("HUP");
    server.wait_for_log("module swapped", |fields| {
        fields["digest"] == versions.digests[1].as_str()
    });
    assert_eq!(module_digest(&mut client, 1), versions.digests[1]);
}

#[test]
fn a_swap_is_not_delayed_by_a_handler_stuck_in_a_loop() {
    let scratch = Scratch::new("swap-loop");
    let versions = Versions::of("faulty", &scratch);
    let path = module_file(&scratch, &versions);
    let server = Server::start_module(&path, &["--event-timeout", "5s", "--on-fault", "skip"]);
    let mut spinning = server.connect();
    spinning.open();
    spinning.send("<loop/>");
    std::thread::sleep(Duration::from_millis(200));

    replace(&path, &versions.files[1]);
    let started = Instant::now();
    assert!(server.reload().status.success());
    let took = started.elapsed();
    assert!(server.crashes().is_empty(), "the loop should still be spinning");
    assert!(took < Duration::from_secs(2), "the swap waited for the loop: {took:?}");

    // The loop ends at its deadline; its connection then runs the new build.
    server.wait_for_crashes(1);
    spinning.send("<probe/>");
    spinning.read_until("<probe global='1'");
}

#[test]
fn each_listener_swaps_its_own_module() {
    let scratch = Scratch::new("swap-listeners");
    let versions = Versions::of("echo", &scratch);
    let first = scratch.path("first.wasm");
    let second = scratch.path("second.wasm");
    std::fs::write(&first, &versions.files[0]).unwrap();
    std::fs::write(&second, &versions.files[0]).unwrap();
    let listen = |path: &Path| format!("127.0.0.1:0={}", path.display());
    let (listen_first, listen_second) = (listen(&first), listen(&second));
    let server = Server::start_module(&first, &["--listen", &listen_first, "--listen", &listen_second]);

    replace(&first, &versions.files[1]);
    let out = server.reload();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("{} swapped", first.display())), "{stdout}");
    assert!(stdout.contains(&format!("{} unchanged", second.display())), "{stdout}");

    let mut on_first = Client::connect(server.addrs[0]);
    on_first.open();
    let mut on_second = Client::connect(server.addrs[1]);
    on_second.open();
    assert_eq!(module_digest(&mut on_first, 1), versions.digests[1]);
    assert_eq!(module_digest(&mut on_second, 1), versions.digests[0]);
}

#[test]
fn a_module_compiled_before_loads_from_the_compile_cache() {
    let scratch = Scratch::new("swap-cache");
    let versions = Versions::of("echo", &scratch);
    let path = module_file(&scratch, &versions);
    let cache = scratch.path("cache");
    let cache_flag = cache.to_str().unwrap();
    let hit = |server: &Server| {
        server.wait_for_log("compile cache", |fields| {
            fields["digest"] == versions.digests[0].as_str()
        })["hit"]
            .as_bool()
            .unwrap()
    };
    let first = Server::start_module(&path, &["--cache-dir", cache_flag]);
    assert!(!hit(&first), "a new cache cannot hit");
    drop(first);
    let second = Server::start_module(&path, &["--cache-dir", cache_flag]);
    assert!(hit(&second), "the second start should load the compiled module");
    let mut client = second.connect();
    client.open();
    assert_eq!(module_digest(&mut client, 1), versions.digests[0]);
}
