//! Tuning of glibc's allocator for this workload, applied once at process start by `main`.
//!
//! glibc raises its mmap threshold each time a large mmapped block is freed (up to 32 MiB), so
//! after the first few Argon2 hashes (19 MiB of working memory each) later hashes are carved out
//! of heap arenas, which glibc rarely gives back: a fresh node's RSS grew from 14 MB to 1.6–1.8
//! GB after 100 sign-ups. A fixed threshold keeps every block of 1 MiB or more mmapped and
//! returned to the system when freed.
//!
//! Kept out: any other allocator choice; musl and other platforms are left as they are.

/// Fixes the mmap threshold at 1 MiB (glibc only; elsewhere this does nothing).
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other thread
    // exists, and M_MMAP_THRESHOLD with a positive value is always accepted.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
