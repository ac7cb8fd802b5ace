//! How the daemon gives memory back when it is idle.
//!
//! A registration daemon is idle most of the day, and what it used for a
//! burst of mail should not stay with it: the understanding threads end
//! after a quiet spell and take their regex caches along
//! (`understand::worker`), database connections close when unused
//! (`storage::sqlite::IDLE_CONNECTION`), and the memory they freed is handed
//! back to the kernel here. Measured in `BENCHMARKS.md` (idle RSS).

/// Fix glibc's thresholds, once at start. By default glibc raises its mmap
/// threshold each time a big block is freed, and the trim threshold with it
/// (up to 64 MB): after a burst of mail had freed its regex caches, the
/// freed top of a worker's arena stayed resident and `malloc_trim` does not
/// touch an arena's top. Fixed thresholds: blocks over 4 MiB get their own
/// mappings (returned on free), and a free top over 1 MiB is trimmed. (256 KiB
/// for the first measured the same idle memory; 4 MiB spares the backlog the
/// mapping and unmapping of the regex caches as they grow.) And at most two
/// arenas instead of up to eight per core: every thread that ever ran
/// (database connections, understanding workers) left an arena with its own
/// free top and scraps resident (idle RSS −0.4 MiB; the backlog, where two
/// workers understand and a few threads talk to servers and the database,
/// measured the same in an A/B).
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called once at start,
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Give the free memory of every glibc arena back to the kernel. glibc keeps
/// what a thread freed for that thread's next allocation, also when the
/// thread has ended (an understanding worker) or will not allocate that much
/// again (a closed database connection's page cache): after the connections
/// of a burst had closed, 20 MB of one arena were free in 469 pieces and
/// 0.9 MiB of them still resident. Cheap: a walk over the free lists.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory of glibc's arenas to the
    // kernel; it takes no pointers and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
