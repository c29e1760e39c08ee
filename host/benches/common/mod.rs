//! What the benchmarks share: the example echo handler, built beforehand by
//! `cargo xtask guests` (which `cargo xtask bench` runs first).
#![allow(dead_code)] // each bench binary uses its own part of this module

use std::path::PathBuf;

/// The workspace's target directory, as `cargo xtask guests` sees it.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    )
}

/// The echo handler component. Panics with what to run if it is not built.
pub fn echo_module_path() -> PathBuf {
    let path = target_dir().join("wasm32-wasip2/release/ej_example_echo.wasm");
    assert!(
        path.is_file(),
        "the echo handler is not built ({} is missing): run `cargo xtask guests` \
         (or `cargo xtask bench`, which builds the handlers and then runs the benchmarks)",
        path.display()
    );
    path
}

/// The opening tag of a client stream for `domain`, as the `stream-open`
/// event carries it.
pub fn stream_tag(domain: &str) -> String {
    format!(
        "<stream:stream xmlns='jabber:client' \
         xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>"
    )
}

/// What a client sends to open its stream: an XML declaration and the tag.
pub fn stream_header(domain: &str) -> String {
    format!("<?xml version='1.0'?>{}", stream_tag(domain))
}

/// A `<message/>` chat stanza of exactly `size` bytes, its body padded with
/// text; `attrs` (e.g. namespace declarations) go right after the name.
pub fn message(size: usize, attrs: &str) -> String {
    let head = format!(
        "<message{attrs} from='juliet@example.com/balcony' to='romeo@example.net/garden' \
         type='chat' id='ktx72v49'><body>"
    );
    let tail = "</body></message>";
    assert!(
        size >= head.len() + tail.len(),
        "a message of {size} bytes is too small"
    );
    let text: String = "Art thou not Romeo, and a Montague? "
        .chars()
        .cycle()
        .take(size - head.len() - tail.len())
        .collect();
    let stanza = format!("{head}{text}{tail}");
    assert_eq!(stanza.len(), size);
    stanza
}

/// What a handler's imports reach (a store and a registry), with the store
/// in a scratch directory removed when this is dropped.
pub struct BenchEnv {
    pub env: ej::imports::Env,
    dir: PathBuf,
}

impl BenchEnv {
    pub fn new(bench: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ej-bench-{bench}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let env = ej::imports::Env {
            db: std::sync::Arc::new(ej::db::Db::open(&dir).expect("opening the store")),
            registry: std::sync::Arc::new(ej::registry::Registry::default()),
        };
        Self { env, dir }
    }
}

impl Drop for BenchEnv {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
