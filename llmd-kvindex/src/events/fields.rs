//! Typed readers for the fields of vLLM's KV events (SPEC §4.4), shared by
//! the array and the map event forms.

use super::error::{DecodeError, DecodeErrorKind};
use super::model::{BlockStored, ExtraValue, HashValue};
use super::msgpack::{wrong_type, Reader, Value, MAX_DEPTH};
use std::mem::size_of;

/// A field of `BlockStored` or `BlockRemoved` (the latter's fields are a
/// subset and are decoded into the same accumulator).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Field {
    BlockHashes,
    ParentBlockHash,
    TokenIds,
    BlockSize,
    LoraId,
    Medium,
    LoraName,
    ExtraKeys,
    GroupIdx,
    KvCacheSpecKind,
    KvCacheSpecSlidingWindow,
    Locality,
    Ownership,
    SessionId,
    LookaheadTokenIds,
}

/// `BlockStored` fields by array position 1.. (SPEC §4.2).
pub(crate) const STORED_POSITIONS: [Field; 11] = [
    Field::BlockHashes,
    Field::ParentBlockHash,
    Field::TokenIds,
    Field::BlockSize,
    Field::LoraId,
    Field::Medium,
    Field::LoraName,
    Field::ExtraKeys,
    Field::GroupIdx,
    Field::KvCacheSpecKind,
    Field::KvCacheSpecSlidingWindow,
];

/// `BlockRemoved` fields by array position 1.. (SPEC §4.2).
pub(crate) const REMOVED_POSITIONS: [Field; 3] =
    [Field::BlockHashes, Field::Medium, Field::GroupIdx];

/// A `BlockStored` map key.
pub(crate) fn stored_key(key: &str) -> Option<Field> {
    Some(match key {
        "block_hashes" => Field::BlockHashes,
        "parent_block_hash" => Field::ParentBlockHash,
        "token_ids" => Field::TokenIds,
        "block_size" => Field::BlockSize,
        "lora_id" => Field::LoraId,
        "medium" => Field::Medium,
        "lora_name" => Field::LoraName,
        "extra_keys" => Field::ExtraKeys,
        "group_idx" => Field::GroupIdx,
        "kv_cache_spec_kind" => Field::KvCacheSpecKind,
        "kv_cache_spec_sliding_window" => Field::KvCacheSpecSlidingWindow,
        "locality" => Field::Locality,
        "ownership" => Field::Ownership,
        "session_id" => Field::SessionId,
        "lookahead_token_ids" => Field::LookaheadTokenIds,
        _ => return None,
    })
}

/// A `BlockRemoved` map key.
pub(crate) fn removed_key(key: &str) -> Option<Field> {
    Some(match key {
        "block_hashes" => Field::BlockHashes,
        "medium" => Field::Medium,
        "group_idx" => Field::GroupIdx,
        "locality" => Field::Locality,
        "ownership" => Field::Ownership,
        _ => return None,
    })
}

/// Which required fields were seen with a non-nil value.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Seen {
    pub block_hashes: bool,
    pub token_ids: bool,
    pub block_size: bool,
}

/// Reads the value of `field` into `ev`; nil leaves the field absent.
pub(crate) fn read_field(
    r: &mut Reader<'_>,
    field: Field,
    ev: &mut BlockStored,
    seen: &mut Seen,
) -> Result<(), DecodeError> {
    if r.try_nil() {
        return Ok(());
    }
    match field {
        Field::BlockHashes => {
            ev.block_hashes = read_hashes(r)?;
            seen.block_hashes = true;
        }
        Field::ParentBlockHash => {
            ev.parent_block_hash = Some(read_hash(r, "parent_block_hash")?);
        }
        Field::TokenIds => {
            ev.token_ids = read_tokens(r, "token_ids")?;
            seen.token_ids = true;
        }
        Field::BlockSize => {
            ev.block_size = read_i64(r, "block_size")?;
            seen.block_size = true;
        }
        Field::LoraId => ev.lora_id = Some(read_i64(r, "lora_id")?),
        Field::Medium => ev.medium = Some(read_string(r, "medium")?),
        Field::LoraName => ev.lora_name = Some(read_string(r, "lora_name")?),
        Field::ExtraKeys => ev.extra_keys = Some(read_extra_keys(r)?),
        Field::GroupIdx => ev.group_idx = Some(read_i64(r, "group_idx")?),
        Field::KvCacheSpecKind => {
            ev.kv_cache_spec_kind = Some(read_string(r, "kv_cache_spec_kind")?);
        }
        Field::KvCacheSpecSlidingWindow => {
            ev.kv_cache_spec_sliding_window = Some(read_i64(r, "kv_cache_spec_sliding_window")?);
        }
        Field::Locality => ev.locality = Some(read_string(r, "locality")?),
        Field::Ownership => ev.ownership = Some(read_string(r, "ownership")?),
        Field::SessionId => ev.session_id = Some(read_string(r, "session_id")?),
        Field::LookaheadTokenIds => {
            let n = r.read_array_len("lookahead_token_ids")?;
            r.charge(n.saturating_mul(size_of::<Vec<u64>>()))?;
            let mut rows = Vec::with_capacity(reserve(n));
            for _ in 0..n {
                rows.push(read_tokens(r, "lookahead_token_ids")?);
            }
            ev.lookahead_token_ids = Some(rows);
        }
    }
    Ok(())
}

