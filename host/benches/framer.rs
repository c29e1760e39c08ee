//! Framing throughput, best case against worst case. The framer must stay
//! linear: a stanza trickled in one byte at a time costs a small constant
//! factor more per byte than many stanzas arriving in large reads, never a
//! factor that grows with the stanza's size.
//!
//! - `best`: 64 stanzas of 1 KiB after the stream header, pushed in 16 KiB
//!   chunks (the size of one socket read).
//! - `big_stanza_chunked`: one 64 KiB stanza of nested elements, pushed in
//!   16 KiB chunks (to separate the stanza's size from the push size).
//! - `worst_bytewise`: the same 64 KiB stanza, one byte per push.
//! - `worst_start_tag_bytewise`: a 64 KiB stanza that is one start tag with
//!   thousands of attributes, one byte per push.
//! - `worst_bytewise_16k`: a 16 KiB stanza like `worst_bytewise`'s, one byte
//!   per push: the same MB/s as at 64 KiB means framing is linear.
//!
//! Run with `cargo bench -p ej --bench framer`.

mod common;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

use ej::framer::Framer;
use ej::limits::ConnectionLimits;

/// Bytes of one socket read in a session.
const READ_CHUNK: usize = 16 * 1024;

/// Pushes `input` in chunks of `chunk` bytes, taking every frame after each
/// push; returns how many frames it held.
fn frame(input: &[u8], chunk: usize, max: usize) -> usize {
    let mut framer = Framer::new(max);
    let mut frames = 0;
    for piece in input.chunks(chunk) {
        framer.push(piece);
        while let Some(frame) = framer.next_frame().expect("the input is a valid stream") {
            black_box(&frame);
            frames += 1;
        }
    }
    frames
}

/// A stanza of exactly `size` bytes: a message whose payload is many small
/// elements with attributes, text, an entity, a comment and CDATA.
fn nested_stanza(size: usize) -> String {
    let tail = "</body></message>";
    let mut stanza =
        String::from("<message from='juliet@example.com/balcony' to='romeo@example.net/garden' type='chat'>");
    let mut i = 0;
    while stanza.len() + 200 < size {
        stanza.push_str(&format!(
            "<item xmlns='urn:example:item' n='{i}' label=\"a 'quoted' &amp; escaped value\">\
             text &amp; more<!-- a comment --><![CDATA[<raw/>]]></item>"
        ));
        i += 1;
    }
    stanza.push_str("<body>");
    stanza.push_str(&"z".repeat(size - stanza.len() - tail.len()));
    stanza.push_str(tail);
    assert_eq!(stanza.len(), size);
    stanza
}

/// A stanza of exactly `size` bytes that is a single empty-element tag with
/// as many attributes as fit.
fn start_tag_stanza(size: usize) -> String {
    let mut stanza = String::from("<presence");
    let mut i = 0;
    while stanza.len() + 40 < size {
        stanza.push_str(&format!(" attr{i}='value {i}'"));
        i += 1;
    }
    let pad = size - stanza.len() - " last=''/>".len();
    stanza.push_str(&format!(" last='{}'/>", "v".repeat(pad)));
    assert_eq!(stanza.len(), size);
    stanza
}

fn framer(c: &mut Criterion) {
    let max = ConnectionLimits::default().max_stanza_bytes;
    let header = common::stream_header("example.com");
    let stanza = common::message(1024, "");

    // The largest stanza accepted is one that, with the default namespace
    // it inherits from the header, is exactly the limit.
    let largest = max - " xmlns='jabber:client'".len();
    let best = format!("{header}{}", stanza.repeat(64));
    let nested = format!("{header}{}", nested_stanza(largest));
    let start_tag = format!("{header}{}", start_tag_stanza(largest));
    let nested_16k = format!("{header}{}", nested_stanza(max / 4));

    let mut group = c.benchmark_group("framer");
    let cases: [(&str, &str, usize, usize); 5] = [
        ("best", &best, READ_CHUNK, 65),
        ("big_stanza_chunked", &nested, READ_CHUNK, 2),
        ("worst_bytewise", &nested, 1, 2),
        ("worst_start_tag_bytewise", &start_tag, 1, 2),
        ("worst_bytewise_16k", &nested_16k, 1, 2),
    ];
    for (name, input, chunk, frames) in cases {
        assert_eq!(frame(input.as_bytes(), chunk, max), frames, "{name}: frames");
        group.throughput(Throughput::BytesDecimal(input.len() as u64));
        group.bench_function(name, |b| b.iter(|| frame(black_box(input.as_bytes()), chunk, max)));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion(3);
    targets = framer
}
criterion_main!(benches);
