//! The allocator of a handler built for `wasm32-unknown-unknown` (no WASI).
//!
//! Every event runs in a fresh instance, so what matters is the cost of an
//! instance's first allocations. Rust's own allocator on that target gets
//! them from `memory.grow`, and in a fresh instance per event that growth,
//! and the host resetting the grown memory afterwards, cost more than
//! leaving WASI out saved (BENCHMARKS.md, "Without WASI"). This one serves
//! them from an arena the module starts with — zeroed pages, which the host
//! backs only once touched — and grows the memory only for an event that
//! needs more than the arena holds. The allocator is talc's, in its
//! single-threaded form: a handler instance has one thread.

use core::alloc::Layout;
use core::arch::wasm32::memory_grow;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

/// Bytes every instance starts with for its allocations: enough for most
/// events, and small, because the host resets a fresh instance's memory
/// after every event in time that grows with its size.
const ARENA_BYTES: usize = 256 << 10;
/// A wasm page.
const PAGE_BYTES: usize = 64 * 1024;
/// The least the memory grows by once the arena is used up, so an event
/// that allocates a lot grows it a few times, not once per allocation.
const MIN_GROWTH_PAGES: usize = 16;

static mut ARENA: [MaybeUninit<u8>; ARENA_BYTES] = [MaybeUninit::uninit(); ARENA_BYTES];

#[global_allocator]
static ALLOCATOR: TalcSyncCell<ArenaThenGrow, WasmBinning> = TalcSyncCell::new_wasm(ArenaThenGrow {
    arena_taken: false,
    end: None,
});

/// Where the allocator gets memory: the arena first, then `memory.grow`.
#[derive(Debug)]
struct ArenaThenGrow {
    arena_taken: bool,
    /// The end of the heap grown last, to extend it when the memory grows
    /// right after it.
    end: Option<NonNull<u8>>,
}

// SAFETY: `acquire` allocates nothing, and hands talc only memory nothing
// else uses: the arena (named nowhere else) and pages `memory.grow` added.
unsafe impl Source for ArenaThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_taken {
            talc.source.arena_taken = true;
            // SAFETY: see the impl's comment.
            return unsafe { talc.claim((&raw mut ARENA).cast(), ARENA_BYTES) }
                .map(drop)
                .ok_or(());
        }
        // Room for the allocation, its alignment and talc's bookkeeping.
        let needed = (layout.size() + layout.align()).div_ceil(PAGE_BYTES) + 1;
        let pages = needed.max(MIN_GROWTH_PAGES);
        let previous = memory_grow(0, pages);
        if previous == usize::MAX {
            return Err(());
        }
        let base = (previous * PAGE_BYTES) as *mut u8;
        let bytes = pages * PAGE_BYTES;
        talc.source.end = match talc.source.end.take() {
            // SAFETY: see the impl's comment.
            Some(end) if end.as_ptr() == base => Some(unsafe { talc.extend(end, base.wrapping_add(bytes)) }),
            _ => unsafe { talc.claim(base, bytes) },
        };
        talc.source.end.map(drop).ok_or(())
    }
}
