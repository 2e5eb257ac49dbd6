//! `llmd events decode`: KV-event bytes in, JSON out.

use std::io::Read;

use llmd_kvindex::events::{
    decode_event_batch, BlockStored, EventBatch, ExtraValue, HashValue, KvEvent,
};
use serde_json::{json, Value};

use super::Args;

pub fn run(args: &[String]) -> Result<(), String> {
    let (sub, rest) = args
        .split_first()
        .ok_or("usage: llmd events decode [--hex] [FILE]")?;
    if sub != "decode" {
        return Err(format!("unknown events command `{sub}` (try `decode`)"));
    }
    let mut a = Args::new(rest);
    let hex = a.flag("--hex");
    let files = a.positional()?;
    if files.len() > 1 {
        return Err("events decode reads one payload: give one FILE (or none for stdin)".into());
    }
    // A payload larger than this is no KV-event batch (vLLM's are KiBs to
    // MiBs); reading stops there instead of growing without bound.
    const MAX_INPUT: u64 = 256 << 20;
    let mut bytes = Vec::new();
    let (what, read) = match files.first() {
        Some(p) => (
            p.clone(),
            std::fs::File::open(p).and_then(|f| f.take(MAX_INPUT + 1).read_to_end(&mut bytes)),
        ),
        None => (
            "stdin".to_string(),
            std::io::stdin().take(MAX_INPUT + 1).read_to_end(&mut bytes),
        ),
    };
    read.map_err(|e| format!("{what}: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err(format!(
            "{what}: more than {MAX_INPUT} bytes: not a KV-event payload"
        ));
    }
    if hex {
        bytes = from_hex(&bytes)?;
    }
    let batch = decode_event_batch(&bytes).map_err(|e| format!("decode: {e}"))?;
    outln!(
        "{}",
        serde_json::to_string_pretty(&to_json(&batch)).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn from_hex(text: &[u8]) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text
        .iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if digits.len() % 2 != 0 {
        return Err("hex input has an odd number of digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).map_err(|_| "hex input is not ASCII".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("not hex: `{s}`"))
        })
        .collect()
}

fn hash(h: &HashValue) -> Value {
    match h {
        HashValue::Int(v) => json!({ "int": v.to_string(), "key": h.key().0.to_string() }),
        HashValue::Bytes(b) => json!({
            "bytes": b.iter().map(|x| format!("{x:02x}")).collect::<String>(),
            "key": h.key().0.to_string(),
        }),
    }
}

fn extra(v: &ExtraValue) -> Value {
    match v {
        ExtraValue::Nil => Value::Null,
        ExtraValue::Int(i) => json!(i.to_string()),
        ExtraValue::Str(s) => json!(s),
        ExtraValue::Bytes(b) => {
            json!({ "bytes": b.iter().map(|x| format!("{x:02x}")).collect::<String>() })
        }
        ExtraValue::Array(a) => Value::Array(a.iter().map(extra).collect()),
    }
}

fn stored(s: &BlockStored) -> Value {
    json!({
        "type": "BlockStored",
        "block_hashes": s.block_hashes.iter().map(hash).collect::<Vec<_>>(),
        "parent_block_hash": s.parent_block_hash.as_ref().map(hash),
        "token_ids": s.token_ids,
        "block_size": s.block_size,
        "lora_id": s.lora_id,
        "medium": s.medium,
        "lora_name": s.lora_name,
        "extra_keys": s.extra_keys.as_ref().map(|v| v.iter().map(|e| e.as_ref().map(|x| x.iter().map(extra).collect::<Vec<_>>())).collect::<Vec<_>>()),
        "group_idx": s.group_idx,
        "kv_cache_spec_kind": s.kv_cache_spec_kind,
        "kv_cache_spec_sliding_window": s.kv_cache_spec_sliding_window,
        "locality": s.locality,
        "ownership": s.ownership,
        "session_id": s.session_id,
        "lookahead_token_ids": s.lookahead_token_ids,
    })
}

/// The batch as JSON; 64-bit and wider integers of hashes are strings.
pub fn to_json(b: &EventBatch) -> Value {
    let events: Vec<Value> = b
        .events
        .iter()
        .map(|e| match e {
            KvEvent::BlockStored(s) => stored(s),
            KvEvent::BlockRemoved(r) => json!({
                "type": "BlockRemoved",
                "block_hashes": r.block_hashes.iter().map(hash).collect::<Vec<_>>(),
                "medium": r.medium,
                "group_idx": r.group_idx,
                "locality": r.locality,
                "ownership": r.ownership,
            }),
            KvEvent::AllBlocksCleared => json!({ "type": "AllBlocksCleared" }),
        })
        .collect();
    json!({
        "ts": b.ts,
        "data_parallel_rank": b.data_parallel_rank,
        "events": events,
        "skipped_events": b.skipped_events,
    })
}
