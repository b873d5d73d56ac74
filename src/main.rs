//! The `claimline` binary: the command line lives in
//! `claimline::commands`, one file per subcommand.

use std::process::ExitCode;

/// mimalloc: the service allocates and frees many small strings per event
/// (serde, claim lines, Kafka payloads), where it is several times cheaper
/// than glibc's allocator. The benchmarks use it too, to measure the same.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's option enum (v2 and v3 alike;
/// libmimalloc-sys does not export it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long mimalloc keeps freed memory committed before returning it.
/// mimalloc 3 (the crate's default) waits 1 s, so several batches' garbage
/// is resident at once: `make bench-e2e` (100,000 events) peaked at
/// 158-167 MiB with 1,000 ms, 150 MiB with 10, 138-146 with 1 (the issue's
/// bound is 150), for about 0.8 s more service CPU over the backlog (3.0
/// -> 3.8 s; the service uses about a third of a core, Postgres is the
/// limit) and the same steady throughput within the machine's noise.
const PURGE_DELAY_MS: std::os::raw::c_long = 1;

/// Huge pages: with mimalloc's default it asks the kernel for transparent
/// huge pages (madvise), so each fault after a purge zeroes 2 MiB, and a
/// huge page counts whole in the RSS. Built without that (the `no_thp`
/// feature of libmimalloc-sys), `make bench-e2e` measured peak RSS 94-103
/// MiB instead of 130-136 and 0.3 s less service CPU per 100,000 events
/// (issue 24). Where the kernel's THP is `always` rather than `madvise`,
/// `MIMALLOC_ALLOW_THP=0` turns it off for the process (the image sets it).
///
/// Sets PURGE_DELAY_MS as mimalloc's default; `MIMALLOC_PURGE_DELAY` in
/// the environment still wins (mimalloc reads it over the default).
#[allow(unsafe_code)]
fn allocator_defaults() {
    // SAFETY: a plain setter of an option's default; it is not thread
    // safe, and main calls it before starting any thread.
    unsafe { libmimalloc_sys::mi_option_set_default(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
}

/// glibc's allocator, which librdkafka (C) and OpenSSL use while Rust
/// uses mimalloc: at most 2 arenas, and blocks of 128 KiB or more mapped
/// and returned to the kernel when freed, at fixed thresholds. By default
/// each thread that calls malloc may get an arena of its own (up to 8 per
/// core), and the first large block freed (a fetch response, up to 5 MiB
/// from Tansu) raises the mapping threshold to its size and lets every
/// arena keep twice that unreturned: `make bench-e2e` measured 11.8-25.1
/// MiB resident in 11-12 thread arenas at the service's peak, and 0.4-2.4
/// MiB in one with these settings (peak RSS 80.9-86.5 MiB against
/// 93.4-98.8, same throughput within the machine's noise). At most 2
/// arenas alone left 14.4-22.8 MiB in one: the fixed thresholds matter.
/// Skipped when `GLIBC_TUNABLES` sets any `glibc.malloc` tunable: the
/// operator's wins.
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn glibc_malloc_defaults() {
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.")) {
        return;
    }
    for (param, value) in [
        (libc::M_ARENA_MAX, 2),
        (libc::M_MMAP_THRESHOLD, 128 * 1024),
        (libc::M_TRIM_THRESHOLD, 128 * 1024),
    ] {
        // SAFETY: mallopt only sets allocator parameters; main calls it
        // before starting any thread.
        unsafe { libc::mallopt(param, value) };
    }
}

#[cfg(not(target_env = "gnu"))]
fn glibc_malloc_defaults() {}

fn main() -> ExitCode {
    allocator_defaults();
    glibc_malloc_defaults();
    claimline::commands::main()
}
