//! Block digests and token ids.

use std::fmt;

use crate::types::BlockKey;

/// A full block digest as chained by vLLM, stored inline (no allocation):
/// 32 bytes (SHA-256), 16 (XXH3-128) or 8 (`sha256_cbor_64bit`, the integer
/// big-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    bytes: [u8; 32],
    len: u8,
}

impl Digest {
    /// A digest of up to 32 bytes; `None` when longer.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut out = [0u8; 32];
        out.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Digest {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    pub(crate) const fn from_array<const N: usize>(bytes: [u8; N]) -> Self {
        let mut out = [0u8; 32];
        let mut i = 0;
        while i < N {
            out[i] = bytes[i];
            i += 1;
        }
        Digest {
            bytes: out,
            len: N as u8,
        }
    }

    /// The digest bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// All 32 bytes of storage, zero past `len`: lets serializers copy a fixed size.
    #[inline(always)]
    pub(crate) fn padded(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The published 64-bit key: the last 8 bytes read big-endian (SPEC §2.6).
    #[inline]
    pub fn key(&self) -> BlockKey {
        let len = self.len as usize;
        if let Some(tail) = len.checked_sub(8).and_then(|s| self.bytes.get(s..len)) {
            let mut be = [0u8; 8];
            be.copy_from_slice(tail);
            return BlockKey(u64::from_be_bytes(be));
        }
        let mut tail = [0u8; 8];
        let take = len.min(8);
        tail[8 - take..].copy_from_slice(&self.bytes[len - take..len]);
        BlockKey(u64::from_be_bytes(tail))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest(")?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_bytes()
            .iter()
            .try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A token id as hashed by vLLM (a Python int ≥ 0).
pub trait TokenId: Copy {
    /// The id as an unsigned 64-bit integer.
    fn to_u64(self) -> u64;
}

impl TokenId for u32 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        u64::from(self)
    }
}

impl TokenId for u64 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        self
    }
}

impl TokenId for u16 {
    #[inline(always)]
    fn to_u64(self) -> u64 {
        u64::from(self)
    }
}
