//! The XMPP handler (`examples/xmpp`) under load, on the real `Server` in
//! this process, its clients logged in over direct TLS with SASL PLAIN:
//!
//! - `room_fanout/50` and `room_fanout/500`: one occupant of a room of 50
//!   (or 500; 10 and 20 in a test run) says things, up to `WINDOW` messages in flight; an iteration
//!   ends when every occupant has every message. The figure is messages
//!   into the room per second; each delivery's latency (from the send to
//!   the occupant reading it) is kept, and the median and p99 are printed
//!   after the run.
//! - `archive_query/*`: bob's archive holds `ARCHIVED` messages from alice
//!   (100 000 when benchmarking, 500 in a test run); one query, a page of
//!   50, the round trip timed: `last_page` (an empty `<before/>`, what a
//!   client catching up asks), `after_id` (the page after a message in the
//!   middle), `since_time` (the first page from a time in the middle: a
//!   binary search first), `with_contact` (the last page of the
//!   conversation with alice, through its own index).
//!
//! Run with `cargo bench -p ej --bench xmpp` after `cargo xtask guests`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::client::TlsStream;

use ej::limits::SandboxLimits;
use ej::sandbox::Sandbox;

use common::{BenchEnv, PATIENCE, RunningServer, read_until};

type Stream = TlsStream<TcpStream>;

/// Messages a sender may have sent and not yet seen delivered.
const WINDOW: usize = 8;
/// Messages per iteration of a fan-out benchmark.
const BURST: usize = 20;
const ROOM: &str = "bench@conference.localhost";
const PASSWORD: &str = "bench-password";

/// Whether this is `cargo bench` (criterion passes `--bench`) rather than
/// a test run (`cargo test --benches`, in CI, with an unoptimised host),
/// which gets smaller rooms and archives: it only checks the benchmark
/// still works.
fn benchmarking() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// Starts the server with the XMPP handler and makes accounts `u0`…`u{n-1}`.
async fn server(env: &BenchEnv, users: usize) -> RunningServer {
    let sandbox = Arc::new(Sandbox::new(SandboxLimits::default()).expect("creating the sandbox"));
    let server = RunningServer::start(env, sandbox, &common::example_module_path("xmpp")).await;
    for n in 0..users {
        server
            .service
            .operator(format!("user add u{n} {PASSWORD}"))
            .await
            .expect("adding an account");
    }
    server
        .service
        .operator("config archive-limit 200000".to_owned())
        .await
        .expect("setting the archive limit");
    server
}

/// Logs `user` in (direct TLS, PLAIN), binds resource `bench`.
async fn login(server: &RunningServer, user: &str) -> Stream {
    let mut stream = server.connect_tls(&server.tls_connector(false)).await;
    let header = common::stream_header("localhost");
    stream.write_all(header.as_bytes()).await.expect("sending the header");
    read_until(&mut stream, b"</stream:features>").await;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{PASSWORD}"));
    let auth = format!("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{credentials}</auth>");
    stream.write_all(auth.as_bytes()).await.expect("authenticating");
    read_until(&mut stream, b"</success>").await;
    stream
        .write_all(header.as_bytes())
        .await
        .expect("restarting the stream");
    read_until(&mut stream, b"</stream:features>").await;
    let bind = "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>bench</resource></bind></iq>";
    stream.write_all(bind.as_bytes()).await.expect("binding");
    read_until(&mut stream, b"</iq>").await;
    stream
}

