//! Every `event_cases` and `zmq_frame_cases` entry of the vLLM compatibility
//! vectors: decoded structure, error cases, byte-exact re-encoding of vLLM's
//! own payloads, and ZMQ frame parsing.

use llmd_kvindex::events::{
    decode_event_batch, encode_event_batch, parse_message, parse_seq, parse_topic, BlockStored,
    EventBatch, EventLayout, ExtraValue, HashValue, KvEvent,
};
use serde_json::{json, Value};

const VECTORS: &str = include_str!("../../testdata/vllm-compat/vectors.json");

fn vectors() -> Value {
    serde_json::from_str(VECTORS).expect("vectors.json parses")
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len() % 2 == 0, "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn count(v: &Value, key: &str) -> usize {
    v["counts"][key].as_u64().expect("count") as usize
}

fn hash_json(h: &HashValue) -> Value {
    match h {
        HashValue::Int(v) => json!({ "int": v.to_string() }),
        HashValue::Bytes(b) => json!({ "bytes": hex(b) }),
    }
}

fn hashes_json(hs: &[HashValue]) -> (Value, Value) {
    let typed = hs.iter().map(hash_json).collect::<Vec<_>>();
    let keys = hs.iter().map(|h| h.key().0.to_string()).collect::<Vec<_>>();
    (json!(typed), json!(keys))
}

fn extra_json(v: &ExtraValue) -> Value {
    match v {
        ExtraValue::Nil => Value::Null,
        ExtraValue::Int(i) => json!(i64::try_from(*i).expect("extra int fits i64")),
        ExtraValue::Str(s) => json!(s),
        ExtraValue::Bytes(b) => json!({ "bytes": hex(b) }),
        ExtraValue::Array(items) => Value::Array(items.iter().map(extra_json).collect()),
    }
}

fn stored_json(s: &BlockStored) -> Value {
    let (hashes, keys) = hashes_json(&s.block_hashes);
    json!({
        "type": "BlockStored",
        "block_hashes": hashes,
        "block_hashes_u64": keys,
        "parent_block_hash": s.parent_block_hash.as_ref().map(hash_json),
        "parent_block_hash_u64": s.parent_block_hash.as_ref().map(|h| h.key().0.to_string()),
        "token_ids": s.token_ids,
        "block_size": s.block_size,
        "lora_id": s.lora_id,
        "medium": s.medium,
        "lora_name": s.lora_name,
        "extra_keys": s.extra_keys.as_ref().map(|entries| entries
            .iter()
            .map(|e| e.as_ref().map(|items| items.iter().map(extra_json).collect::<Vec<_>>()))
            .collect::<Vec<_>>()),
        "group_idx": s.group_idx,
        "kv_cache_spec_kind": s.kv_cache_spec_kind,
        "kv_cache_spec_sliding_window": s.kv_cache_spec_sliding_window,
        "locality": s.locality,
        "ownership": s.ownership,
        "session_id": s.session_id,
        "lookahead_token_ids": s.lookahead_token_ids,
    })
}

/// The decoded batch in the vectors' normalized shape.
fn batch_json(b: &EventBatch) -> Value {
    let events = b
        .events
        .iter()
        .map(|ev| match ev {
            KvEvent::BlockStored(s) => stored_json(s),
            KvEvent::BlockRemoved(r) => {
                let (hashes, keys) = hashes_json(&r.block_hashes);
                json!({
                    "type": "BlockRemoved",
                    "block_hashes": hashes,
                    "block_hashes_u64": keys,
                    "medium": r.medium,
                    "group_idx": r.group_idx,
                    "locality": r.locality,
                    "ownership": r.ownership,
                })
            }
            KvEvent::AllBlocksCleared => json!({ "type": "AllBlocksCleared" }),
        })
        .collect::<Vec<_>>();
    json!({
        "ts": b.ts,
        "data_parallel_rank": b.data_parallel_rank,
        "events": events,
        "skipped_events": b.skipped_events,
    })
}

#[test]
fn every_event_case_decodes_as_expected() {
    let v = vectors();
    let cases = v["event_cases"].as_array().expect("event_cases");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let payload = unhex(case["payload_hex"].as_str().expect("payload_hex"));
        let result = decode_event_batch(&payload);
        if case["expected_error"].as_bool() == Some(true) {
            let want = case["error_kind"].as_str().expect("error_kind");
            match result {
                Ok(b) => failures.push(format!("{id}: decoded {b:?}, expected {want} error")),
                Err(e) if e.kind.code() != want => failures.push(format!(
                    "{id}: error {e} ({}), expected {want}",
                    e.kind.code()
                )),
                Err(e) => assert!(e.offset <= payload.len(), "{id}: offset {}", e.offset),
            }
        } else {
            match result {
                Err(e) => failures.push(format!("{id}: {e}")),
                Ok(b) => {
                    let got = batch_json(&b);
                    if got != case["expected"] {
                        failures.push(format!(
                            "{id}:\n  got      {got}\n  expected {}",
                            case["expected"]
                        ));
                    }
                    // The ts comparison above is on JSON numbers; check bits too.
                    let want_ts = case["expected"]["ts"].as_f64().expect("ts");
                    assert_eq!(b.ts.to_bits(), want_ts.to_bits(), "{id}: ts");
                }
            }
        }
        checked += 1;
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(checked, count(&v, "event_cases"));
    assert_eq!(checked, 51);
}

