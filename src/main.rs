//! The `strand` program: sets up the process, then hands the command line to [`cli`].

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    tune_malloc();
    // A busy seed or tracker needs more descriptors than the 1,024 many systems start us
    // with; when the system refuses, its limit stays and the tracker sheds at it.
    let _ = strand::limits::raise_open_file_limit();
    cli::main()
}

/// Tunes glibc's malloc for a thread per connection.
///
/// Puts every thread on one arena. By default glibc gives threads that contend for malloc
/// arenas of their own, up to eight per core, and keeps each arena's freed pages; with a
/// thread per connection, new peers keep touching fresh arenas. Measured with
/// `make soak` (a seed under churn, 2 cores): anonymous memory rose from 0.4 to 3.2 MiB over
/// 13 minutes before levelling off; with two arenas it levelled off at 1.6 MiB within 3
/// minutes. One arena rather than one per core: blocks are allocated by the peer threads
/// and freed by the writer, and with two arenas each arena's peak of live blocks counted
/// separately in the resident set. A 1 GiB loopback download from two seeders (3 rounds,
/// interleaved) peaked at 28.2-29.2 MiB with two arenas and 21.8-22.0 MiB with one, in the
/// same time (1.31-1.36 s against 1.34-1.46 s); 300 peers (`bench/scale.sh`, 2 rounds) took
/// 16.4 s against 15.9 s, at the same 40-41 MiB.
///
/// Also keeps up to [`MALLOC_TRIM_FROM`] of freed memory at the top of the heap instead of
/// giving it back at once. glibc's default (128 KiB, raised as large blocks are freed) returned
/// memory to the kernel as the writer freed blocks, and the peer threads took it back, every
/// page faulted in and zeroed again: `brk` was 2.6 % of a 1 GiB download's CPU, and its page
/// faults more. With the threshold, CPU fell 7 % on the 1 GiB torrent (2.09 to 1.94 s, 6
/// interleaved runs each) and on the 2,000 files (0.665 to 0.616 s, 8 each), at the same
/// peak resident set (17.5 MiB; 14.5 and 13.3 MiB): what stays is memory the blocks in flight
/// used anyway.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    // SAFETY: mallopt only changes a malloc tuning parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_FROM);
    }
}

/// Freed memory at the top of the heap that glibc keeps for reuse: the largest piece memory
/// budget, [`strand::limits::PIECE_MEMORY_BUDGET`].
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_FROM: libc::c_int = strand::limits::PIECE_MEMORY_BUDGET as libc::c_int;

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
