//! The `banter` binary's memory allocator: mimalloc, set to give freed memory back to the
//! system at once, plus a tuning of glibc's allocator for what still uses it (C code in the
//! process). `main` installs [`Allocator`] and calls [`tune`] first thing; tests and benches
//! that link this library keep their own allocator.
//!
//! Why mimalloc: a node's resident memory per viewer halves against glibc's (10,000 viewers of
//! a hot video: 166–188 MiB → 78–86 MiB over four pairs, CPU unchanged or lower;
//! `BENCHMARKS.md`), and a profile of a node through a reconnect storm put about a third of its
//! CPU in glibc's `malloc`/`free`.
//!
//! Why purge at once: with mimalloc's defaults (purge 1 s after a free, but only when the
//! allocator runs again; arenas committed eagerly) a fresh node started at 48 MiB instead of
//! 20, and 200 sign-ups (Argon2: 19 MiB of working memory per hash) left it at 123 MiB for
//! good. Purging freed pages at once and committing arenas on demand gives 24 MiB at start and
//! 26 MiB after the same sign-ups, with no measurable CPU cost in the hot-video scenario.
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), so
//! large blocks freed by C code would end up in heap arenas that glibc rarely gives back; the
//! threshold is fixed at 1 MiB.
//!
//! Kept out: musl and other platforms are left as they are.

/// The allocator `main` installs as `#[global_allocator]`.
pub type Allocator = mimalloc::MiMalloc;

/// `mi_option_t` values of the mimalloc release `libmimalloc-sys` builds (v3's `mimalloc.h`);
/// the crate names only the options that kept their number across releases.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets mimalloc to purge freed memory at once and commit arena memory on demand, and fixes
/// glibc's mmap threshold at 1 MiB (glibc only). Call before any other thread exists. An option
/// set in the environment (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) is left as
/// the operator set it.
pub fn tune() {
    for (option, variable) in [
        (MI_OPTION_PURGE_DELAY, "MIMALLOC_PURGE_DELAY"),
        (MI_OPTION_ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mi_option_set only changes a known option (mimalloc read the environment
            // before `main`); it is called before any other thread exists.
            unsafe { libmimalloc_sys::mi_option_set(option, 0) };
        }
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and M_MMAP_THRESHOLD with a positive value is always accepted.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> (std::ffi::c_long, std::ffi::c_long) {
        // SAFETY: reading an option.
        unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
            )
        }
    }

    /// The numbers name the options meant: before `tune` they hold mimalloc's documented
    /// defaults for the purge delay (1,000 ms) and arena eager commit (2), after it zero.
    /// (Each test runs in its own process under nextest.)
    #[test]
    fn tune_sets_the_purge_delay_and_eager_commit_options() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(options(), (1000, 2), "mimalloc's defaults");
        }
        tune();
        assert_eq!(options(), (0, 0));
    }
}