#[test]
fn vllm_payloads_re_encode_byte_for_byte() {
    let v = vectors();
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in v["event_cases"].as_array().expect("event_cases") {
        if case["synthetic"].as_bool() != Some(false) {
            continue;
        }
        let id = case["id"].as_str().expect("id");
        let layout_id = case["layout"].as_str().expect("layout");
        let layout = EventLayout::parse(layout_id).expect("known layout");
        assert_eq!(layout.id(), layout_id, "{id}");
        let want = case["payload_hex"].as_str().expect("payload_hex");
        let batch = decode_event_batch(&unhex(want)).expect("vLLM payload decodes");
        let got = hex(&encode_event_batch(&batch, layout));
        if got != want {
            failures.push(format!("{id}:\n  got  {got}\n  want {want}"));
        }
        checked += 1;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(checked, 25, "non-synthetic cases");
}

#[test]
fn every_layout_round_trips_through_decode() {
    let v = vectors();
    for case in v["event_cases"].as_array().expect("event_cases") {
        if case["synthetic"].as_bool() != Some(false) {
            continue;
        }
        let payload = unhex(case["payload_hex"].as_str().expect("payload_hex"));
        let batch = decode_event_batch(&payload).expect("decodes");
        for layout in EventLayout::ALL {
            let bytes = encode_event_batch(&batch, layout);
            let back = decode_event_batch(&bytes).expect("own encoding decodes");
            assert_eq!(back.events.len(), batch.events.len(), "{layout}");
            assert_eq!(back.ts.to_bits(), batch.ts.to_bits());
            for (a, b) in back.events.iter().zip(&batch.events) {
                match (a, b) {
                    (KvEvent::BlockStored(a), KvEvent::BlockStored(b)) => {
                        assert_eq!(a.block_hashes, b.block_hashes);
                        assert_eq!(a.parent_block_hash, b.parent_block_hash);
                        assert_eq!(a.token_ids, b.token_ids);
                        assert_eq!(a.block_size, b.block_size);
                    }
                    (KvEvent::BlockRemoved(a), KvEvent::BlockRemoved(b)) => {
                        assert_eq!(a.block_hashes, b.block_hashes);
                    }
                    (a, b) => assert_eq!(a, b),
                }
            }
        }
    }
}

#[test]
fn every_zmq_frame_case() {
    let v = vectors();
    let cases = v["zmq_frame_cases"].as_array().expect("zmq_frame_cases");
    let mut checked = 0;
    for case in cases {
        let id = case["id"].as_str().expect("id");
        let topic = unhex(case["topic_hex"].as_str().expect("topic_hex"));
        let seq = unhex(case["seq_hex"].as_str().expect("seq_hex"));
        let payload = [0x90u8];
        let message = parse_message(&[&topic, &seq, &payload]);
        if case["expected_error"].as_bool() == Some(true) {
            assert!(message.is_err(), "{id}: accepted");
            assert!(
                parse_topic(&topic).is_err() || parse_seq(&seq).is_err(),
                "{id}"
            );
        } else {
            let (t, s, p) = message.unwrap_or_else(|e| panic!("{id}: {e}"));
            let want = &case["expected"];
            assert_eq!(t.topic, want["topic"].as_str().expect("topic"), "{id}");
            assert_eq!(t.pod, want["pod"].as_str().expect("pod"), "{id}");
            assert_eq!(t.model, want["model"].as_str().expect("model"), "{id}");
            assert_eq!(
                t.conforms_to_convention,
                want["conforms_to_convention"].as_bool().expect("conforms"),
                "{id}"
            );
            let want_seq: u64 = want["seq"].as_str().expect("seq").parse().expect("u64");
            assert_eq!(s, want_seq, "{id}");
            assert_eq!(p, &payload[..], "{id}");
            assert_eq!(
                llmd_kvindex::events::zmq::encode_seq(s).to_vec(),
                seq,
                "{id}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, count(&v, "zmq_frame_cases"));
    assert_eq!(checked, 14);
}
