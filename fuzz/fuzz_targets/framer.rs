//! Fuzzes the framer: any bytes, cut into any chunks, must frame exactly as
//! the same bytes pushed whole, and never panic.
//!
//! `cargo +nightly fuzz run framer` (with `cargo install cargo-fuzz`).
#![no_main]

use ej::framer::{Frame, FrameError, Framer};
use libfuzzer_sys::fuzz_target;

/// Every frame (or the error) the framer yields for `chunks`.
fn frames<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> (Vec<Frame>, Option<FrameError>) {
    let mut framer = Framer::new(4096);
    let mut frames = Vec::new();
    for chunk in chunks {
        framer.push(chunk);
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(error) => return (frames, Some(error)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else { return };
    let chunk = usize::from(cut % 17) + 1;
    let whole = frames(std::iter::once(stream));
    let chunked = frames(stream.chunks(chunk));
    assert_eq!(whole.0, chunked.0, "frames depend on how the bytes were cut");
    assert_eq!(whole.1.is_some(), chunked.1.is_some());
});
