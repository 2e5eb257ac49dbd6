//! The table's bucket array, backed by transparent huge pages on Linux.
//!
//! A lookup touches one random bucket per prompt block, each on its own 4 KiB
//! page of a table of hundreds of MB: with 4 KiB pages nearly every probe
//! also misses the TLB (a page walk, nested under virtualisation), even when
//! the bucket itself is cached. With 2 MiB pages the TLB covers the buckets a
//! lookup revisits and a cold probe pays one miss instead of several.
//!
//! On Linux the array is a private anonymous mapping advised with
//! `MADV_HUGEPAGE` (so it works with THP in `madvise` mode, the common
//! default); all-zero memory is a valid empty bucket, so nothing is written
//! up front and untouched buckets cost no memory. If the mapping fails, and
//! on other platforms or under loom, it is an ordinary boxed slice.

// `loom` is a cfg set only by the loom test run.
#![allow(unexpected_cfgs)]

use super::bucket::Bucket;
use std::ops::Deref;

/// A fixed array of empty buckets.
pub(crate) struct Buckets {
    inner: Inner,
}

enum Inner {
    Boxed(Box<[Bucket]>),
    #[cfg(all(target_os = "linux", not(loom)))]
    Mapped(mapped::Mapping),
}

impl Buckets {
    /// `len` empty buckets, or `None` when the memory cannot be had (the
    /// mapping is refused and so is an ordinary allocation): an error for
    /// the caller, never an abort.
    pub(crate) fn new(len: usize) -> Option<Buckets> {
        #[cfg(all(target_os = "linux", not(loom)))]
        if let Some(m) = mapped::Mapping::new(len) {
            return Some(Buckets {
                inner: Inner::Mapped(m),
            });
        }
        let mut v = Vec::new();
        v.try_reserve_exact(len).ok()?;
        v.extend((0..len).map(|_| Bucket::default()));
        Some(Buckets {
            inner: Inner::Boxed(v.into_boxed_slice()),
        })
    }
}

impl Deref for Buckets {
    type Target = [Bucket];

    #[inline]
    fn deref(&self) -> &[Bucket] {
        match &self.inner {
            Inner::Boxed(b) => b,
            #[cfg(all(target_os = "linux", not(loom)))]
            Inner::Mapped(m) => m.as_slice(),
        }
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
mod mapped {
    use super::Bucket;
    use std::ptr::NonNull;

    /// An anonymous mapping holding `len` buckets.
    pub(super) struct Mapping {
        ptr: NonNull<Bucket>,
        len: usize,
        bytes: usize,
    }

    // SAFETY: the mapping is owned exclusively by this value and only ever
    // accessed as `&[Bucket]`; `Bucket` is `Sync` (atomics only), so sharing
    // or sending the owner across threads is as safe as for `Box<[Bucket]>`.
    unsafe impl Send for Mapping {}
    // SAFETY: see `Send`.
    unsafe impl Sync for Mapping {}

    impl Mapping {
        pub(super) fn new(len: usize) -> Option<Mapping> {
            let bytes = len.checked_mul(std::mem::size_of::<Bucket>())?;
            if bytes == 0 {
                return None;
            }
            // SAFETY: a fresh private anonymous mapping; no existing memory
            // is affected. The result is checked against MAP_FAILED.
            let p = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    bytes,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            };
            let ptr = NonNull::new(p.cast::<Bucket>()).filter(|_| p != libc::MAP_FAILED)?;
            // SAFETY: `p..p + bytes` is the mapping just created. The advice
            // is a hint; failure (THP disabled) leaves 4 KiB pages, which is
            // still correct, so its result is ignored.
            unsafe {
                libc::madvise(p, bytes, libc::MADV_HUGEPAGE);
            }
            // Page-aligned, hence aligned for `Bucket` (128 bytes).
            debug_assert_eq!(p as usize % std::mem::align_of::<Bucket>(), 0);
            Some(Mapping { ptr, len, bytes })
        }

        #[inline]
        pub(super) fn as_slice(&self) -> &[Bucket] {
            // SAFETY: the mapping holds `len` buckets' worth of zeroed,
            // page-aligned memory for the lifetime of `self`; a bucket is
            // atomics only, for which all-zero bytes are the valid empty
            // state `Bucket::default()` (checked by a unit test), and all
            // mutation goes through those atomics.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }
    }

    impl Drop for Mapping {
        fn drop(&mut self) {
            // SAFETY: unmaps exactly the region `new` mapped; no reference
            // into it outlives `self`.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.bytes);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_buckets_are_empty() {
        let b = Buckets::new(1000).unwrap();
        assert_eq!(b.len(), 1000);
        for bucket in [&b[0], &b[500], &b[999]] {
            assert_eq!(bucket.overflow(), 0);
            for s in 0..super::super::bucket::SLOTS {
                assert_eq!((bucket.key(s), bucket.mask(s)), (0, 0));
                assert!(!bucket.referenced(s));
            }
        }
        b[999].install(3, 42 << 12, 1);
        assert_eq!((b[999].key(3), b[999].mask(3)), (42 << 12, 1));
    }
}
