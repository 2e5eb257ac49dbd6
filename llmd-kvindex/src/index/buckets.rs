//! Fixed arrays of zero-initialised slots (the table's buckets, the
//! checkpoint sets), backed by transparent huge pages on Linux.
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

use std::ops::Deref;

/// A type whose all-zero bytes are its valid, empty `Default` value.
///
/// # Safety
/// Implement only for types made of atomics (or plain integers) whose
/// `Default` is all zeros, with no padding-sensitive invariants and no drop
/// glue: the mapped array hands out zeroed memory as values of the type.
pub(crate) unsafe trait ZeroEmpty: Default + Sync {}

/// A fixed array of empty values.
pub(crate) struct Buckets<T: ZeroEmpty> {
    inner: Inner<T>,
}

enum Inner<T: ZeroEmpty> {
    Boxed(Box<[T]>),
    #[cfg(all(target_os = "linux", not(loom)))]
    Mapped(mapped::Mapping<T>),
}

impl<T: ZeroEmpty> Buckets<T> {
    /// `len` empty values, or `None` when the memory cannot be had (the
    /// mapping is refused and so is an ordinary allocation): an error for
    /// the caller, never an abort.
    pub(crate) fn new(len: usize) -> Option<Buckets<T>> {
        #[cfg(all(target_os = "linux", not(loom)))]
        if let Some(m) = mapped::Mapping::new(len) {
            return Some(Buckets {
                inner: Inner::Mapped(m),
            });
        }
        let mut v = Vec::new();
        v.try_reserve_exact(len).ok()?;
        v.extend((0..len).map(|_| T::default()));
        Some(Buckets {
            inner: Inner::Boxed(v.into_boxed_slice()),
        })
    }
}

impl<T: ZeroEmpty> Deref for Buckets<T> {
    type Target = [T];

    #[inline]
    fn deref(&self) -> &[T] {
        match &self.inner {
            Inner::Boxed(b) => b,
            #[cfg(all(target_os = "linux", not(loom)))]
            Inner::Mapped(m) => m.as_slice(),
        }
    }
}

#[cfg(all(target_os = "linux", not(loom)))]
mod mapped {
    use super::ZeroEmpty;
    use std::ptr::NonNull;

    /// An anonymous mapping holding `len` values.
    pub(super) struct Mapping<T: ZeroEmpty> {
        ptr: NonNull<T>,
        len: usize,
        bytes: usize,
    }

    // SAFETY: the mapping is owned exclusively by this value and only ever
    // accessed as `&[T]`; `T` is `Sync` (atomics only), so sharing or
    // sending the owner across threads is as safe as for `Box<[T]>`.
    unsafe impl<T: ZeroEmpty> Send for Mapping<T> {}
    // SAFETY: see `Send`.
    unsafe impl<T: ZeroEmpty> Sync for Mapping<T> {}

    impl<T: ZeroEmpty> Mapping<T> {
        pub(super) fn new(len: usize) -> Option<Mapping<T>> {
            let bytes = len.checked_mul(std::mem::size_of::<T>())?;
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
            let ptr = NonNull::new(p.cast::<T>()).filter(|_| p != libc::MAP_FAILED)?;
            // SAFETY: `p..p + bytes` is the mapping just created. The advice
            // is a hint; failure (THP disabled) leaves 4 KiB pages, which is
            // still correct, so its result is ignored.
            unsafe {
                libc::madvise(p, bytes, libc::MADV_HUGEPAGE);
            }
            // Page-aligned, hence aligned for `T` (at most 128 bytes here).
            debug_assert_eq!(p as usize % std::mem::align_of::<T>(), 0);
            Some(Mapping { ptr, len, bytes })
        }

        #[inline]
        pub(super) fn as_slice(&self) -> &[T] {
            // SAFETY: the mapping holds `len` values' worth of zeroed,
            // page-aligned memory for the lifetime of `self`; `T: ZeroEmpty`
            // is atomics only, for which all-zero bytes are the valid empty
            // state `T::default()` (checked by unit tests), and all mutation
            // goes through those atomics.
            unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
        }
    }

    impl<T: ZeroEmpty> Drop for Mapping<T> {
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
        let b = Buckets::<super::super::bucket::Bucket>::new(1000).unwrap();
        assert_eq!(b.len(), 1000);
        for bucket in [&b[0], &b[500], &b[999]] {
            assert_eq!(bucket.overflow(), 0);
            for s in 0..super::super::bucket::SLOTS {
                assert_eq!((bucket.key(s), bucket.mask(s)), (0, 0));
                assert!(!bucket.referenced(s));
            }
        }
        b[999].install(3, 42 << 12, 1, 5);
        assert_eq!(b[999].depth(3), 5);
        assert_eq!(b[999].depth(2), 0);
        assert_eq!((b[999].key(3), b[999].mask(3)), (42 << 12, 1));
    }
}
