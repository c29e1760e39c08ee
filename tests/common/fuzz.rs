//! What the bounded fuzz runs share: a seeded generator (a failing case is
//! reproduced from its seed), mutations of well-formed seeds towards the
//! edges of XML, and how many cases to run.

/// A xorshift64* generator: small, fast and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Pieces that take XML to its edges: markup, quotes, references (known,
/// unknown, forbidden characters), CDATA and comments, declarations,
/// prefixes, bytes that are not UTF-8, and the stream's own tags.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"/>",
    b"</",
    b"'",
    b"\"",
    b"=",
    b" ",
    b"&amp;",
    b"&lt;",
    b"&#65;",
    b"&#x0;",
    b"&#xD800;",
    b"&bogus;",
    b"&",
    b"<![CDATA[",
    b"]]>",
    b"<!--",
    b"-->",
    b"<?xml version='1.0'?>",
    b"<!DOCTYPE x [<!ENTITY a 'b'>]>",
    b"xmlns='urn:x'",
    b"xmlns:p='urn:p'",
    b"p:",
    b"xml:lang='en'",
    b"\0",
    b"\x01",
    b"\xff",
    b"\xc3\xa9",
    b"\xe2\x80",
    b"</stream:stream>",
    b"<stream:stream>",
    b"<message>",
    b"</message>",
    b"<body>",
    b"</body>",
];

/// `seed` with one to eight mutations: tokens inserted, spans deleted or
/// repeated, bytes changed, or a piece of another seed spliced in.
pub fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[&str]) -> Vec<u8> {
    let mut bytes = seed.to_vec();
    for _ in 0..=rng.below(8) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(6) {
            0 | 1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                bytes.splice(at..at, token.iter().copied());
            }
            2 => {
                let end = (at + rng.below(16)).min(bytes.len());
                bytes.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(32)).min(bytes.len());
                let span = bytes[at..end].to_vec();
                bytes.splice(at..at, span);
            }
            4 if at < bytes.len() => bytes[at] = rng.next() as u8,
            _ => {
                let other = seeds[rng.below(seeds.len())].as_bytes();
                let from = rng.below(other.len());
                let end = (from + rng.below(64)).min(other.len());
                bytes.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
    bytes
}

/// Cases to run: `EJ_FUZZ_CASES` if set (a longer run), else `default`.
pub fn cases(default: usize) -> usize {
    super::setting("EJ_FUZZ_CASES", default)
}

/// The seed of the run: `EJ_FUZZ_SEED` if set (to reproduce a failure),
/// else one from the clock, printed so a failure can be replayed.
pub fn seed() -> u64 {
    let seed = std::env::var("EJ_FUZZ_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
            now.map_or(1, |now| now.as_nanos() as u64)
        });
    println!("EJ_FUZZ_SEED={seed}");
    seed
}
