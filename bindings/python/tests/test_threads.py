"""One Scheduler and one BlockHasher shared by many threads: results stay
right, and native work runs with the GIL released (so it overlaps)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import kv_events
from conftest import CONFIGS_DIR

import llmd

MODEL = "m"
THREADS = 8
ROUNDS = 40
PODS = 4


def test_concurrent_picks_ingest_and_lifecycle() -> None:
    s = llmd.Scheduler.from_file(CONFIGS_DIR / "02-precise-prefix-kv-events.yaml", seed=3)
    for p in range(PODS):
        s.add_endpoint(f"pod-{p}", f"10.0.0.{p}:8000", model=MODEL)
        s.update_metrics(f"pod-{p}", kv_cache_usage=0.1)
    hasher = llmd.BlockHasher(seed="0")
    start = threading.Barrier(THREADS)

    def worker(t: int) -> list[str]:
        pod = f"pod-{t % PODS}"
        wrong = []
        start.wait()
        for i in range(ROUNDS):
            # A prompt only this (thread, round) uses, cached on `pod` alone.
            prompt = [100_000 * (t + 1) + 1000 * i + k for k in range(64)]
            s.ingest_kv_events(pod, kv_events.stored_for(prompt, key_base=(t << 32) + (i << 8)))
            d = s.pick(model=MODEL, tokens=prompt + [7], request_id=f"t{t}-r{i}")
            if d.target is None or d.target["name"] != pod:
                wrong.append(f"t{t}-r{i} -> {d.target}")
            assert s.on_first_token(d.request_id)
            summary = s.on_complete(d.request_id, cached_tokens=64)
            assert summary is not None and summary["id"] == d.request_id
            assert len(hasher.block_hashes(prompt)) == 4
        return wrong

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(worker, range(THREADS)))
    assert [w for r in results for w in r] == []
    assert s.open_requests == 0
    for p in range(PODS):
        assert s.endpoint_state(f"pod-{p}")["inflight_requests"] == 0


def test_native_work_overlaps_with_other_threads() -> None:
    """While one thread is inside a long hashing call, another thread keeps
    completing picks. With the GIL held during the call it could not: no
    attempt would see a single pick. A loaded machine may starve the picking
    thread for one call, so up to three calls are tried."""
    hasher = llmd.BlockHasher(seed="0")
    pool = list(range(50_000))
    tokens = pool * 60  # 3M tokens: tens of milliseconds of hashing
    s = llmd.Scheduler.default(seed=1)
    s.add_endpoint("pod-0", "10.0.0.0:8000")
    s.update_metrics("pod-0", kv_cache_usage=0.1)

    def attempt() -> tuple[int, float]:
        window: list[float] = []
        done = threading.Event()
        entered = threading.Event()

        def hash_it() -> None:
            entered.set()
            t0 = time.perf_counter()
            hasher.block_hashes(tokens)
            window.extend([t0, time.perf_counter()])
            done.set()

        finished: list[float] = []
        th = threading.Thread(target=hash_it)
        th.start()
        entered.wait()
        while not done.is_set():
            s.pick(prompt="hello", request_id="same")
            finished.append(time.perf_counter())
        th.join()
        t0, t1 = window
        assert t1 - t0 > 0.01
        return len([t for t in finished if t0 < t < t1]), t1 - t0

    seen = []
    for _ in range(3):
        during, took = attempt()
        seen.append(f"{during} picks in {1e3 * took:.0f} ms")
        if during >= 10:
            break
    assert during >= 10, f"too few picks finished during the hashing: {seen}"
