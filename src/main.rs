//! The `strand` program: sets up the process, then hands the command line to [`cli`].

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    // A busy seed or tracker needs more descriptors than the 1,024 many systems start us
    // with; when the system refuses, its limit stays and the tracker sheds at it.
    let _ = strand::limits::raise_open_file_limit();
    cli::main()
}

/// Puts every thread on one glibc malloc arena. By default glibc gives threads that contend
/// for malloc arenas of their own, up to eight per core, and keeps each arena's freed pages;
/// with a thread per connection, new peers keep touching fresh arenas. Measured with
/// `make soak` (a seed under churn, 2 cores): anonymous memory rose from 0.4 to 3.2 MiB over
/// 13 minutes before levelling off; with two arenas it levelled off at 1.6 MiB within 3
/// minutes. One arena rather than one per core: blocks are allocated by the peer threads
/// and freed by the writer, and with two arenas each arena's peak of live blocks counted
/// separately in the resident set. A 1 GiB loopback download from two seeders (3 rounds,
/// interleaved) peaked at 28.2-29.2 MiB with two arenas and 21.8-22.0 MiB with one, in the
/// same time (1.31-1.36 s against 1.34-1.46 s); 300 peers (`bench/scale.sh`, 2 rounds) took
/// 16.4 s against 15.9 s, at the same 40-41 MiB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only changes a malloc tuning parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}
