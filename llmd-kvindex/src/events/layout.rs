//! vLLM releases grouped by the wire layout of their `EventBatch`
//! (vLLM SPEC §4.2, §4.3, §7).

use std::fmt;

/// How events are encoded inside the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventForm {
    /// `[tag, field1, ...]` by fixed positions (vLLM ≤ 0.23).
    Array,
    /// `{"type": tag, ...}` (vLLM ≥ 0.24).
    Map,
}

/// A group of vLLM releases that encode event batches byte for byte alike.
/// Variants are named after the first release of the group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventLayout {
    /// 0.9.0: root `[ts, events]`; BlockStored 5 fields, BlockRemoved 1.
    V0_9_0,
    /// 0.9.1 – 0.10.1.1: root gains `data_parallel_rank`.
    V0_9_2,
    /// 0.10.2 – 0.13.x: `medium`.
    V0_10_2,
    /// 0.14 – 0.16: `lora_name`.
    V0_14,
    /// 0.17 – 0.19: `extra_keys`.
    V0_17,
    /// 0.20 – 0.21: `group_idx`.
    V0_20,
    /// 0.22 – 0.23: `kv_cache_spec_kind`, `kv_cache_spec_sliding_window`.
    V0_22,
    /// 0.24 – 0.25: map form.
    V0_24,
    /// 0.26 – 0.28: `locality`.
    V0_26,
    /// 0.29: `ownership`.
    V0_29,
    /// 0.30 – 0.32: `session_id`.
    V0_30,
    /// 0.33: `lookahead_token_ids` (BlockStored header becomes map16).
    V0_33,
}

impl EventLayout {
    /// Every layout, oldest first.
    pub const ALL: [EventLayout; 12] = [
        EventLayout::V0_9_0,
        EventLayout::V0_9_2,
        EventLayout::V0_10_2,
        EventLayout::V0_14,
        EventLayout::V0_17,
        EventLayout::V0_20,
        EventLayout::V0_22,
        EventLayout::V0_24,
        EventLayout::V0_26,
        EventLayout::V0_29,
        EventLayout::V0_30,
        EventLayout::V0_33,
    ];

    /// The layout of release `0.minor.patch`; `None` outside 0.9.0 – 0.33.x
    /// (0.8.5 publishes no events; later releases are not covered).
    pub fn for_version(major: u32, minor: u32, patch: u32) -> Option<EventLayout> {
        if major != 0 {
            return None;
        }
        Some(match (minor, patch) {
            (9, 0) => EventLayout::V0_9_0,
            (9, _) => EventLayout::V0_9_2,
            (10, 0 | 1) => EventLayout::V0_9_2,
            (10..=13, _) => EventLayout::V0_10_2,
            (14..=16, _) => EventLayout::V0_14,
            (17..=19, _) => EventLayout::V0_17,
            (20..=21, _) => EventLayout::V0_20,
            (22..=23, _) => EventLayout::V0_22,
            (24..=25, _) => EventLayout::V0_24,
            (26..=28, _) => EventLayout::V0_26,
            (29, _) => EventLayout::V0_29,
            (30..=32, _) => EventLayout::V0_30,
            (33, _) => EventLayout::V0_33,
            _ => return None,
        })
    }

    /// Parses a release (`"0.22.1"`, `"0.22"`) or a release range whose
    /// first release decides (`"0.9.2-0.10.1"`, the ids of [`Self::id`]).
    pub fn parse(s: &str) -> Option<EventLayout> {
        let first = s.split('-').next()?.trim();
        let mut parts = first.split('.').map(str::parse::<u32>);
        let major = parts.next()?.ok()?;
        let minor = parts.next()?.ok()?;
        let patch = match parts.next() {
            Some(p) => p.ok()?,
            None => 0,
        };
        Self::for_version(major, minor, patch)
    }