/// Items reserved up front for an array that declares `n`: a length is
/// only bounded by the bytes left (one per item at least), and an item
/// decodes to up to tens of bytes, so reserving all of it would let a
/// frame claim many times its size; past this the vector grows as items
/// actually decode.
pub(crate) fn reserve(n: usize) -> usize {
    n.min(4096)
}

/// A string field, its bytes charged to the decode budget.
fn read_string(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let s = r.read_str(field)?;
    r.charge(s.len())?;
    Ok(s.to_owned())
}

/// An integer that must fit `i64`.
pub(crate) fn read_i64(r: &mut Reader<'_>, field: &'static str) -> Result<i64, DecodeError> {
    let at = r.position();
    let v = r.read_int(field)?;
    i64::try_from(v).map_err(|_| DecodeError::new(DecodeErrorKind::IntOutOfRange { field }, at))
}

/// An array of non-negative integers that fit `u64`.
fn read_tokens(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u64>, DecodeError> {
    let n = r.read_array_len(field)?;
    // Declared counts are at most the bytes left (one per item), so this
    // charge is bounded too.
    r.charge(n.saturating_mul(size_of::<u64>()))?;
    let mut out = Vec::with_capacity(reserve(n));
    for _ in 0..n {
        out.push(r.read_u64(field)?);
    }
    Ok(out)
}

fn read_hashes(r: &mut Reader<'_>) -> Result<Vec<HashValue>, DecodeError> {
    let n = r.read_array_len("block_hashes")?;
    r.charge(n.saturating_mul(size_of::<HashValue>()))?;
    let mut out = Vec::with_capacity(reserve(n));
    for _ in 0..n {
        out.push(read_hash(r, "block_hashes")?);
    }
    Ok(out)
}

/// A hash: an integer of any width and sign, or a byte string.
fn read_hash(r: &mut Reader<'_>, field: &'static str) -> Result<HashValue, DecodeError> {
    if r.next_is_uint() {
        return Ok(HashValue::Int(i128::from(r.read_u64(field)?)));
    }
    let at = r.position();
    match r.read_value()? {
        Value::Int(v) => Ok(HashValue::Int(v)),
        Value::Bin(b) => {
            r.charge(b.len())?;
            Ok(HashValue::Bytes(b.to_vec()))
        }
        _ => Err(wrong_type(field, "an integer or a byte string", at)),
    }
}

/// `extra_keys`: an array whose entries are nil or arrays of opaque items.
fn read_extra_keys(r: &mut Reader<'_>) -> Result<Vec<Option<Vec<ExtraValue>>>, DecodeError> {
    let n = r.read_array_len("extra_keys")?;
    r.charge(n.saturating_mul(size_of::<Option<Vec<ExtraValue>>>()))?;
    let mut out = Vec::with_capacity(reserve(n));
    for _ in 0..n {
        if r.try_nil() {
            out.push(None);
        } else {
            let m = r.read_array_len("extra_keys")?;
            out.push(Some(read_extra_items(r, m, 1)?));
        }
    }
    Ok(out)
}

fn read_extra_items(
    r: &mut Reader<'_>,
    n: usize,
    depth: usize,
) -> Result<Vec<ExtraValue>, DecodeError> {
    // The count is the peer's: checked only against the bytes left (one per
    // item), and an item is 32 bytes here, so the vector grows as items
    // arrive rather than reserving what the header claims.
    r.charge(n.saturating_mul(size_of::<ExtraValue>()))?;
    let mut items = Vec::with_capacity(n.min(64));
    for _ in 0..n {
        let at = r.position();
        items.push(match r.read_value()? {
            Value::Nil => ExtraValue::Nil,
            Value::Int(v) => ExtraValue::Int(v),
            Value::Str(s) => {
                r.charge(s.len())?;
                ExtraValue::Str(s.to_owned())
            }
            Value::Bin(b) => {
                r.charge(b.len())?;
                ExtraValue::Bytes(b.to_vec())
            }
            Value::Array(m) => {
                if depth >= MAX_DEPTH {
                    return Err(DecodeError::new(DecodeErrorKind::TooDeep, at));
                }
                ExtraValue::Array(read_extra_items(r, m, depth + 1)?)
            }
            _ => {
                return Err(wrong_type(
                    "extra_keys",
                    "nil, an integer, a string, a byte string or an array",
                    at,
                ))
            }
        });
    }
    Ok(items)
}
