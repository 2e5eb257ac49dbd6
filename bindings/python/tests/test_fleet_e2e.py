"""End to end on loopback: `llmd pods` x 4 (simulated vLLM pods speaking the
OpenAI API, /metrics, /tokenize and KV events over ZMQ) behind
examples/python/router.py with its llmd.Feed, on a shared-prefix workload.
Precise routing's cache hit rate, read from the pods' own /metrics, must beat
random routing's by a clear margin in both event forms, and the cached
tokens the router predicted must equal those the engines reported."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO_ROOT
from test_router_example import http, load_router

import llmd

PODS = 4
GROUPS = 8
REQUESTS = 48
RANDOM_CONFIG = """apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: random-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: random-picker
"""


def llmd_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO_ROOT / "target"))
    subprocess.run(["cargo", "build", "-q", "-p", "llmd-sim", "--bin", "llmd"], cwd=REPO_ROOT, check=True)
    return target / "debug" / "llmd"


@contextmanager
def fleet(form: str) -> Iterator[list[list[str]]]:
    proc = subprocess.Popen(
        [str(llmd_binary()), "pods", "-n", str(PODS), "--events", form, "--model", "m", "--speed", "4"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield [proc.stdout.readline().split() for _ in range(PODS)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def words(seed: int, n: int) -> str:
    return " ".join(f"w{seed}x{i}" for i in range(n))


def pod_hits(pods: list[list[str]]) -> tuple[float, float]:
    hits = queries = 0.0
    for p in pods:
        with urllib.request.urlopen(p[1] + "/metrics", timeout=5) as r:
            text = r.read().decode()
        hits += float(re.search(r"^vllm:prefix_cache_hits_total\{.*\} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
        queries += float(re.search(r"^vllm:prefix_cache_queries_total\{.*\} (\S+)$", text, re.M).group(1))  # type: ignore[union-attr]
    return hits, queries


def counter(text: str, name: str, source: str) -> float:
    m = re.search(rf'^{name}{{model="m",pool="default",source="{source}"}} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


async def run(config: str, pods: list[list[str]]) -> dict[str, Any]:
    router_mod = load_router()
    backends = {}
    for name, url, events, replay in pods:
        b = router_mod.parse_backend(f"{name}={url}")
        b.events, b.replay = events, replay
        backends[name] = b
    router = router_mod.Router(llmd.Scheduler(config, seed=1), backends, model="m")
    server = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    before = pod_hits(pods)
    router.feed.start()

    def batches() -> int:
        return sum(st["events"] for st in router.feed.stats().values())

    async def until(cond: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.005)

    try:
        # The feed's threads are up (every pod scraped once), and its
        # subscriptions have had time to reach the pods' publishers, which
        # drop what they publish before a subscriber joins.
        await until(lambda: all(st["scrapes"] > 0 for st in router.feed.stats().values()))
        await asyncio.sleep(0.2)
        for i in range(REQUESTS):
            group = i % GROUPS
            # 240 shared words, then a question of its own: 15 full blocks
            # shared, never block-aligned in total.
            path, body = "/v1/completions", {"model": "m", "max_tokens": 4, "stream": i % 2 == 0}
            if group % 4 == 3:
                # Chat with tools and a template argument, both of which the
                # pods' template renders: the router's tokens match the
                # engine's only when /tokenize gets them too.
                path = "/v1/chat/completions"
                body["messages"] = [
                    {"role": "system", "content": words(group, 240)},
                    {"role": "user", "content": words(1000 + i, 21)},
                ]
                body["tools"] = [{"type": "function", "function": {"name": f"lookup{group}"}}]
                body["chat_template_kwargs"] = {"enable_thinking": False}
            else:
                body["prompt"] = words(group, 240) + " " + words(1000 + i, 21)
            seen = batches()
            status, raw = await asyncio.to_thread(http, "POST", base + path, body)
            assert status == 200, raw
            # Let the pod's KV events reach the index (a real client would
            # not wait; here it keeps the comparison exact): every request
            # stores a block of its own question, so a batch comes.
            await until(lambda: batches() > seen)
            await asyncio.sleep(0.02)
        after = pod_hits(pods)
        text = router.scheduler.render_metrics()
        stats = router.feed.stats()
    finally:
        router.feed.stop()
        server.close()
    hits, queries = after[0] - before[0], after[1] - before[1]
    return {
        "hit_rate": hits / queries,
        "predicted": counter(text, "llmd_kvcache_cached_tokens_total", "predicted"),
        "reported": counter(text, "llmd_kvcache_cached_tokens_total", "reported"),
        "stats": stats,
        "completed": len(router.completed),
    }


@pytest.mark.parametrize("form", ["map", "array"])
def test_precise_routing_beats_random_on_a_real_protocol_fleet(form: str) -> None:
    router_mod = load_router()
    with fleet(form) as pods:
        precise = asyncio.run(asyncio.wait_for(run(router_mod.PRECISE_CONFIG, pods), timeout=120))
    with fleet(form) as pods:
        rand = asyncio.run(asyncio.wait_for(run(RANDOM_CONFIG, pods), timeout=120))
    print(json.dumps({"form": form, "precise": precise["hit_rate"], "random": rand["hit_rate"]}))
    assert precise["completed"] == rand["completed"] == REQUESTS
    # 8 groups of 15 shared blocks over 4 pods: precise routing misses once
    # per group; random misses on every pod a group reaches first.
    assert precise["hit_rate"] > rand["hit_rate"] + 0.2, (precise["hit_rate"], rand["hit_rate"])
    assert precise["hit_rate"] > 0.7
    assert precise["predicted"] > 0
    assert precise["predicted"] == precise["reported"], (precise["predicted"], precise["reported"])
    for st in precise["stats"].values():
        assert st["events"] > 0 and st["malformed"] == 0 and st["decode_errors"] == 0, st
        assert st["scrapes"] > 0


def test_a_libzmq_subscriber_reads_the_fake_pods_events() -> None:
    """The fake pods' publisher greets as ZMTP 3.1 (it answers PING): a
    libzmq SUB (pyzmq) subscribes to it, in whatever form it sends the
    subscription, and receives vLLM's three frames for a request's blocks,
    decoding with the library's own decoder."""
    import zmq

    with fleet("map") as pods:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        try:
            sub.setsockopt(zmq.SUBSCRIBE, b"kv@")
            sub.connect(pods[0][2])
            # A publisher drops what it sends before the subscription
            # arrives: request until a batch comes (each stores new blocks).
            for attempt in range(40):
                body = {"model": "m", "prompt": words(100 + attempt, 64), "max_tokens": 2}
                status, raw = http("POST", pods[0][1] + "/v1/completions", body)
                assert status == 200, raw
                if sub.poll(500):
                    break
            else:
                pytest.fail("no KV-event batch reached the libzmq subscriber")
            topic, seq, payload = sub.recv_multipart()
            assert topic.startswith(b"kv@") and len(seq) == 8
            batch = llmd.decode_event_batch(payload)
            assert any(type(e).__name__ == "BlockStored" for e in batch.events), batch
        finally:
            sub.close(linger=0)
            ctx.term()
