//! How the allocator (mimalloc, the binary's global allocator) hands freed memory back.
//!
//! By default mimalloc (v3, as vendored) returns ("purges") freed pages to the kernel a second
//! after they empty. A backfill frees a read batch of killmails and allocates the next one
//! seconds later, so each batch faulted its memory in again and the kernel zeroed it: in a
//! profile of an incremental month, a quarter of the parse thread's time was `clear_page_erms`
//! under mimalloc's page allocation. Batch commands ([`keep_freed_memory`]) keep freed pages
//! for reuse instead; their memory is still bounded by the read batch (the peak is what was
//! live at once, and the process ends with the job). Long-running commands (`run`, `serve`)
//! keep the default, so memory a spike took goes back.
//!
//! Every command also turns transparent huge pages off for the process
//! ([`no_transparent_huge_pages`]): mimalloc asks the kernel for them (`MADV_HUGEPAGE`), so
//! each first touch of its memory had the kernel zero 2 MB, and on our machines (VMs) a bulk
//! engine step spent 40% of its time there. Without them the engine's bulk step ran 45% faster
//! (docs/benchmarks.md, fifth session) and nothing measured got slower.

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay` of the vendored mimalloc's `mimalloc.h` (v2 and v3): milliseconds
/// before freed memory is purged (default 1000 in v3's `options.c`), -1 for never. Not
/// exported by `libmimalloc-sys` 0.1.49, which is pinned for that reason.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Never purge freed memory: it stays with the process for the next allocations. Call it at
/// the start of `main`, before other threads exist (mimalloc's options are not thread safe).
pub fn keep_freed_memory() {
    // SAFETY: a plain C call with a valid option number; called before any thread is spawned.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

/// `mi_option_allow_thp` of the vendored mimalloc v3's `mimalloc.h`: whether it asks for
/// transparent huge pages (default 1).
const MI_OPTION_ALLOW_THP: mi_option_t = 43;

/// No transparent huge pages for this process: mimalloc stops asking for them, and the kernel
/// stops backing the process's memory with them, including what was mapped before (the flag is
/// checked at each page fault). Call it at the start of `main`, before other threads exist.
pub fn no_transparent_huge_pages() {
    // SAFETY: a plain C call with a valid option number; called before any thread is spawned.
    unsafe { mi_option_set(MI_OPTION_ALLOW_THP, 0) }
    // SAFETY: prctl with PR_SET_THP_DISABLE takes one integer argument and touches no memory of
    // ours. It fails only on kernels without it (before 3.15), where there is nothing to do.
    let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

/// Whether the kernel backs this process's memory with transparent huge pages (false after
/// [`no_transparent_huge_pages`]).
pub fn transparent_huge_pages_allowed() -> bool {
    // SAFETY: PR_GET_THP_DISABLE takes no arguments and returns the flag.
    unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0 }
}

/// The purge delay in effect, in milliseconds (-1: never).
#[allow(clippy::useless_conversion)] // `c_long` is `i64` here, `i32` on other targets
pub fn purge_delay_ms() -> i64 {
    // SAFETY: a plain C call with a valid option number.
    i64::from(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What mimalloc reads for an option at start: the environment's `var`, else `default`.
    fn option_default(var: &str, default: i64) -> i64 {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    /// The option number is the purge delay's: its default is v3's 1000 ms (unless the
    /// environment sets it), and setting it takes.
    #[test]
    fn the_option_is_mimallocs_purge_delay() {
        let expected = option_default("MIMALLOC_PURGE_DELAY", 1000);
        assert_eq!(purge_delay_ms(), expected);
        keep_freed_memory();
        assert_eq!(purge_delay_ms(), -1);
    }

    /// The option number is `allow_thp`'s (its default is 1 unless the environment sets it),
    /// and after the call the kernel's flag is set and the option is off.
    #[test]
    fn transparent_huge_pages_go_off() {
        let expected = option_default("MIMALLOC_ALLOW_THP", 1);
        // SAFETY: a plain C call with a valid option number.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_ALLOW_THP) }, expected);
        no_transparent_huge_pages();
        assert!(!transparent_huge_pages_allowed());
        // SAFETY: a plain C call with a valid option number.
        assert_eq!(unsafe { mi_option_get(MI_OPTION_ALLOW_THP) }, 0);
    }
}