/// The text of every `<body>` in `buffer`'s complete stanzas, draining
/// what it read.
fn bodies(buffer: &mut Vec<u8>) -> Vec<String> {
    let mut found = Vec::new();
    let mut consumed = 0;
    while let Some(start) = find(&buffer[consumed..], b"<body>") {
        let from = consumed + start + b"<body>".len();
        let Some(end) = find(&buffer[from..], b"</body>") else {
            break;
        };
        found.push(String::from_utf8_lossy(&buffer[from..from + end]).into_owned());
        consumed = from + end;
    }
    // Keep a partial stanza's start; nothing before it matters.
    let keep = match find(&buffer[consumed..], b"<body>") {
        Some(start) => consumed + start,
        None => buffer.len().saturating_sub(b"<body>".len()).max(consumed),
    };
    buffer.drain(..keep);
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// A room of occupants, each read by its own task.
struct Room {
    /// Each occupant's sending half; the first one speaks.
    writers: Vec<WriteHalf<Stream>>,
    /// When each message was sent, by number.
    sent: Arc<Mutex<Vec<Instant>>>,
    /// Every delivery's latency.
    latencies: Arc<Mutex<Vec<Duration>>>,
    /// Deliveries so far, and a wake-up for each.
    delivered: Arc<(Mutex<usize>, Notify)>,
    /// The sender's own copies so far (its window).
    echoed: Arc<(Mutex<usize>, Notify)>,
    occupants: usize,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Room {
    /// Logs in `occupants` users and enters each into the room.
    async fn fill(server: &RunningServer, occupants: usize) -> Self {
        let sent = Arc::new(Mutex::new(Vec::new()));
        let latencies = Arc::new(Mutex::new(Vec::new()));
        let delivered = Arc::new((Mutex::new(0), Notify::new()));
        let echoed = Arc::new((Mutex::new(0), Notify::new()));
        let mut readers = Vec::new();
        let mut writers = Vec::new();
        for n in 0..occupants {
            let mut stream = login(server, &format!("u{n}")).await;
            let join = format!(
                "<presence to='{ROOM}/u{n}'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>"
            );
            stream.write_all(join.as_bytes()).await.expect("entering the room");
            // The self-presence, then the (empty) subject.
            read_until(&mut stream, b"</subject></message>").await;
            if n == 0 {
                // The creator lets in more than the default 200.
                let config = "<iq type='set' id='config' to='bench@conference.localhost'>\
                    <query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>\
                    <field var='muc#roomconfig_maxusers'><value>1000</value></field></x></query></iq>";
                stream.write_all(config.as_bytes()).await.expect("configuring the room");
                read_until(&mut stream, format!("from='{ROOM}'/>").as_bytes()).await;
            }
            let (mut reader, writer) = tokio::io::split(stream);
            writers.push(writer);
            let (sent, latencies, delivered, echoed) =
                (sent.clone(), latencies.clone(), delivered.clone(), echoed.clone());
            readers.push(tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = vec![0; 64 * 1024];
                loop {
                    let n_read = reader.read(&mut chunk).await.expect("reading");
                    assert!(n_read > 0, "the server closed an occupant's connection");
                    buffer.extend_from_slice(&chunk[..n_read]);
                    let now = Instant::now();
                    for body in bodies(&mut buffer) {
                        let Some(number) = body.strip_prefix('m').and_then(|n| n.parse::<usize>().ok()) else {
                            continue;
                        };
                        let at = sent.lock().expect("the send times")[number];
                        latencies.lock().expect("the latencies").push(now - at);
                        let (count, wake) = &*delivered;
                        *count.lock().expect("the count") += 1;
                        wake.notify_waiters();
                        if n == 0 {
                            let (count, wake) = &*echoed;
                            *count.lock().expect("the count") += 1;
                            wake.notify_waiters();
                        }
                    }
                }
            }));
        }
        Self {
            writers,
            sent,
            latencies,
            delivered,
            echoed,
            occupants,
            readers,
        }
    }

    /// Sends `BURST` messages (at most `WINDOW` in flight) and waits until
    /// every occupant has them all.
    async fn burst(&mut self) {
        let first = self.sent.lock().expect("the send times").len();
        for number in first..first + BURST {
            wait_for(&self.echoed, number.saturating_sub(WINDOW - 1)).await;
            self.sent.lock().expect("the send times").push(Instant::now());
            let message = format!("<message to='{ROOM}' type='groupchat'><body>m{number}</body></message>");
            self.writers[0].write_all(message.as_bytes()).await.expect("sending");
        }
        wait_for(&self.delivered, (first + BURST) * self.occupants).await;
    }

    /// The median and 99th percentile delivery latency so far.
    fn percentiles(&self) -> (Duration, Duration) {
        let mut all = self.latencies.lock().expect("the latencies").clone();
        all.sort_unstable();
        let at = |fraction: f64| all[((all.len() - 1) as f64 * fraction) as usize];
        (at(0.5), at(0.99))
    }

    /// Closes every occupant's connection.
    fn leave(self) {
        for reader in self.readers {
            reader.abort();
        }
    }
}

/// Waits until `counter` reaches `target`.
async fn wait_for(counter: &(Mutex<usize>, Notify), target: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (count, wake) = counter;
        let notified = wake.notified();
        if *count.lock().expect("the count") >= target {
            return;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(tokio::time::timeout(left, notified).await.is_ok(), "deliveries stalled");
    }
}

fn room_fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("building a tokio runtime");
    let mut group = c.benchmark_group("room_fanout");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    let sizes = if benchmarking() { [50, 500] } else { [10, 20] };
    for occupants in sizes {
        let env = BenchEnv::new(&format!("xmpp-room-{occupants}"));
        let server = runtime.block_on(server(&env, occupants));
        let mut room = runtime.block_on(Room::fill(&server, occupants));
        group.throughput(Throughput::Elements(BURST as u64));
        group.bench_function(occupants.to_string(), |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        room.burst().await;
                    }
                    start.elapsed()
                })
            });
        });
        let (median, p99) = room.percentiles();
        println!("room_fanout/{occupants}: delivery latency median {median:?}, p99 {p99:?}");
        room.leave();
        runtime.block_on(server.stop(Vec::<Stream>::new()));
    }
    group.finish();
}

