//! How (model, block key, tier, endpoint group) become a table key and a
//! bucket position.

/// Tiers as stored in the table: the three media plus speculative entries.
pub(crate) const TIERS: usize = 4;
/// Table tier of speculative entries.
pub(crate) const SPECULATIVE: usize = 3;
/// Endpoint groups (64 endpoints each) that share a home bucket per block.
pub(crate) const GROUPS_PER_CLUSTER: usize = 2;

/// A bijective 64-bit finaliser (murmur3 `fmix64`): distinct inputs stay distinct.
#[inline]
pub(crate) fn mix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Per-model seed mixed into every key of that model.
pub(crate) fn model_seed(model: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(model.as_bytes())
}

/// The 52-bit fingerprint of (model, block): the identity part of a table key.
/// Never zero (zero marks a free slot).
#[inline]
pub(crate) fn fingerprint(seed: u64, block: u64) -> u64 {
    let f = mix64(block ^ seed) >> super::bucket::TAG_BITS;
    if f == 0 {
        1
    } else {
        f
    }
}

/// Full table key of (fingerprint, tier, group).
#[inline]
pub(crate) fn table_key(fp: u64, tier: usize, group: usize) -> u64 {
    (fp << super::bucket::TAG_BITS) | ((tier as u64) << 10) | group as u64
}

/// Tier of a table key's tag.
#[inline]
pub(crate) fn tag_tier(tag: u16) -> usize {
    (tag >> 10) as usize & 3
}

/// Endpoint group of a table key's tag.
#[inline]
pub(crate) fn tag_group(tag: u16) -> usize {
    (tag & 0x3ff) as usize
}

/// Position of a (fingerprint, cluster) pair: shard and two candidate buckets
/// inside it. Derived from the key alone, so a writer can find an entry's home
/// from a slot it evicts. The alternate is computed only when asked for: most
/// lookups never need it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Location {
    pub shard: usize,
    pub home: usize,
    base: usize,
    per_shard: usize,
    g: u64,
}

impl Location {
    /// The alternate bucket (another bucket of the same shard), if any.
    #[inline]
    pub(crate) fn alt(&self) -> Option<usize> {
        if self.per_shard < 2 {
            return None;
        }
        let home = self.home - self.base;
        let a = Geometry::scale(mix64(self.g ^ 0x9e37_79b9_7f4a_7c15) >> 32, self.per_shard);
        Some(
            self.base
                + if a == home {
                    (a + 1) % self.per_shard
                } else {
                    a
                },
        )
    }
}

/// Table geometry: shards of `per_shard` consecutive buckets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub shards: usize,
    pub per_shard: usize,
}

impl Geometry {
    #[inline]
    fn scale(x: u64, n: usize) -> usize {
        (((x & 0xffff_ffff) * n as u64) >> 32) as usize
    }

    /// Where entries of `fp` for endpoint cluster `cluster` live.
    #[inline]
    pub(crate) fn locate(&self, fp: u64, cluster: usize) -> Location {
        let g = mix64(fp ^ ((cluster as u64) << 52));
        let shard = Self::scale(g >> 32, self.shards);
        let base = shard * self.per_shard;
        Location {
            shard,
            home: base + Self::scale(g, self.per_shard),
            base,
            per_shard: self.per_shard,
            g,
        }
    }

    /// Location of the entry with table key `key`.
    #[inline]
    pub(crate) fn locate_key(&self, key: u64) -> Location {
        let tag = (key & ((1 << super::bucket::TAG_BITS) - 1)) as u16;
        self.locate(
            key >> super::bucket::TAG_BITS,
            tag_group(tag) / GROUPS_PER_CLUSTER,
        )
    }
}
