"""Every event case of vectors.json (each vLLM layout, synthetic and malformed)
through llmd.decode_event_batch."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import vectors

import llmd

EVENT_CASES = vectors()["event_cases"]


def _typed(v: Any) -> Any:
    """A typed JSON value of vectors.json as the Python value it stands for."""
    if isinstance(v, list):
        return tuple(_typed(x) for x in v)
    if isinstance(v, dict):
        if "bytes" in v:
            return bytes.fromhex(v["bytes"])
        return int(v["int"])
    return v


def _u64(v: str | None) -> int | None:
    return None if v is None else int(v)


def _normalize(event: llmd.BlockStored | llmd.BlockRemoved | llmd.AllBlocksCleared) -> dict[str, Any]:
    if isinstance(event, llmd.AllBlocksCleared):
        return {"type": "AllBlocksCleared"}
    if isinstance(event, llmd.BlockRemoved):
        return {
            "type": "BlockRemoved",
            "block_hashes": event.raw_block_hashes,
            "block_hashes_u64": event.block_hashes,
            "medium": event.medium,
            "group_idx": event.group_idx,
            "locality": event.locality,
            "ownership": event.ownership,
        }
    return {
        "type": "BlockStored",
        "block_hashes": event.raw_block_hashes,
        "block_hashes_u64": event.block_hashes,
        "parent_block_hash": event.raw_parent_block_hash,
        "parent_block_hash_u64": event.parent_block_hash,
        "token_ids": event.token_ids,
        "block_size": event.block_size,
        "lora_id": event.lora_id,
        "medium": event.medium,
        "lora_name": event.lora_name,
        "extra_keys": event.extra_keys,
        "group_idx": event.group_idx,
        "kv_cache_spec_kind": event.kv_cache_spec_kind,
        "kv_cache_spec_sliding_window": event.kv_cache_spec_sliding_window,
        "locality": event.locality,
        "ownership": event.ownership,
        "session_id": event.session_id,
        "lookahead_token_ids": event.lookahead_token_ids,
    }


def _expected_event(e: dict[str, Any]) -> dict[str, Any]:
    out = dict(e)
    if e["type"] == "AllBlocksCleared":
        return out
    out["block_hashes"] = [_typed(h) for h in e["block_hashes"]]
    out["block_hashes_u64"] = [int(h) for h in e["block_hashes_u64"]]
    if e["type"] == "BlockStored":
        out["parent_block_hash"] = _typed(e["parent_block_hash"])
        out["parent_block_hash_u64"] = _u64(e["parent_block_hash_u64"])
        if e["extra_keys"] is not None:
            out["extra_keys"] = [None if k is None else _typed(k) for k in e["extra_keys"]]
    return out


@pytest.mark.parametrize("case", EVENT_CASES, ids=lambda c: str(c["id"]))
def test_event_case(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["payload_hex"])
    if case["expected_error"]:
        with pytest.raises(llmd.EventDecodeError) as info:
            llmd.decode_event_batch(payload)
        assert isinstance(info.value, ValueError)
        assert info.value.code == case["error_kind"]
        assert isinstance(info.value.offset, int)
        return
    batch = llmd.decode_event_batch(payload)
    expected = case["expected"]
    assert batch.ts == expected["ts"]
    assert batch.data_parallel_rank == expected["data_parallel_rank"]
    assert batch.skipped_events == expected["skipped_events"]
    assert len(batch) == len(expected["events"])
    assert [_normalize(e) for e in batch.events] == [_expected_event(e) for e in expected["events"]]


def test_every_layout_is_covered() -> None:
    layouts = {c["layout"] for c in EVENT_CASES if c["layout"]}
    assert len(layouts) == 12


def test_buffers_other_than_bytes() -> None:
    case = next(c for c in EVENT_CASES if not c["expected_error"])
    payload = bytes.fromhex(case["payload_hex"])
    a = llmd.decode_event_batch(payload)
    for other in (bytearray(payload), memoryview(payload)):
        b = llmd.decode_event_batch(other)
        assert (b.ts, b.events) == (a.ts, a.events)
    # Any other buffer is read as its bytes (an array of 16-bit values is
    # no msgpack batch); an int is no payload (not n zero bytes).
    import array

    with pytest.raises(llmd.EventDecodeError):
        llmd.decode_event_batch(array.array("H", [300, 301]))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        llmd.decode_event_batch(5)  # type: ignore[arg-type]


def test_events_compare_and_repr() -> None:
    case = next(c for c in EVENT_CASES if c["id"] == "0.24-0.25/stored_removed_cleared")
    batch = llmd.decode_event_batch(bytes.fromhex(case["payload_hex"]))
    kinds = [type(e).__name__ for e in batch.events]
    assert kinds == ["BlockStored", "BlockRemoved", "AllBlocksCleared"]
    again = llmd.decode_event_batch(bytes.fromhex(case["payload_hex"]))
    assert batch.events == again.events
    assert batch.events[0] != batch.events[1]
    assert llmd.AllBlocksCleared() == batch.events[2]
    assert repr(batch.events[2]) == "AllBlocksCleared()"
    assert repr(batch.events[0]).startswith("BlockStored(block_hashes=[")
    assert "EventBatch(ts=" in repr(batch)


def test_garbage_raises_decode_error() -> None:
    with pytest.raises(llmd.EventDecodeError):
        llmd.decode_event_batch(b"\xc1")
    with pytest.raises(TypeError):
        llmd.decode_event_batch("text")  # type: ignore[arg-type]
