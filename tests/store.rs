//! The durable store, driven through the faulty example handler's probes:
//! shared between connections, committed atomically with the event that
//! wrote (and not at all if it faults), durable across a restart and
//! `kill -9`, and written by `closed` events too.

mod common;

use common::probes::sync;
use common::{Client, Server};

fn put(client: &mut Client, key: &str, value: &str) {
    client.send(&format!("<put key='{key}' value='{value}'/>"));
    client.expect(&format!("<stored key='{key}'/>"));
}

/// The reply to `<get key='KEY'/>`.
fn get(client: &mut Client, key: &str) -> String {
    client.send(&format!("<get key='{key}'/>"));
    let reply = client.read_until("<value ");
    assert_eq!(reply, "<value ", "unexpected before the value");
    let rest = client.read_until(">");
    if rest.ends_with("/>") {
        format!("<value {rest}")
    } else {
        format!("<value {rest}{}", client.read_until("</value>"))
    }
}

fn scan(client: &mut Client, prefix: &str) -> String {
    client.send(&format!("<scan prefix='{prefix}'/>"));
    client.read_until("</entries>")
}

fn missing(key: &str) -> String {
    format!("<value key='{key}'/>")
}

fn value(key: &str, value: &str) -> String {
    format!("<value key='{key}'>{value}</value>")
}

#[test]
fn what_one_connection_stores_another_reads_and_scans() {
    let server = Server::start("faulty", &[]);
    let mut writer = server.open();
    let mut reader = server.open();
    put(&mut writer, "fruit/apple", "red");
    put(&mut writer, "fruit/banana", "yellow");
    put(&mut writer, "fruit/cherry", "a &lt;dark&gt; &amp; &apos;red&apos;");
    put(&mut writer, "vegetable/leek", "green");
    assert_eq!(get(&mut reader, "fruit/apple"), value("fruit/apple", "red"));
    assert_eq!(
        get(&mut reader, "fruit/cherry"),
        value("fruit/cherry", "a &lt;dark&gt; &amp; &apos;red&apos;")
    );
    assert_eq!(get(&mut reader, "fruit/durian"), missing("fruit/durian"));
    assert_eq!(
        scan(&mut reader, "fruit/"),
        "<entries prefix='fruit/'><entry key='fruit/apple'>red</entry>\
         <entry key='fruit/banana'>yellow</entry>\
         <entry key='fruit/cherry'>a &lt;dark&gt; &amp; &apos;red&apos;</entry></entries>"
    );

    // Overwrite and delete.
    put(&mut reader, "fruit/apple", "green");
    reader.send("<delete key='fruit/banana'/>");
    reader.expect("<deleted key='fruit/banana'/>");
    assert_eq!(
        scan(&mut writer, "fruit/"),
        "<entries prefix='fruit/'><entry key='fruit/apple'>green</entry>\
         <entry key='fruit/cherry'>a &lt;dark&gt; &amp; &apos;red&apos;</entry></entries>"
    );
    // The operator's CLI reads the same store, through the running server.
    assert_eq!(server.store(&["get", "fruit/apple"]), "green\n");
    assert_eq!(
        server.store(&["list", "fruit/"]),
        "fruit/apple\tgreen\nfruit/cherry\ta <dark> & 'red'\n"
    );
    server.store(&["put", "fruit/fig", "purple"]);
    assert_eq!(get(&mut writer, "fruit/fig"), value("fruit/fig", "purple"));
    assert!(server.crashes().is_empty());
}

#[test]
fn a_faulted_event_leaves_no_trace_in_the_store() {
    let server = Server::start("faulty", &["--on-fault", "skip"]);
    let mut client = server.open();
    put(&mut client, "kept", "before");
    put(&mut client, "doomed.2", "old");

    client.send("<put-then-panic key='doomed' value='new' n='5'/>");
    sync(&mut client); // nothing came back: the panic discarded the reply too
    server.wait_for_crashes(1);
    assert_eq!(get(&mut client, "doomed"), missing("doomed"));
    assert_eq!(get(&mut client, "doomed.2"), value("doomed.2", "old"));
    assert_eq!(
        scan(&mut client, "doomed"),
        "<entries prefix='doomed'><entry key='doomed.2'>old</entry></entries>"
    );
    assert_eq!(get(&mut client, "kept"), value("kept", "before"));

    // Under the close policy too, and seen from another connection.
    let server = Server::start("faulty", &[]);
    let mut victim = server.open();
    let mut other = server.open();
    put(&mut victim, "one", "1");
    victim.send("<put-then-panic key='one' value='2' n='3'/>");
    assert!(victim.read_to_end().contains("<internal-server-error"));
    assert_eq!(get(&mut other, "one"), value("one", "1"));
    assert_eq!(
        scan(&mut other, "one"),
        "<entries prefix='one'><entry key='one'>1</entry></entries>"
    );
}

#[test]
fn an_event_over_the_write_limit_faults_and_writes_nothing() {
    let server = Server::start("faulty", &["--on-fault", "skip", "--max-store-write-bytes", "64"]);
    let mut client = server.open();
    let long = "x".repeat(80);
    client.send(&format!("<put key='big' value='{long}'/>"));
    sync(&mut client);
    let crashes = server.wait_for_crashes(1);
    assert!(crashes[0]["reason"].as_str().unwrap().contains("limit"), "{crashes:#?}");
    assert_eq!(get(&mut client, "big"), missing("big"));
}

