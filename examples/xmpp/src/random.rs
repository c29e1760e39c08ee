//! Random bytes (salts, tokens, identifiers), from WASI's `random`
//! interface: with the wall clock (see [`crate::time`]) all the handler
//! asks of WASI. It is built for `wasm32-unknown-unknown` and imports those
//! two interfaces by name, rather than the thirteen Rust's standard library
//! brings on `wasm32-wasip2`, which every fresh instance would link.

/// `N` random bytes from the host's secure source.
pub fn bytes<const N: usize>() -> [u8; N] {
    let random = wasip2::random::random::get_random_bytes(N as u64);
    random.try_into().expect("WASI gives as many random bytes as asked")
}
