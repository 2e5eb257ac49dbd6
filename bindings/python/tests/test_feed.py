"""``llmd.Feed`` against libzmq publishers (pyzmq) on loopback: vLLM's
payloads from vectors.json in both socket directions, with a vLLM-style
replay ROUTER in both reply layouts; gaps, duplicates, restarts, replays
too old, malformed payloads, and the config it executes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import zmq
from conftest import CONFIGS_DIR, vectors
from kv_events import stored_for

import llmd

END = b"\xff" * 8
PRECISE = """apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
  - pluginRef: max-score-picker
"""

GOOD = [bytes.fromhex(c["payload_hex"]) for c in vectors()["event_cases"] if not c["expected_error"]]
# On a bound socket the publishers of one pod are told apart by the batch's
# data-parallel rank (each rank publishes separately), so one publisher
# sends one rank: the cases of rank 0 or none.
GOOD_RANK0 = [
    bytes.fromhex(c["payload_hex"])
    for c in vectors()["event_cases"]
    if not c["expected_error"] and not c["expected"]["data_parallel_rank"]
]
BAD = [bytes.fromhex(c["payload_hex"]) for c in vectors()["event_cases"] if c["expected_error"]]


class VllmPublisher:
    """vLLM's publisher as a pyzmq program: a PUB socket (XPUB, to see the
    subscription arrive) sending topic | seq | payload, and a ROUTER replay
    socket answering a start seq with every buffered batch from it on, then
    the end marker, in the layout of vLLM >= 0.26 or <= 0.25."""

    def __init__(self, ctx: zmq.Context[zmq.Socket[bytes]], topic: bytes, *, with_topic: bool = True) -> None:
        self.topic = topic
        self.with_topic = with_topic
        self.buffer: list[tuple[int, bytes]] = []
        self.pub = ctx.socket(zmq.XPUB)
        self.router = ctx.socket(zmq.ROUTER)
        self.router.bind("tcp://127.0.0.1:*")
        self.replay_endpoint = self.router.getsockopt_string(zmq.LAST_ENDPOINT)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def bind(self) -> str:
        self.pub.bind("tcp://127.0.0.1:*")
        return self.pub.getsockopt_string(zmq.LAST_ENDPOINT)

    def connect(self, endpoint: str) -> None:
        self.pub.connect(endpoint)

    def wait_subscribed(self, timeout: float = 10.0) -> None:
        self.pub.setsockopt(zmq.RCVTIMEO, int(timeout * 1000))
        msg = self.pub.recv()
        assert msg[:1] == b"\x01", msg

    def send(self, seq: int, payload: bytes, *, live: bool = True) -> None:
        with self._lock:
            self.buffer.append((seq, payload))
        if live:
            self.pub.send_multipart([self.topic, seq.to_bytes(8, "big"), payload])

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            ident, _, start = self.router.recv_multipart()
            first = int.from_bytes(start, "big")
            with self._lock:
                batches = [(s, p) for s, p in self.buffer if s >= first]
            for s, p in batches:
                frames = [self.topic, s.to_bytes(8, "big"), p] if self.with_topic else [s.to_bytes(8, "big"), p]
                self.router.send_multipart([ident, b"", *frames])
            end = [b"", END, b""] if self.with_topic else [END, b""]
            self.router.send_multipart([ident, b"", *end])

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.pub.close(linger=0)
        self.router.close(linger=0)


@contextmanager
def publisher(topic: bytes, *, with_topic: bool = True) -> Iterator[VllmPublisher]:
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    p = VllmPublisher(ctx, topic, with_topic=with_topic)
    try:
        yield p
    finally:
        p.close()
        ctx.term()


def wait_for(what: str, cond: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def routed(sched: llmd.Scheduler, tokens: list[int]) -> str:
    target = sched.pick(tokens=tokens, model="m").target
    assert target is not None
    return target["name"]


def pod_stats(feed: llmd.Feed, name: str) -> dict[str, Any]:
    return dict(feed.stats()[name])


@pytest.mark.parametrize("with_topic", [True, False], ids=["replay>=0.26", "replay<=0.25"])
@pytest.mark.parametrize("direction", ["pod-binds", "router-binds"])
def test_vllm_payloads_gaps_and_duplicates(direction: str, with_topic: bool) -> None:
    sched = llmd.Scheduler(PRECISE)
    feed = llmd.Feed(sched, concurrency=2, replay_timeout=10.0)
    good = GOOD if direction == "pod-binds" else GOOD_RANK0
    with publisher(b"kv@127.0.0.7@m", with_topic=with_topic) as pub:
        if direction == "pod-binds":
            feed.add_pod("pod-a", "127.0.0.7:8000", events=pub.bind(), replay=pub.replay_endpoint, scrape=False)
        else:
            feed.add_pod("pod-a", "127.0.0.7:8000", replay=pub.replay_endpoint, scrape=False)
            bound = feed.bind_events("tcp://127.0.0.1:0")
            assert bound != "tcp://127.0.0.1:0" and feed.bound_endpoints == [bound]
            pub.connect(bound)
        with feed:
            pub.wait_subscribed()
            lost = 3
            for seq, payload in enumerate(good):
                pub.send(seq, payload, live=seq != lost)
            pub.send(len(good) - 1, good[-1])  # the same number again
            for i, payload in enumerate(BAD):
                pub.send(len(good) + i, payload)
            wait_for("every batch", lambda: pod_stats(feed, "pod-a")["decode_errors"] == len(BAD))
            # Batches apply as the replay streams in; its counter moves when it ends.
            wait_for("the good batches", lambda: pod_stats(feed, "pod-a")["events"] == len(good))
            wait_for("the replay", lambda: pod_stats(feed, "pod-a")["replays"] == 1)
            st = pod_stats(feed, "pod-a")
            assert set(st) == set(llmd.PodStats.__annotations__)
            assert (st["gaps"], st["replays"], st["clears"], st["restarts"]) == (1, 1, 0, 0), st
            assert st["duplicates"] >= 1
            assert st["malformed"] == 0 and st["queue_drops"] == 0
            assert st["blocks"] > 0 and st["last_event_age_s"] is not None
    assert not feed.running
    text = feed.render_metrics()
    assert f'llmd_feed_event_batches_total{{pod="pod-a"}} {len(good)}' in text
    assert 'llmd_feed_replays_total{pod="pod-a",result="ok"} 1' in text


@pytest.mark.parametrize("direction", ["pod-binds", "router-binds"])
def test_libzmq_answers_heartbeats_so_an_idle_publisher_stays_connected(direction: str) -> None:
    """The feed PINGs a quiet connection and takes one that does not answer
    for dead: libzmq must answer (PONG), on connections either side dialed,
    so that an idle pod is never cut off."""
    sched = llmd.Scheduler(PRECISE)
    feed = llmd.Feed(sched, concurrency=1, heartbeat_interval=1.0)
    with publisher(b"kv@127.0.0.7@m") as pub:
        if direction == "pod-binds":
            feed.add_pod("pod-a", "127.0.0.7:8000", events=pub.bind(), scrape=False)
        else:
            feed.add_pod("pod-a", "127.0.0.7:8000", scrape=False)
            pub.connect(feed.bind_events("tcp://127.0.0.1:0"))
        with feed:
            pub.wait_subscribed()
            time.sleep(3.5)  # three quiet intervals: three PINGs answered
            pub.send(0, GOOD_RANK0[0])
            wait_for("the batch", lambda: pod_stats(feed, "pod-a")["events"] == 1)
            st = pod_stats(feed, "pod-a")
            assert (st["heartbeat_timeouts"], st["reconnects"]) == (0, 0), st
        text = feed.render_metrics()
        assert "llmd_feed_bound_heartbeat_timeouts_total 0" in text
    with pytest.raises(llmd.InvalidArgumentError, match="heartbeat_interval"):
        llmd.Feed(sched, heartbeat_interval=-1.0)
    off = llmd.Feed(sched, heartbeat_interval=0)  # off, and reported as the host's setting
    assert {(s["plugin"], s["setting"], s["executed"]) for s in off.settings} >= {("host", "heartbeat_interval", True)}
    with pytest.raises(llmd.InvalidArgumentError, match="concurrency must be in 1..=1024"):
        llmd.Feed(sched, concurrency=2000)


def test_restart_replay_too_old_and_routing() -> None:
    sched = llmd.Scheduler(PRECISE)
    sched.add_endpoint("other", "127.0.0.9:8000")
    feed = llmd.Feed(sched, concurrency=1, replay_timeout=10.0)
    toks = list(range(1000, 1064))
    with publisher(b"kv@a@m") as pub:
        ev = pub.bind()
        feed.add_pod("a", "127.0.0.8:8000", events=ev, replay=pub.replay_endpoint, scrape=False)
        with feed:
            pub.wait_subscribed()
            pub.send(0, stored_for(toks, key_base=10))
            wait_for("batch 0", lambda: pod_stats(feed, "a")["events"] == 1)
            assert routed(sched, toks) == "a"
            # Batches 1-4 are lost and gone from the buffer before anyone asks.
            pub.buffer.clear()
            pub.send(5, stored_for(toks[:32], key_base=50), live=False)
            pub.send(6, stored_for(toks[:16], key_base=60))
            wait_for("the replay", lambda: pod_stats(feed, "a")["replays_too_old"] == 1)
            wait_for("5 and 6", lambda: pod_stats(feed, "a")["events"] == 3)
            st = pod_stats(feed, "a")
            assert (st["gaps"], st["clears"]) == (1, 1), st
        # A restarted engine: a new publisher on the same port, numbering from 0.
        port = ev.rsplit(":", 1)[1]
    feed2 = llmd.Feed(sched, concurrency=1)
    with publisher(b"kv@a@m") as pub2:
        pub2.pub.bind(f"tcp://127.0.0.1:{port}")
        feed2.add_pod("a2", "127.0.0.8:8001", events=f"tcp://127.0.0.1:{port}", scrape=False)
        with feed2:
            pub2.wait_subscribed()
            pub2.send(0, stored_for(toks, key_base=10))
            wait_for("the batch", lambda: pod_stats(feed2, "a2")["events"] == 1)


def test_publisher_killed_and_restarted_is_a_restart() -> None:
    sched = llmd.Scheduler(PRECISE)
    feed = llmd.Feed(sched, concurrency=1)
    toks = list(range(64))
    with publisher(b"kv@a@m") as pub:
        ev = pub.bind()
        feed.add_pod("a", "127.0.0.8:8000", events=ev, scrape=False)
        feed.start()
        pub.wait_subscribed()
        for seq in range(3):
            pub.send(seq, stored_for(toks, key_base=100 * seq))
        wait_for("3 batches", lambda: pod_stats(feed, "a")["events"] == 3)
    with publisher(b"kv@a@m") as pub:
        pub.pub.bind(ev)
        pub.wait_subscribed()
        pub.send(0, stored_for(toks, key_base=7))
        wait_for("the restart", lambda: pod_stats(feed, "a")["restarts"] == 1)
        wait_for("the batch", lambda: pod_stats(feed, "a")["events"] == 4)
        assert pod_stats(feed, "a")["reconnects"] >= 1
    feed.stop()


def test_precise_config_is_executed_and_reported() -> None:
    sched = llmd.Scheduler.from_file(CONFIGS_DIR / "02-precise-prefix-kv-events.yaml")
    feed = llmd.Feed(sched)
    by_setting = {s["setting"]: s for s in feed.settings}
    assert by_setting["kvEventsConfig.concurrency"]["executed"]
    assert "8 ingest workers" in by_setting["kvEventsConfig.concurrency"]["note"]
    assert "5557" in by_setting["kvEventsConfig.discoverPods"]["note"]
    assert all(s["executed"] for s in feed.settings), feed.settings


def test_lifecycle_and_errors() -> None:
    sched = llmd.Scheduler(PRECISE)
    feed = llmd.Feed(sched)
    assert repr(feed) == "Feed(pods=0, running=False)"
    feed.add_pod("p", "127.0.0.1:1", scrape=False)
    assert feed.pods == ["p"] and sched.endpoints() == ["p"]
    with pytest.raises(llmd.InvalidArgumentError):
        feed.add_pod("p", "127.0.0.1:1")
    with pytest.raises(llmd.InvalidArgumentError):
        feed.add_pod("q", "127.0.0.1:2", events="ipc:///tmp/x")
    with pytest.raises(llmd.InvalidArgumentError):
        llmd.Feed(sched, concurrency=0)
    with pytest.raises(llmd.UnknownEndpointError) as info:
        feed.remove_pod("nope")
    assert info.value.code == "unknown_pod"
    with feed as f:
        assert f.running
    assert not feed.running
    with pytest.raises(llmd.InvalidArgumentError):
        feed.start()
    feed.remove_pod("p")
    assert sched.endpoints() == []


def test_sync_pods_reconciles_the_hosts_list() -> None:
    sched = llmd.Scheduler(PRECISE)
    feed = llmd.Feed(sched)
    feed.sync_pods([{"name": "a", "address": "127.0.0.1:1", "scrape": False}, {"name": "b", "address": "127.0.0.1:2", "scrape": False}])
    assert sorted(feed.pods) == ["a", "b"]
    feed.sync_pods([{"name": "b", "address": "127.0.0.1:2", "scrape": False}, {"name": "c", "address": "127.0.0.1:3", "scrape": False}])
    assert sorted(feed.pods) == ["b", "c"] and sorted(sched.endpoints()) == ["b", "c"]
    with pytest.raises(llmd.InvalidArgumentError):
        feed.sync_pods([{"name": "x"}])
    # Mistyped or unknown keys are refused, not read as defaults.
    mistyped: list[tuple[dict[str, Any], str]] = [
        ({"scrape": "false"}, "scrape"),
        ({"data_parallel_size": 0}, "data_parallel_size"),
        ({"events": 5557}, "events"),
        ({"metrics": "http://x/metrics"}, "unknown key 'metrics'"),
    ]
    for bad, word in mistyped:
        with pytest.raises(llmd.InvalidArgumentError, match=word):
            feed.sync_pods([{"name": "c", "address": "127.0.0.1:3", **bad}])
    assert sorted(feed.pods) == ["b", "c"]
    # Any sequence of any mappings, as the stubs say.
    from types import MappingProxyType

    feed.sync_pods((MappingProxyType({"name": "c", "address": "127.0.0.1:3", "scrape": False}),))
    assert feed.pods == ["c"]
    # add_pod refuses what sync_pods refuses, with the same error.
    with pytest.raises(llmd.InvalidArgumentError, match="data_parallel_size"):
        feed.add_pod("d", "127.0.0.1:4", scrape=False, data_parallel_size=0)
    with pytest.raises(llmd.InvalidArgumentError, match="out of range"):
        feed.add_pod("d", "127.0.0.1:4", scrape=False, data_parallel_size=70000)
    assert feed.pods == ["c"]
    # A stopped feed refuses what it would never follow.
    feed.stop()
    for call in (
        lambda: feed.add_pod("e", "127.0.0.1:5", scrape=False),
        lambda: feed.bind_events("tcp://127.0.0.1:0"),
    ):
        with pytest.raises(llmd.InvalidArgumentError, match="stopped"):
            call()