/// What the server logs when it opens a store that was not closed.
const REPAIRING: &str = "the store was not closed cleanly: checking and repairing it";

#[test]
fn stored_values_survive_a_graceful_restart() {
    let server = Server::start("faulty", &[]);
    let mut client = server.open();
    for i in 0..20 {
        put(&mut client, &format!("restart/{i:02}"), &format!("v{i}"));
    }
    // A connection still open at shutdown gets its closed event, whose
    // writes commit before the server exits.
    client.send("<on-close key='restart/bye' value='shutdown'/>");
    client.expect("<on-close/>");

    let server = server.restart("TERM");
    assert!(client.read_to_end().contains("<system-shutdown"));
    // The store was closed, not left to be repaired (which reads all of it).
    assert_eq!(server.logs_of(REPAIRING), Vec::<serde_json::Value>::new());
    let mut client = server.open();
    let entries: String = (0..20)
        .map(|i| format!("<entry key='restart/{i:02}'>v{i}</entry>"))
        .collect();
    assert_eq!(
        scan(&mut client, "restart/"),
        format!("<entries prefix='restart/'>{entries}<entry key='restart/bye'>shutdown</entry></entries>")
    );
}

#[test]
fn a_store_larger_than_its_cache_reads_back_whole() {
    // 64 KiB of cache for 1 MiB of values: pages are dropped and read
    // again from the file, before and after a restart.
    let server = Server::start("faulty", &["--store-cache", "64KiB"]);
    let mut client = server.open();
    let fill = |i: usize| format!("{i:04}").repeat(1024);
    for i in 0..256 {
        put(&mut client, &format!("big/{i:03}"), &fill(i));
    }
    let read_all = |server: &Server| {
        let mut client = server.open();
        for i in (0..256).rev() {
            let key = format!("big/{i:03}");
            assert_eq!(get(&mut client, &key), value(&key, &fill(i)));
        }
    };
    read_all(&server);
    read_all(&server.restart("TERM"));
}

#[test]
fn writes_whose_replies_arrived_survive_kill_9() {
    const N: usize = 200;
    let server = Server::start("faulty", &[]);
    let mut writers = [server.open(), server.open()];
    // Pipelined, so that commits are grouped; each reply is sent only once
    // its event's writes are durable.
    for (w, writer) in writers.iter_mut().enumerate() {
        let burst: String = (0..N)
            .map(|i| format!("<put key='kill/{w}/{i:03}' value='{i}'/>"))
            .collect();
        writer.send(&burst);
    }
    for (w, writer) in writers.iter_mut().enumerate() {
        for i in 0..N {
            writer.expect(&format!("<stored key='kill/{w}/{i:03}'/>"));
        }
    }
    let server = server.restart("KILL");
    server.wait_for_log(REPAIRING, |_| true);
    let mut client = server.open();
    for w in 0..writers.len() {
        let entries: String = (0..N)
            .map(|i| format!("<entry key='kill/{w}/{i:03}'>{i}</entry>"))
            .collect();
        assert_eq!(
            scan(&mut client, &format!("kill/{w}/")),
            format!("<entries prefix='kill/{w}/'>{entries}</entries>")
        );
    }
    // And the store goes on taking writes.
    put(&mut client, "after", "kill");
    assert_eq!(get(&mut client, "after"), value("after", "kill"));
}

#[test]
fn closed_events_write_to_the_store_however_the_connection_ends() {
    let server = Server::start("faulty", &[]);
    let mut reader = server.open();
    for ending in ["stream-end", "reset", "malformed", "handler", "fault"] {
        let mut client = server.open();
        let id = server.connection_id(&client);
        client.send(&format!("<on-close key='bye/{ending}' value='{ending}'/>"));
        client.expect("<on-close/>");
        match ending {
            "stream-end" => client.send("</stream:stream>"),
            "reset" => client.reset(),
            "malformed" => client.send("<a></b>"),
            "handler" => client.send("<close/>"),
            "fault" => client.send("<panic/>"),
            _ => unreachable!(),
        }
        // The connection is logged closed once its closed event committed.
        server.wait_for_close(id);
        assert_eq!(
            get(&mut reader, &format!("bye/{ending}")),
            value(&format!("bye/{ending}"), ending)
        );
    }
}

#[test]
fn an_event_reading_past_the_read_limit_faults_without_buffering_it_all() {
    let flags = [
        "--on-fault",
        "skip",
        "--max-read-bytes",
        "100KiB",
        "--max-stanza-bytes",
        "256KiB",
    ];
    let server = Server::start("faulty", &flags);
    let mut client = server.open();
    let value = "v".repeat(60_000);
    for i in 0..4 {
        put(&mut client, &format!("big:{i}"), &value);
    }
    assert_eq!(get(&mut client, "big:0"), self::value("big:0", &value));
    client.send("<scan prefix='big:'/>");
    sync(&mut client);
    let crashes = server.wait_for_crashes(1);
    assert_eq!(crashes[0]["kind"], "trap", "{crashes:#?}");
    let reason = crashes[0]["reason"].as_str().unwrap();
    assert!(reason.contains("exceed the limit of 102400 bytes"), "{reason}");
}