/// Sends an iq and reads until its answer (and the results before it).
async fn round_trip(stream: &mut Stream, iq: &str) -> Vec<u8> {
    stream.write_all(iq.as_bytes()).await.expect("asking");
    read_until(stream, b"</fin></iq>").await
}

fn archive_query(c: &mut Criterion) {
    let archived = if benchmarking() { 100_000 } else { 500 };
    let runtime = tokio::runtime::Runtime::new().expect("building a tokio runtime");
    let env = BenchEnv::new("xmpp-archive");
    let server = runtime.block_on(server(&env, 2));
    let (mut alice, bob) = runtime.block_on(async { (login(&server, "u0").await, login(&server, "u1").await) });
    // alice sends, bob reads (bob online, so nothing waits offline) and
    // notes the stanza-id of the message in the middle.
    // alice keeps at most `WINDOW` messages unread by bob, so none waits
    // in a full mailbox.
    let received = Arc::new((Mutex::new(0), Notify::new()));
    let (mut bob, middle_id) = runtime.block_on(async {
        let mut bob = bob;
        let progress = received.clone();
        let reader = tokio::spawn(async move {
            let mut buffer = Vec::new();
            let mut chunk = vec![0; 64 * 1024];
            let (mut seen, mut middle) = (0, None);
            while seen < archived {
                let n = tokio::time::timeout(PATIENCE, bob.read(&mut chunk))
                    .await
                    .expect("bob gets messages in time")
                    .expect("reading");
                assert!(n > 0, "the server closed bob's connection");
                buffer.extend_from_slice(&chunk[..n]);
                while let Some(end) = find(&buffer, b"</message>") {
                    seen += 1;
                    if seen == archived / 2 {
                        middle = Some(attribute(&buffer[..end], b"<stanza-id", "id"));
                    }
                    buffer.drain(..end + b"</message>".len());
                }
                let (count, wake) = &*progress;
                *count.lock().expect("the count") = seen;
                wake.notify_waiters();
            }
            (bob, middle.expect("the middle message"))
        });
        for n in 0..archived {
            wait_for(&received, n.saturating_sub(WINDOW)).await;
            let message = format!("<message to='u1@localhost/bench' type='chat'><body>archived {n}</body></message>");
            alice.write_all(message.as_bytes()).await.expect("sending");
        }
        reader.await.expect("bob's reader")
    });
    // When the message after it was archived, as the archive says.
    let after_middle = format!(
        "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'>\
         <max>1</max><after>{middle_id}</after></set></query></iq>"
    );
    let middle_time = attribute(
        &runtime.block_on(round_trip(&mut bob, &after_middle)),
        b"<delay",
        "stamp",
    );
    let form = |fields: &str| {
        format!(
            "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'>\
             <value>urn:xmpp:mam:2</value></field>{fields}</x>"
        )
    };
    let with = form("<field var='with'><value>u0@localhost</value></field>");
    let since = form(&format!("<field var='start'><value>{middle_time}</value></field>"));
    let queries = [
        ("last_page", String::new(), "<before/>".to_owned()),
        ("after_id", String::new(), format!("<after>{middle_id}</after>")),
        ("since_time", since, String::new()),
        ("with_contact", with, "<before/>".to_owned()),
    ];
    let mut group = c.benchmark_group("archive_query");
    for (name, form, paging) in queries {
        let iq = format!(
            "<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2'>{form}\
             <set xmlns='http://jabber.org/protocol/rsm'><max>50</max>{paging}</set></query></iq>"
        );
        let answer = runtime.block_on(round_trip(&mut bob, &iq));
        assert_eq!(
            count(&answer, b"<result xmlns='urn:xmpp:mam:2'"),
            50,
            "{name}: a full page\n{}",
            String::from_utf8_lossy(&answer)
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                runtime.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        round_trip(&mut bob, &iq).await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    group.finish();
    runtime.block_on(server.stop([alice, bob]));
}

/// How often `needle` occurs in `haystack`.
fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// The value of `name` in the first `element` start tag in `text`, as the
/// handler writes attributes (single quotes).
fn attribute(text: &[u8], element: &[u8], name: &str) -> String {
    let start = find(text, element).unwrap_or_else(|| {
        panic!(
            "no {} in {}",
            String::from_utf8_lossy(element),
            String::from_utf8_lossy(text)
        )
    });
    let rest = &text[start..];
    let key = format!(" {name}='");
    let from = find(rest, key.as_bytes()).expect("the attribute") + key.len();
    let to = from + find(&rest[from..], b"'").expect("its end");
    String::from_utf8_lossy(&rest[from..to]).into_owned()
}

criterion_group! {
    name = benches;
    config = common::criterion(5);
    targets = room_fanout, archive_query
}
criterion_main!(benches);
