"""llmd.KvIndex: events in, prefix matches out."""

from __future__ import annotations

import threading

import kv_events
import pytest
from conftest import CONFIGS_DIR

import llmd


def test_approximate_mode_matches_routed_prefixes() -> None:
    index = llmd.KvIndex(mode="approximate", block_size=16)
    keys = llmd.BlockHasher(seed="0").block_hashes(list(range(128)))
    index.record_routing("pod-a", keys[:3], model="m")
    index.record_routing("pod-b", keys[:6], model="m")
    blocks = index.match_prefix_blocks(keys, model="m")
    assert {name: n for name, (n, _) in blocks.items()} == {"pod-a": 3, "pod-b": 6}
    assert blocks["pod-b"][1] == pytest.approx(6.0)  # GPU weight 1.0 per block
    assert index.match_prefix(keys, model="m") == {"pod-a": pytest.approx(3.0), "pod-b": pytest.approx(6.0)}
    assert index.match_prefix(keys, model="other") == {}
    assert index.match_prefix([12345, *keys], model="m") == {}  # a match starts at block 0
    index.remove_endpoint("pod-b")
    assert set(index.match_prefix(keys, model="m")) == {"pod-a"}
    index.remove_endpoint("never-seen")


def test_engine_parity_matches_vllm_keys() -> None:
    hasher = llmd.BlockHasher(seed="0", algo="sha256", vllm_version="0.20.0")
    index = llmd.KvIndex(hasher=hasher)
    tokens = list(range(7, 7 + 96))
    keys = hasher.block_hashes(tokens)
    assert index.prompt_keys(tokens) == keys
    stored = kv_events.batch([kv_events.stored(keys, tokens)])
    r = index.apply_event_batch("pod-a", stored, model="m")
    assert (r["stored"], r["parity_checks"], r["parity_mismatches"]) == (6, 1, 0)
    assert index.match_prefix_blocks(keys[:4] + [1], model="m")["pod-a"][0] == 4

    # An index configured with another seed notices on the first parent-less event.
    wrong = llmd.KvIndex(hasher=llmd.BlockHasher(seed="1", algo="sha256", vllm_version="0.20.0"))
    assert wrong.apply_event_batch("pod-a", stored, model="m")["parity_mismatches"] == 1
    assert wrong.stats()["parity_mismatches"] == 1


def test_events_a_later_clear_erases_are_reported_as_superseded() -> None:
    tokens = list(range(300, 300 + 64))
    store = kv_events.stored(list(range(10, 14)), tokens)
    events = kv_events.batch([store, kv_events.cleared(), store, kv_events.cleared(), store])
    r = llmd.KvIndex(block_size=16).apply_event_batch("pod-a", events, model="m")
    assert (r["superseded"], r["cleared"], r["stored"]) == (3, 1, 4)
    s = llmd.Scheduler.from_file(CONFIGS_DIR / "02-precise-prefix-kv-events.yaml")
    s.add_endpoint("pod-a", "10.0.0.1:8000")
    ingested = s.ingest_kv_events("pod-a", events)
    assert (ingested["superseded"], ingested["cleared"], ingested["stored"], ingested["skipped"]) == (3, 1, 4, 0)


def test_router_keys_prompt_match() -> None:
    index = llmd.KvIndex(block_size=16)
    tokens = list(range(900, 900 + 80))
    index.apply_event_batch("pod-a", kv_events.stored_for(tokens, key_base=77), model="m")
    keys = index.prompt_keys(tokens + [1, 2], model="m")
    assert len(keys) == 5
    assert index.match_prefix_blocks(keys, model="m")["pod-a"][0] == 5
    assert index.match_prefix(keys, model="m") == {"pod-a": pytest.approx(5.0)}
    assert index.match_prefix(index.prompt_keys(tokens, model="m", lora_name="x"), model="m") == {}


