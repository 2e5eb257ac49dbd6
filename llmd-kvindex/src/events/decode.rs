//! `EventBatch` decoding over both event forms (vLLM SPEC §4.1–§4.5).

use super::error::{DecodeError, DecodeErrorKind};
use super::fields::{
    read_field, read_i64, removed_key, stored_key, Field, Seen, REMOVED_POSITIONS, STORED_POSITIONS,
};
use super::model::{BlockRemoved, BlockStored, EventBatch, KvEvent};
use super::msgpack::{wrong_type, Reader, Value};

/// Fewest bytes a known event can take (`[tag, block_hashes]` of a
/// `BlockRemoved`); caps the up-front capacity of the event list so that a
/// large declared count of tiny unknown events cannot reserve much memory.
const MIN_KNOWN_EVENT_BYTES: usize = 15;

/// How many times its own size a payload may decode to (bytes of the
/// decoded items: events, hashes, token ids, strings). vLLM's payloads take
/// about 2–4× (8-byte token ids from 2–5-byte msgpack integers, 32-byte
/// hashes from 9-byte ones); a payload of tiny values (1-byte integers as
/// hashes, empty arrays as extra keys) would take up to 64× in memory.
/// Past it the payload is refused ([`DecodeErrorKind::TooLarge`]), so a
/// 64 MiB message costs at most about 1 GiB of items, with vectors' spare
/// capacity at most twice that.
pub const MAX_DECODE_EXPANSION: usize = 16;

/// What a payload of `len` bytes may decode to: [`MAX_DECODE_EXPANSION`]
/// times its size, and at least 64 KiB (a small payload of small test
/// values decodes however it likes).
pub fn decode_budget(len: usize) -> usize {
    len.saturating_mul(MAX_DECODE_EXPANSION).max(64 << 10)
}

/// The event kinds a tag names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tag {
    Stored,
    Removed,
    Cleared,
}

impl Tag {
    fn parse(s: &str) -> Option<Tag> {
        match s {
            "BlockStored" => Some(Tag::Stored),
            "BlockRemoved" => Some(Tag::Removed),
            "AllBlocksCleared" => Some(Tag::Cleared),
            _ => None,
        }
    }
}

/// Decodes one msgpack `EventBatch` (ZMQ frame 2) of any vLLM release.
///
/// Accepts the array event form (≤ 0.23) and the map form (≥ 0.24), mixed
/// freely; skips and counts events with unknown tags; rejects missing
/// required fields, wrongly typed known fields, invalid UTF-8, truncated
/// input and trailing bytes. Never panics and never allocates from a
/// declared length that the payload cannot hold.
///
/// ```
/// use llmd_kvindex::events::{decode_event_batch, KvEvent};
/// // [1700000000.5, [["AllBlocksCleared"]], 0]
/// let mut payload = vec![0x93, 0xcb, 0x41, 0xd9, 0x54, 0xfc, 0x40, 0x20, 0, 0, 0x91, 0x91, 0xb0];
/// payload.extend_from_slice(b"AllBlocksCleared");
/// payload.push(0x00);
/// let batch = decode_event_batch(&payload).unwrap();
/// assert_eq!(batch.ts, 1700000000.5);
/// assert_eq!(batch.events, vec![KvEvent::AllBlocksCleared]);
/// ```
pub fn decode_event_batch(payload: &[u8]) -> Result<EventBatch, DecodeError> {
    let mut r = Reader::with_budget(payload, decode_budget(payload.len()));
    let root_len = match r.read_value()? {
        Value::Array(n) if n >= 2 => n,
        _ => return Err(DecodeError::new(DecodeErrorKind::WrongRootType, 0)),
    };
    let at = r.position();
    let ts = match r.read_value()? {
        Value::Float(f) => f,
        Value::Int(i) => i as f64,
        _ => return Err(wrong_type("ts", "a float or an integer", at)),
    };
    let n_events = r.read_array_len("events")?;
    let mut events = Vec::with_capacity(super::fields::reserve(
        n_events.min(r.remaining() / MIN_KNOWN_EVENT_BYTES),
    ));
    let mut skipped_events = 0u32;
    for _ in 0..n_events {
        match decode_event(&mut r)? {
            Some(ev) => {
                r.charge(std::mem::size_of::<KvEvent>())?;
                events.push(ev);
            }
            None => skipped_events = skipped_events.saturating_add(1),
        }
    }
    let mut data_parallel_rank = None;
    if root_len >= 3 && !r.try_nil() {
        data_parallel_rank = Some(read_i64(&mut r, "data_parallel_rank")?);
    }
    for _ in 3..root_len {
        r.skip_value()?;
    }
    if r.remaining() > 0 {
        return Err(DecodeError::new(
            DecodeErrorKind::TrailingBytes,
            r.position(),
        ));
    }
    Ok(EventBatch {
        ts,
        data_parallel_rank,
        events,
        skipped_events,
    })
}

