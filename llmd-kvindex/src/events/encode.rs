//! Encodes an `EventBatch` exactly as a given vLLM release's msgspec encoder
//! does, so that simulated engines publish real vLLM bytes.

use super::layout::{EventForm, EventLayout};
use super::model::{BlockRemoved, BlockStored, EventBatch, ExtraValue, HashValue, KvEvent};
use super::msgpack::Writer;

/// Encodes `batch` in the wire layout of `layout`.
///
/// Fields the layout does not have are left out (e.g. `session_id` before
/// 0.30); in the array form, a field the layout has but the event lacks is
/// `nil`; in the map form, optional fields that are `None` are omitted and
/// the map header is sized by the number of fields the release's struct can
/// hold (msgspec's behaviour). The 0.9.0 root has no `data_parallel_rank`.
///
/// ```
/// use llmd_kvindex::events::{decode_event_batch, encode_event_batch, EventBatch, EventLayout, KvEvent};
/// let batch = EventBatch {
///     ts: 1700000000.5,
///     data_parallel_rank: Some(0),
///     events: vec![KvEvent::AllBlocksCleared],
///     skipped_events: 0,
/// };
/// let bytes = encode_event_batch(&batch, EventLayout::V0_33);
/// assert_eq!(decode_event_batch(&bytes).unwrap(), batch);
/// ```
pub fn encode_event_batch(batch: &EventBatch, layout: EventLayout) -> Vec<u8> {
    let mut w = Writer::with_capacity(16 + batch.events.iter().map(size_hint).sum::<usize>());
    w.array_len(if layout.has_dp_rank() { 3 } else { 2 });
    w.f64(batch.ts);
    w.array_len(batch.events.len());
    for ev in &batch.events {
        match (layout.form(), ev) {
            (EventForm::Array, KvEvent::BlockStored(s)) => stored_array(&mut w, s, layout),
            (EventForm::Array, KvEvent::BlockRemoved(e)) => removed_array(&mut w, e, layout),
            (EventForm::Array, KvEvent::AllBlocksCleared) => {
                w.array_len(1);
                w.str("AllBlocksCleared");
            }
            (EventForm::Map, KvEvent::BlockStored(s)) => stored_map(&mut w, s, layout),
            (EventForm::Map, KvEvent::BlockRemoved(e)) => removed_map(&mut w, e, layout),
            (EventForm::Map, KvEvent::AllBlocksCleared) => {
                w.map_len(1);
                w.str("type");
                w.str("AllBlocksCleared");
            }
        }
    }
    if layout.has_dp_rank() {
        opt_int(&mut w, batch.data_parallel_rank);
    }
    w.into_bytes()
}

/// Roughly the encoded size of an event (uint32 tokens, uint64 hashes),
/// so that the output buffer is allocated once.
fn size_hint(ev: &KvEvent) -> usize {
    match ev {
        KvEvent::BlockStored(s) => 192 + 5 * s.token_ids.len() + 9 * s.block_hashes.len(),
        KvEvent::BlockRemoved(r) => 96 + 9 * r.block_hashes.len(),
        KvEvent::AllBlocksCleared => 32,
    }
}

fn stored_array(w: &mut Writer, s: &BlockStored, layout: EventLayout) {
    let len = layout.stored_array_len();
    w.array_len(len);
    w.str("BlockStored");
    hashes(w, &s.block_hashes);
    opt_hash(w, s.parent_block_hash.as_ref());
    tokens(w, &s.token_ids);
    w.int(s.block_size);
    opt_int(w, s.lora_id);
    if len > 6 {
        opt_str(w, s.medium.as_deref());
    }
    if len > 7 {
        opt_str(w, s.lora_name.as_deref());
    }
    if len > 8 {
        opt_extra_keys(w, s.extra_keys.as_deref());
    }
    if len > 9 {
        opt_int(w, s.group_idx);
    }
    if len > 10 {
        opt_str(w, s.kv_cache_spec_kind.as_deref());
        opt_int(w, s.kv_cache_spec_sliding_window);
    }
}

fn removed_array(w: &mut Writer, e: &BlockRemoved, layout: EventLayout) {
    let len = layout.removed_array_len();
    w.array_len(len);
    w.str("BlockRemoved");
    hashes(w, &e.block_hashes);
    if len > 2 {
        opt_str(w, e.medium.as_deref());
    }
    if len > 3 {
        opt_int(w, e.group_idx);
    }
}