    /// The release range, as in the compatibility vectors' `layout` field.
    pub fn id(self) -> &'static str {
        match self {
            EventLayout::V0_9_0 => "0.9.0",
            EventLayout::V0_9_2 => "0.9.2-0.10.1",
            EventLayout::V0_10_2 => "0.10.2-0.13",
            EventLayout::V0_14 => "0.14-0.16",
            EventLayout::V0_17 => "0.17-0.19",
            EventLayout::V0_20 => "0.20-0.21",
            EventLayout::V0_22 => "0.22-0.23",
            EventLayout::V0_24 => "0.24-0.25",
            EventLayout::V0_26 => "0.26-0.28",
            EventLayout::V0_29 => "0.29",
            EventLayout::V0_30 => "0.30-0.32",
            EventLayout::V0_33 => "0.33",
        }
    }

    /// How events are encoded.
    pub fn form(self) -> EventForm {
        if self >= EventLayout::V0_24 {
            EventForm::Map
        } else {
            EventForm::Array
        }
    }

    /// Whether the root carries `data_parallel_rank` (all but 0.9.0).
    pub fn has_dp_rank(self) -> bool {
        self != EventLayout::V0_9_0
    }

    /// Array form: `BlockStored` length including the tag.
    pub(crate) fn stored_array_len(self) -> usize {
        match self {
            EventLayout::V0_9_0 | EventLayout::V0_9_2 => 6,
            EventLayout::V0_10_2 => 7,
            EventLayout::V0_14 => 8,
            EventLayout::V0_17 => 9,
            EventLayout::V0_20 => 10,
            _ => 12,
        }
    }

    /// Array form: `BlockRemoved` length including the tag.
    pub(crate) fn removed_array_len(self) -> usize {
        match self {
            EventLayout::V0_9_0 | EventLayout::V0_9_2 => 2,
            EventLayout::V0_10_2 | EventLayout::V0_14 | EventLayout::V0_17 => 3,
            _ => 4,
        }
    }

    /// Map form (≥ 0.26): `locality` exists.
    pub(crate) fn has_locality(self) -> bool {
        self >= EventLayout::V0_26
    }

    /// Map form (≥ 0.29): `ownership` exists.
    pub(crate) fn has_ownership(self) -> bool {
        self >= EventLayout::V0_29
    }

    /// Map form (≥ 0.30): `session_id` exists.
    pub(crate) fn has_session_id(self) -> bool {
        self >= EventLayout::V0_30
    }

    /// Map form (0.33): `lookahead_token_ids` exists.
    pub(crate) fn has_lookahead(self) -> bool {
        self >= EventLayout::V0_33
    }

    /// Map form: most keys a `BlockStored` map can have ("type" included),
    /// which sizes msgspec's map header.
    pub(crate) fn stored_map_max_keys(self) -> usize {
        12 + [
            self.has_locality(),
            self.has_ownership(),
            self.has_session_id(),
            self.has_lookahead(),
        ]
        .iter()
        .filter(|&&b| b)
        .count()
    }

    /// Map form: most keys a `BlockRemoved` map can have.
    pub(crate) fn removed_map_max_keys(self) -> usize {
        4 + usize::from(self.has_locality()) + usize::from(self.has_ownership())
    }
}

impl fmt::Display for EventLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_back_and_versions_map_to_ranges() {
        for layout in EventLayout::ALL {
            assert_eq!(EventLayout::parse(layout.id()), Some(layout));
        }
        assert_eq!(EventLayout::parse("0.10.1"), Some(EventLayout::V0_9_2));
        assert_eq!(EventLayout::parse("0.10.2"), Some(EventLayout::V0_10_2));
        assert_eq!(EventLayout::parse("0.32.0"), Some(EventLayout::V0_30));
        assert_eq!(EventLayout::parse("0.8.5"), None);
        assert_eq!(EventLayout::parse("0.34"), None);
        assert_eq!(EventLayout::parse("x"), None);
        assert_eq!(EventLayout::V0_33.stored_map_max_keys(), 16);
        assert_eq!(EventLayout::V0_24.stored_map_max_keys(), 12);
        assert_eq!(EventLayout::V0_29.removed_map_max_keys(), 6);
    }
}
