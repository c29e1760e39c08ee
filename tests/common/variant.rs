//! Another build of the same handler: a module with a custom section
//! appended behaves the same and has another digest, so a reload swaps it in
//! (and a compile cache misses it) without a second guest to build.
//! Shared by the hot-swap tests and the swap benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};

/// `bytes` (a component) with a custom section named `ej-variant` holding `tag`.
pub fn variant(bytes: &[u8], tag: &str) -> Vec<u8> {
    let name = b"ej-variant";
    let mut payload = vec![u8::try_from(name.len()).expect("a short name")];
    payload.extend_from_slice(name);
    payload.extend_from_slice(tag.as_bytes());
    let mut out = bytes.to_vec();
    out.push(0); // custom section id
    leb128(&mut out, payload.len());
    out.extend_from_slice(&payload);
    out
}

/// Appends `n` as an unsigned LEB128 number, the way wasm encodes sizes.
fn leb128(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Builds of one handler to swap in, one after another: two that take
/// turns (each compiled once, then found in the compile cache), or a new
/// one every time (never compiled before).
pub struct Builds {
    original: Vec<u8>,
    fresh: bool,
    count: u64,
}

impl Builds {
    pub fn new(original: Vec<u8>, fresh: bool) -> Self {
        Self {
            original,
            fresh,
            count: 0,
        }
    }

    pub fn next(&mut self) -> Vec<u8> {
        // Fresh builds are numbered across all of the process's `Builds`,
        // so that no two are the same.
        static FRESH: AtomicU64 = AtomicU64::new(0);
        self.count += 1;
        let tag = if self.fresh {
            format!("fresh-{}-{}", std::process::id(), FRESH.fetch_add(1, Ordering::Relaxed))
        } else {
            format!("turn-{}", self.count % 2)
        };
        variant(&self.original, &tag)
    }
}
