//! A reusable output buffer with slack for branch-free fixed-width stores.

/// Bytes written so far are `bytes[..len]`; `bytes` only grows, so the hot
/// loop writes into already initialised memory and never zeroes it again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Buf {
    bytes: Vec<u8>,
    len: usize,
}

impl Buf {
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Makes `extra` bytes past the end writable.
    #[inline]
    pub(crate) fn reserve(&mut self, extra: usize) {
        let need = self.len + extra;
        if need > self.bytes.len() {
            self.bytes.resize(need.next_power_of_two().max(256), 0);
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, b: u8) {
        self.reserve(1);
        self.bytes[self.len] = b;
        self.len += 1;
    }

    #[inline]
    pub(crate) fn extend(&mut self, data: &[u8]) {
        self.reserve(data.len());
        self.bytes[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    /// A writable window of `n` bytes past the end; `advance` commits a prefix.
    /// Encoders write through the window with a local position so the compiler
    /// keeps pointer and position in registers.
    #[inline]
    pub(crate) fn spare(&mut self, n: usize) -> &mut [u8] {
        self.reserve(n);
        &mut self.bytes[self.len..self.len + n]
    }

    /// Commits `n` bytes written into `spare`.
    #[inline]
    pub(crate) fn advance(&mut self, n: usize) {
        self.len += n;
    }

    /// The written bytes followed by `extra` bytes of the spare window.
    #[inline]
    pub(crate) fn with_spare(&self, extra: usize) -> &[u8] {
        &self.bytes[..self.len + extra]
    }

    /// Overwrites bytes at `at` (already written).
    #[inline]
    pub(crate) fn patch(&mut self, at: usize, data: &[u8]) {
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    /// Removes `n` bytes at `at`, shifting the rest down.
    pub(crate) fn remove(&mut self, at: usize, n: usize) {
        self.bytes.copy_within(at + n..self.len, at);
        self.len -= n;
    }
}