/// One event; `None` when its tag is unknown (it has been skipped).
fn decode_event(r: &mut Reader<'_>) -> Result<Option<KvEvent>, DecodeError> {
    let at = r.position();
    match r.read_value()? {
        Value::Array(n) => decode_array_event(r, n, at),
        Value::Map(n) => decode_map_event(r, n, at),
        _ => Err(wrong_type("events", "an array or a map per event", at)),
    }
}

/// `[tag, field1, field2, ...]`, fields by fixed position.
fn decode_array_event(
    r: &mut Reader<'_>,
    n: usize,
    at: usize,
) -> Result<Option<KvEvent>, DecodeError> {
    if n == 0 {
        return Err(missing("type", at));
    }
    let Some(tag) = Tag::parse(r.read_str("type")?) else {
        skip_n(r, n - 1)?;
        return Ok(None);
    };
    let positions: &[Field] = match tag {
        Tag::Stored => &STORED_POSITIONS,
        Tag::Removed => &REMOVED_POSITIONS,
        Tag::Cleared => &[],
    };
    let mut ev = BlockStored::default();
    let mut seen = Seen::default();
    for i in 1..n {
        match positions.get(i - 1) {
            Some(&field) => read_field(r, field, &mut ev, &mut seen)?,
            None => r.skip_value()?,
        }
    }
    // The parent's position must exist even though its value may be nil.
    if tag == Tag::Stored && n < 3 {
        return Err(missing("parent_block_hash", at));
    }
    finish(tag, ev, seen, at).map(Some)
}

/// `{"type": tag, key: value, ...}`, keys in any order.
fn decode_map_event(
    r: &mut Reader<'_>,
    n: usize,
    at: usize,
) -> Result<Option<KvEvent>, DecodeError> {
    let start = r.position();
    // vLLM writes "type" first; elsewhere it needs a scan before the fields
    // can be typed, then a second pass from the start.
    let mut found = None;
    for i in 0..n {
        if map_key(r)? == "type" {
            found = Some((i, Tag::parse(r.read_str("type")?)));
            break;
        }
        r.skip_value()?;
    }
    let Some((index, tag)) = found else {
        return Err(missing("type", at));
    };
    let Some(tag) = tag else {
        skip_n(r, 2 * (n - index - 1))?;
        return Ok(None);
    };
    let entries = if index == 0 {
        n - 1
    } else {
        r.seek(start);
        n
    };
    let lookup: fn(&str) -> Option<Field> = match tag {
        Tag::Stored => stored_key,
        Tag::Removed => removed_key,
        Tag::Cleared => |_| None,
    };
    let mut ev = BlockStored::default();
    let mut seen = Seen::default();
    for _ in 0..entries {
        match lookup(map_key(r)?) {
            Some(field) => read_field(r, field, &mut ev, &mut seen)?,
            // Unknown keys and the already-read "type" are skipped.
            None => r.skip_value()?,
        }
    }
    finish(tag, ev, seen, at).map(Some)
}

fn map_key<'a>(r: &mut Reader<'a>) -> Result<&'a str, DecodeError> {
    r.read_str("event key")
}

/// Checks required fields and builds the event.
fn finish(tag: Tag, ev: BlockStored, seen: Seen, at: usize) -> Result<KvEvent, DecodeError> {
    match tag {
        Tag::Stored => {
            if !seen.block_hashes {
                return Err(missing("block_hashes", at));
            }
            if !seen.token_ids {
                return Err(missing("token_ids", at));
            }
            if !seen.block_size {
                return Err(missing("block_size", at));
            }
            Ok(KvEvent::BlockStored(ev))
        }
        Tag::Removed => {
            if !seen.block_hashes {
                return Err(missing("block_hashes", at));
            }
            Ok(KvEvent::BlockRemoved(BlockRemoved {
                block_hashes: ev.block_hashes,
                medium: ev.medium,
                group_idx: ev.group_idx,
                locality: ev.locality,
                ownership: ev.ownership,
            }))
        }
        Tag::Cleared => Ok(KvEvent::AllBlocksCleared),
    }
}

fn skip_n(r: &mut Reader<'_>, n: usize) -> Result<(), DecodeError> {
    for _ in 0..n {
        r.skip_value()?;
    }
    Ok(())
}

fn missing(field: &'static str, at: usize) -> DecodeError {
    DecodeError::new(DecodeErrorKind::MissingField { field }, at)
}
