//! Identifiers and plain data shared by hashing, event decoding and the index.

/// A published 64-bit block key: the last 8 bytes (big-endian) of a block's
/// digest, or a hash integer reduced modulo 2^64 (vLLM SPEC §2.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct BlockKey(pub u64);

/// Where an endpoint holds a block. llm-d weights GPU 1.0, CPU 0.8 by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Tier {
    /// Device memory (vLLM `medium` `"GPU"` or absent).
    Gpu = 0,
    /// Host memory of an offloading connector (`"CPU"`).
    Cpu = 1,
    /// Disk or remote storage of an offloading connector (`"STORAGE"`).
    Storage = 2,
}

impl Tier {
    /// All tiers, best first.
    pub const ALL: [Tier; 3] = [Tier::Gpu, Tier::Cpu, Tier::Storage];

    /// Maps a vLLM `medium` string (case-insensitive; `None` means GPU).
    /// Unknown media are `None` so callers can count them.
    pub fn from_medium(medium: Option<&str>) -> Option<Tier> {
        match medium {
            None => Some(Tier::Gpu),
            Some(m) if m.eq_ignore_ascii_case("gpu") => Some(Tier::Gpu),
            Some(m) if m.eq_ignore_ascii_case("cpu") => Some(Tier::Cpu),
            Some(m) if m.eq_ignore_ascii_case("storage") || m.eq_ignore_ascii_case("disk") => {
                Some(Tier::Storage)
            }
            Some(_) => None,
        }
    }
}