fn stored_map(w: &mut Writer, s: &BlockStored, layout: EventLayout) {
    // Optional keys of the release, omitted when None.
    let locality = s.locality.as_deref().filter(|_| layout.has_locality());
    let ownership = s.ownership.as_deref().filter(|_| layout.has_ownership());
    let session_id = s.session_id.as_deref().filter(|_| layout.has_session_id());
    let lookahead = s
        .lookahead_token_ids
        .as_deref()
        .filter(|_| layout.has_lookahead());
    let optional = [
        s.extra_keys.is_some(),
        s.group_idx.is_some(),
        s.kv_cache_spec_kind.is_some(),
        s.kv_cache_spec_sliding_window.is_some(),
        locality.is_some(),
        ownership.is_some(),
        session_id.is_some(),
        lookahead.is_some(),
    ];
    let n = 8 + optional.iter().filter(|&&b| b).count();
    w.map_len_sized(n, layout.stored_map_max_keys());
    w.str("type");
    w.str("BlockStored");
    w.str("block_hashes");
    hashes(w, &s.block_hashes);
    w.str("parent_block_hash");
    opt_hash(w, s.parent_block_hash.as_ref());
    w.str("token_ids");
    tokens(w, &s.token_ids);
    w.str("block_size");
    w.int(s.block_size);
    w.str("lora_id");
    opt_int(w, s.lora_id);
    w.str("medium");
    opt_str(w, s.medium.as_deref());
    w.str("lora_name");
    opt_str(w, s.lora_name.as_deref());
    if let Some(keys) = &s.extra_keys {
        w.str("extra_keys");
        opt_extra_keys(w, Some(keys));
    }
    key_int(w, "group_idx", s.group_idx);
    key_str(w, "kv_cache_spec_kind", s.kv_cache_spec_kind.as_deref());
    key_int(
        w,
        "kv_cache_spec_sliding_window",
        s.kv_cache_spec_sliding_window,
    );
    key_str(w, "locality", locality);
    key_str(w, "ownership", ownership);
    key_str(w, "session_id", session_id);
    if let Some(rows) = lookahead {
        w.str("lookahead_token_ids");
        w.array_len(rows.len());
        for row in rows {
            tokens(w, row);
        }
    }
}

fn removed_map(w: &mut Writer, e: &BlockRemoved, layout: EventLayout) {
    let locality = e.locality.as_deref().filter(|_| layout.has_locality());
    let ownership = e.ownership.as_deref().filter(|_| layout.has_ownership());
    let n = 3
        + usize::from(e.group_idx.is_some())
        + usize::from(locality.is_some())
        + usize::from(ownership.is_some());
    w.map_len_sized(n, layout.removed_map_max_keys());
    w.str("type");
    w.str("BlockRemoved");
    w.str("block_hashes");
    hashes(w, &e.block_hashes);
    w.str("medium");
    opt_str(w, e.medium.as_deref());
    key_int(w, "group_idx", e.group_idx);
    key_str(w, "locality", locality);
    key_str(w, "ownership", ownership);
}

fn key_int(w: &mut Writer, key: &str, v: Option<i64>) {
    if let Some(v) = v {
        w.str(key);
        w.int(v);
    }
}

fn key_str(w: &mut Writer, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        w.str(key);
        w.str(v);
    }
}

fn opt_int(w: &mut Writer, v: Option<i64>) {
    match v {
        Some(v) => w.int(v),
        None => w.nil(),
    }
}

fn opt_str(w: &mut Writer, v: Option<&str>) {
    match v {
        Some(v) => w.str(v),
        None => w.nil(),
    }
}

fn hash(w: &mut Writer, h: &HashValue) {
    match h {
        HashValue::Int(v) => w.int128(*v),
        HashValue::Bytes(b) => w.bin(b),
    }
}

fn opt_hash(w: &mut Writer, h: Option<&HashValue>) {
    match h {
        Some(h) => hash(w, h),
        None => w.nil(),
    }
}

fn hashes(w: &mut Writer, hs: &[HashValue]) {
    w.array_len(hs.len());
    for h in hs {
        hash(w, h);
    }
}

fn tokens(w: &mut Writer, ts: &[u64]) {
    w.array_len(ts.len());
    w.uints(ts);
}

fn opt_extra_keys(w: &mut Writer, keys: Option<&[Option<Vec<ExtraValue>>]>) {
    let Some(keys) = keys else {
        w.nil();
        return;
    };
    w.array_len(keys.len());
    for entry in keys {
        match entry {
            Some(items) => extra_items(w, items),
            None => w.nil(),
        }
    }
}

fn extra_items(w: &mut Writer, items: &[ExtraValue]) {
    w.array_len(items.len());
    for item in items {
        match item {
            ExtraValue::Nil => w.nil(),
            ExtraValue::Int(v) => w.int128(*v),
            ExtraValue::Str(s) => w.str(s),
            ExtraValue::Bytes(b) => w.bin(b),
            ExtraValue::Array(inner) => extra_items(w, inner),
        }
    }
}