def test_router_keys_mode_applies_events() -> None:
    index = llmd.KvIndex(block_size=16)
    assert index.block_size == 16
    tokens = list(range(500, 500 + 64))
    r = index.apply_event_batch("pod-a", kv_events.stored_for(tokens, key_base=1000), model="m", seq=0)
    assert (r["stored"], r["unplaceable"], r["seq_status"]) == (4, 0, "first")
    cpu = kv_events.batch([kv_events.stored([2000, 2001], tokens[:32], medium="CPU")])
    assert index.apply_event_batch("pod-b", cpu, model="m")["stored"] == 2
    stats = index.stats()
    assert stats["endpoints"]["pod-a"]["gpu"] == 4 and stats["endpoints"]["pod-b"]["cpu"] == 2
    assert stats["entries"] <= stats["capacity"]

    gone = kv_events.batch([kv_events.removed([1000, 1001, 1002, 1003])])
    assert index.apply_event_batch("pod-a", gone, model="m", seq=1)["removed"] == 4
    assert index.stats()["endpoints"]["pod-a"]["gpu"] == 0

    # A duplicate is skipped; sequence 0 again is a restart: the cache is cleared first.
    again = kv_events.stored_for(tokens, key_base=3000)
    assert index.apply_event_batch("pod-a", again, model="m", seq=2)["stored"] == 4
    assert index.apply_event_batch("pod-a", again, model="m", seq=2)["seq_status"] == "duplicate"
    restart = index.apply_event_batch("pod-a", kv_events.stored_for(tokens[:16], key_base=4000), model="m", seq=0)
    assert restart["seq_status"] == "restart"
    assert index.stats()["endpoints"]["pod-a"]["gpu"] == 1
    # A gap, then the lost batches from the replay socket: applied, not a
    # restart (which would drop what the pod holds).
    empty = kv_events.batch([])
    assert index.apply_event_batch("pod-a", empty, model="m", seq=4)["seq_status"] == "gap"
    replayed = index.apply_event_batch("pod-a", kv_events.stored_for(tokens, key_base=5000), model="m", seq=1)
    # Block 0 is held since the restart: the replay adds the other three.
    assert replayed["seq_status"] == "replayed" and replayed["stored"] == 3
    assert index.stats()["endpoints"]["pod-a"]["gpu"] == 4
    assert index.apply_event_batch("pod-a", empty, model="m", seq=1)["seq_status"] == "duplicate"
    index.clear_endpoint("pod-b")
    assert index.stats()["endpoints"]["pod-b"]["cpu"] == 0
    index.tick()


def test_errors() -> None:
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.KvIndex(mode="telepathy")  # type: ignore[arg-type]
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.KvIndex(mode="engine_parity")
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.KvIndex(mode="approximate", hasher=llmd.BlockHasher())
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.KvIndex(capacity_blocks=0)
    with pytest.raises(llmd.InvalidArgumentError, match="approx_capacity_per_endpoint"):
        llmd.KvIndex(mode="approximate", approx_capacity_per_endpoint=0)
    small = llmd.KvIndex(mode="approximate", approx_capacity_per_endpoint=2)
    keys = small.prompt_keys(list(range(64)))
    small.record_routing("a", keys)  # four blocks; the two oldest are forgotten
    assert small.match_prefix(keys) == {}
    # A table that cannot be allocated is an exception, not an abort.
    with pytest.raises(llmd.ResourceExhaustedError, match="cannot allocate"):
        llmd.KvIndex(capacity_blocks=2**36)
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.KvIndex(gpu_weight=-1.0)
    index = llmd.KvIndex(max_endpoints=1)
    index.record_routing("a", [1])
    with pytest.raises(llmd.ResourceExhaustedError) as full:
        index.record_routing("b", [1])
    # The code C gives every index error, and the scheduler's for the same.
    assert full.value.code == "index"
    with pytest.raises(llmd.EventDecodeError):
        index.apply_event_batch("a", b"\xc1")


def test_parallel_writers_and_readers() -> None:
    index = llmd.KvIndex(mode="approximate")
    keys = [list(range(t << 20, (t << 20) + 32)) for t in range(8)]
    start = threading.Barrier(8)
    errors: list[str] = []

    def work(t: int) -> None:
        start.wait()
        for _ in range(200):
            index.record_routing(f"pod-{t}", keys[t])
            found = index.match_prefix_blocks(keys[t])
            if found.get(f"pod-{t}", (0, 0.0))[0] != 32 or set(found) != {f"pod-{t}"}:
                errors.append(f"{t}: {found}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert len(index.stats()["endpoints"]) == 8
