//! Shared by every target: a global allocator that records the largest single allocation, so
//! a parser that allocates far more than its input justifies fails like a crash does.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes of allocation allowed per input byte (decoded values are bigger than their text:
/// a 3-byte `i0e` is a 32-byte `Value`, and a `Vec` may hold twice what it uses).
pub const PER_INPUT_BYTE: usize = 64;
/// Allowance independent of the input: small fixed buffers, formatting, hash sets.
pub const SLACK: usize = 128 * 1024;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// `System`, recording the size of the largest allocation or reallocation.
pub struct Tracking;

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

/// Runs `f` on an input of `input_len` bytes and panics if any single allocation it made was
/// over `PER_INPUT_BYTE * input_len + SLACK` bytes.
pub fn bounded(input_len: usize, f: impl FnOnce()) {
    LARGEST.store(0, Ordering::Relaxed);
    f();
    let largest = LARGEST.load(Ordering::Relaxed);
    let limit = PER_INPUT_BYTE * input_len + SLACK;
    assert!(
        largest <= limit,
        "allocated {largest} bytes at once for a {input_len}-byte input (limit {limit})"
    );
}
