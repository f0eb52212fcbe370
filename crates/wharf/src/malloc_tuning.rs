//! Process-wide allocator setting made once at startup, before any thread exists.
//!
//! glibc serves allocations above `M_MMAP_THRESHOLD` with their own mapping, returned to the
//! kernel on free, but by default it raises that threshold to the size of any such block freed.
//! Every login verifies an argon2id hash with a 19 MiB working buffer on a blocking thread: after
//! the first one is freed the threshold sits at 19 MiB, and each later buffer comes from that
//! thread's arena, which keeps the pages. With 64 logins at once the arenas held about 260 MiB
//! after the sessions were gone (1,000 idle TLS sessions: 259 KiB each instead of 25 KiB; see
//! docs/benchmarks.md, "Profiling notes"). A fixed threshold (which also turns the dynamic
//! adjustment off) keeps large, short-lived buffers out of the arenas.

/// Blocks of at least this size get their own mapping. Above the 256 KiB FETCH output chunk, so
/// the IMAP write path keeps reusing heap memory.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// Fixes glibc's mmap threshold (no-op on other C libraries, whose allocators differ).
#[allow(unsafe_code, reason = "mallopt(3) has no safe wrapper; see SAFETY")]
pub fn fix_mmap_threshold() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only changes allocator parameters; it is called from `main` before the
        // runtime starts any thread, and the value is within glibc's documented range.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if ok != 1 {
            eprintln!("wharf: warning: mallopt(M_MMAP_THRESHOLD) refused; idle memory may grow");
        }
    }
}
