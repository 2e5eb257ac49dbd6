"""examples/python/router.py against fake OpenAI-streaming backends on loopback."""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import socket
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from conftest import REPO_ROOT

import pytest

import llmd

TOKENS = 12
CACHED = 48


def load_router() -> ModuleType:
    spec = importlib.util.spec_from_file_location("llmd_example_router", REPO_ROOT / "examples" / "python" / "router.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeVllm:
    """Speaks the OpenAI completions API (streaming as SSE over chunked
    encoding, like vLLM) and serves a vLLM /metrics page."""

    name: str
    waiting: int
    requests: list[tuple[dict[str, Any], dict[str, str]]] = field(default_factory=list)
    tokenized: list[dict[str, Any]] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    """Prompts of non-streamed requests whose connection the router closed
    before the reply (vLLM aborts those)."""
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = (await reader.readuntil(b"\r\n")).decode().split()
        headers: dict[str, str] = {}
        while (h := (await reader.readuntil(b"\r\n")).decode().strip()) != "":
            k, _, v = h.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if line[1] == "/metrics":
            text = (
                f'vllm:num_requests_waiting{{model_name="m"}} {self.waiting}\n'
                'vllm:num_requests_running{model_name="m"} 1\n'
                'vllm:kv_cache_usage_perc{model_name="m"} 0.1\n'
            ).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(text), text))
        elif line[1] == "/tokenize":
            self.tokenized.append(json.loads(body))
            out = json.dumps({"count": 3, "max_model_len": 4096, "tokens": [7, 8, 9]}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(out), out))
        else:
            req = json.loads(body)
            self.requests.append((req, headers))
            usage: dict[str, Any] = {
                "prompt_tokens": 64,
                "completion_tokens": TOKENS,
                "total_tokens": 64 + TOKENS,
                "prompt_tokens_details": {"cached_tokens": CACHED},
            }
            if req.get("stream"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nx-inference-pod: %s\r\n\r\n" % self.name.encode())
                events: list[dict[str, Any]] = [
                    {"id": "c1", "object": "text_completion", "choices": [{"index": 0, "text": f"t{i} ", "finish_reason": None}]}
                    for i in range(TOKENS)
                ]
                if req.get("prompt") == "fail midway":
                    # vLLM reports an engine error inside the stream.
                    events = events[:2] + [{"error": {"object": "error", "message": "engine died", "code": 500}}]
                if (req.get("stream_options") or {}).get("include_usage"):
                    events.append({"id": "c1", "object": "text_completion", "choices": [], "usage": usage})
                for e in [json.dumps(e).encode() for e in events] + [b"[DONE]"]:
                    chunk = b"data: " + e + b"\n\n"
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
                    await asyncio.sleep(0.001)
                writer.write(b"0\r\n\r\n")
            elif req.get("prompt") == "slow":
                # A long non-streamed generation: nothing is sent until the
                # router closes the connection.
                if await reader.read(1) == b"":
                    self.aborted.append(req["prompt"])
            else:
                out = json.dumps({"choices": [{"index": 0, "text": "all at once"}], "usage": usage}).encode()
                # An interim response first (a server may send one; the
                # router must skip it).
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-inference-pod: %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (self.name.encode(), len(out), out)
                )
        await writer.drain()
        writer.close()


LAST_HEADERS: dict[str, str] = {}


def http(method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            LAST_HEADERS.clear()
            LAST_HEADERS.update({k.lower(): v for k, v in resp.headers.items()})
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def sse_events(raw: bytes) -> list[Any]:
    out = []
    for event in raw.split(b"\n\n"):
        if event.startswith(b"data: "):
            data = event[len(b"data: "):]
            out.append("[DONE]" if data == b"[DONE]" else json.loads(data))
    return out


async def scenario() -> None:
    router_mod = load_router()
    idle, busy = FakeVllm("pod-idle", waiting=0), FakeVllm("pod-busy", waiting=40)
    for b in (idle, busy):
        await b.start()
    backends = {b.name: router_mod.Backend(b.name, "127.0.0.1", b.port) for b in (idle, busy)}
    router = router_mod.Router(llmd.Scheduler.default(seed=1), backends, model="m", scrape_interval_s=0.02)
    server = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    router.feed.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [router.scheduler.endpoint_state(n)["metrics"] for n in backends]
            if all(m["updated_at_ns"] > 0 for m in states):
                break
            await asyncio.sleep(0.01)
        assert router.scheduler.endpoint_state("pod-busy")["metrics"]["waiting_queue_size"] == 40

        # Streaming: every token arrives, the usage chunk the client did not
        # ask for is withheld, and the scheduler learns the cached tokens.
        status, raw = await asyncio.to_thread(
            http, "POST", base + "/v1/completions", {"model": "m", "prompt": "hello there", "stream": True, "max_tokens": TOKENS}
        )
        assert status == 200
        assert LAST_HEADERS["x-inference-pod"] == "pod-idle"  # upstream headers are forwarded
        events = sse_events(raw)
        assert events[-1] == "[DONE]"
        assert "".join(e["choices"][0]["text"] for e in events[:-1]) == "".join(f"t{i} " for i in range(TOKENS))
        assert len(idle.requests) == 1 and not busy.requests
        forwarded, headers = idle.requests[0]
        assert forwarded["stream_options"] == {"include_usage": True}
        assert headers["x-gateway-destination-endpoint"] == f"127.0.0.1:{idle.port}"
        summary = router.completed[-1]
        assert (summary["target"], summary["cached_tokens"], summary["output_tokens"]) == ("pod-idle", CACHED, TOKENS)
        assert summary["first_token_at_ns"] is not None

        # Streaming with usage requested: the client gets the usage chunk.
        chat: dict[str, Any] = {
            "model": "m",
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        status, raw = await asyncio.to_thread(http, "POST", base + "/v1/chat/completions", chat)
        assert status == 200
        assert sse_events(raw)[-2]["usage"]["prompt_tokens_details"]["cached_tokens"] == CACHED

        # Non-streaming.
        status, raw = await asyncio.to_thread(http, "POST", base + "/v1/completions", {"model": "m", "prompt": "x"})
        assert status == 200 and json.loads(raw)["choices"][0]["text"] == "all at once"
        assert LAST_HEADERS["x-inference-pod"] == "pod-idle"
        assert router.completed[-1]["cached_tokens"] == CACHED and len(router.completed) == 3
        # The engine's usage gives the output tokens; no token arrived on its own.
        assert router.completed[-1]["output_tokens"] == TOKENS
        assert router.completed[-1]["first_token_at_ns"] is None

        # The client's credentials reach the backend (vLLM --api-key).
        status, _ = await asyncio.to_thread(
            http, "POST", base + "/v1/completions", {"model": "m", "prompt": "x"}, {"Authorization": "Bearer k1"}
        )
        assert status == 200 and idle.requests[-1][1]["authorization"] == "Bearer k1"
        del router.completed[-1]

        # An error vLLM sends inside a stream is forwarded, and the request
        # ends as failed, not served.
        status, raw = await asyncio.to_thread(
            http, "POST", base + "/v1/completions", {"model": "m", "prompt": "fail midway", "stream": True}
        )
        assert status == 200 and sse_events(raw)[-2]["error"]["message"] == "engine died"
        assert len(router.completed) == 3 and router.scheduler.open_requests == 0

        # Metrics and errors.
        status, raw = await asyncio.to_thread(http, "GET", base + "/metrics")
        assert status == 200
        metrics = raw.decode()
        assert f'llmd_kvcache_cached_tokens_total{{model="m",pool="default",source="reported"}} {4 * CACHED}' in metrics
        # The failed stream had its first token too.
        assert 'llmd_inference_ttft_count{model="m",pool="default"} 5' in metrics
        assert 'outcome="error_engine"} 1' in metrics
        status, _ = await asyncio.to_thread(http, "POST", base + "/v1/completions", None)
        assert status == 400
        status, _ = await asyncio.to_thread(http, "GET", base + "/nope")
        assert status == 404

        # A client that hangs up mid-stream leaves no request open.
        port = server.sockets[0].getsockname()[1]
        r, w = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"model": "m", "prompt": "bye", "stream": True}).encode()
        w.write(b"POST /v1/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await w.drain()
        assert (await r.readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        w.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if router.scheduler.open_requests == 0:
                break
            # Once the client has hung up, only the router keeps the
            # request's task alive while it waits for the backend: a cycle
            # collection then must not drop it.
            gc.collect()
            await asyncio.sleep(0.001)
        assert router.scheduler.open_requests == 0

        # A chunked body, sent after the router's 100 Continue.
        body = json.dumps({"model": "m", "prompt": "x"}).encode()
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(b"POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n")
        await w.drain()
        assert await r.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        w.write(b"%x;ext=1\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (len(body), body))
        await w.drain()
        answer = await r.read()
        w.close()
        assert answer.startswith(b"HTTP/1.1 200") and b"all at once" in answer, answer
        assert "expect" not in idle.requests[-1][1], "the router answered Expect itself"
        del router.completed[-1]
        # Ambiguous or unsupported framing is refused before any pick.
        for head, code in [
            (b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n{}", b"400"),
            (b"Transfer-Encoding: gzip\r\n\r\n{}", b"501"),
            (b"Content-Length: +2\r\n\r\n{}", b"400"),
            (b"Content-Length: \xb2\r\n\r\n{}", b"400"),
            (b"Transfer-Encoding: chunked\r\n\r\n0x2\r\n{}\r\n0\r\n\r\n", b"400"),
        ]:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(b"POST /v1/completions HTTP/1.1\r\n" + head)
            await w.drain()
            assert (await r.readuntil(b"\r\n")).startswith(b"HTTP/1.1 " + code), head
            w.close()
        assert router.scheduler.open_requests == 0

        # A client that leaves while its non-streamed reply is generated: the
        # upstream request is closed (vLLM aborts it) and the request ends
        # as cancelled.
        r, w = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"model": "m", "prompt": "slow"}).encode()
        w.write(b"POST /v1/completions HTTP/1.1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await w.drain()
        deadline = time.monotonic() + 30
        while router.scheduler.open_requests == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        w.close()
        while (router.scheduler.open_requests or not idle.aborted) and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        assert router.scheduler.open_requests == 0 and idle.aborted == ["slow"]

        # The chosen backend goes away: 502, and nothing stays open.
        assert idle.server is not None
        idle.server.close()
        await idle.server.wait_closed()
        status, _ = await asyncio.to_thread(http, "POST", base + "/v1/completions", {"model": "m", "prompt": "y"})
        assert status == 502
        assert router.scheduler.open_requests == 0
    finally:
        router.feed.stop()
        server.close()
        for b in (idle, busy):
            if b.server is not None:
                b.server.close()


def test_router_against_fake_backends() -> None:
    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


async def fallback_scenario() -> None:
    """A first target that cannot be reached: the request goes to the next
    one, and its load and summary follow it there."""
    router_mod = load_router()
    live = FakeVllm("pod-live", waiting=50)
    await live.start()
    # A port nothing listens on.
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    dead_port = probe.getsockname()[1]
    probe.close()
    backends = {
        "pod-dead": router_mod.Backend("pod-dead", "127.0.0.1", dead_port),
        live.name: router_mod.Backend(live.name, "127.0.0.1", live.port),
    }
    config = (
        "apiVersion: llm-d.ai/v1alpha1\nkind: EndpointPickerConfig\nplugins:\n"
        "- type: queue-scorer\n- type: max-score-picker\n  parameters: {maxNumOfEndpoints: 2}\n"
        "schedulingProfiles:\n- name: default\n  plugins:\n  - pluginRef: queue-scorer\n"
        "  - pluginRef: max-score-picker\n"
    )
    router = router_mod.Router(llmd.Scheduler(config), backends, model="m", tokenize=False)
    # The dead pod reports an empty queue, the live one a long one (the
    # feed is not started): the dead pod is picked first.
    router.scheduler.update_metrics("pod-dead", waiting_queue_size=0)
    router.scheduler.update_metrics(live.name, waiting_queue_size=50)
    server = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        decision = router.scheduler.pick(model="m", prompt="probe", request_id="probe")
        assert decision.target is not None and decision.target["name"] == "pod-dead"
        router.scheduler.on_complete("probe")
        status, _ = await asyncio.to_thread(http, "POST", base + "/v1/completions", {"model": "m", "prompt": "hi", "max_tokens": 3})
        assert status == 200 and len(live.requests) == 1
        summary = router.completed[-1]
        assert summary["target"] == "pod-live"
        # Counted where it was served (the dead pod's one is the probe).
        text = router.scheduler.render_metrics()
        counted = {
            line.split('endpoint="')[1].split('"')[0]: line.rsplit(" ", 1)[1]
            for line in text.splitlines()
            if line.startswith("llmd_inference_requests_total{") and 'outcome="ok"' in line
        }
        assert counted == {"pod-live": "1", "pod-dead": "1"}, text
        assert all(router.scheduler.endpoint_state(n)["inflight_requests"] == 0 for n in backends)
    finally:
        server.close()
        if live.server is not None:
            live.server.close()


def test_router_falls_back_and_moves_the_request() -> None:
    asyncio.run(asyncio.wait_for(fallback_scenario(), timeout=60))


async def tokenize_scenario() -> None:
    router_mod = load_router()
    pod = FakeVllm("pod-a", waiting=0)
    await pod.start()
    backends = {pod.name: router_mod.Backend(pod.name, "127.0.0.1", pod.port)}
    router = router_mod.Router(llmd.Scheduler.default(seed=1), backends, model="m", tokenize=True)
    server = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        shaping = {
            "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "I"}],
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "chat_template_kwargs": {"enable_thinking": False},
            "continue_final_message": True,
            "add_generation_prompt": False,
        }
        body = {"model": "m", "temperature": 0.5, "max_tokens": 3, **shaping}
        status, _ = await asyncio.to_thread(http, "POST", base + "/v1/chat/completions", body)
        assert status == 200
        # Every field that shapes the prompt, nothing else, vLLM's defaults
        # left to vLLM.
        assert pod.tokenized == [shaping]
        assert router.completed[-1]["prompt_tokens"] == 3  # the ids /tokenize gave
        status, _ = await asyncio.to_thread(
            http, "POST", base + "/v1/completions", {"model": "m", "prompt": "hi", "add_special_tokens": False}
        )
        assert status == 200 and pod.tokenized[-1] == {"prompt": "hi", "add_special_tokens": False}
        # Token ids are used as they are (vLLM's /tokenize takes text only).
        asked = len(pod.tokenized)
        status, _ = await asyncio.to_thread(http, "POST", base + "/v1/completions", {"model": "m", "prompt": [5, 6, 7, 8]})
        assert status == 200 and len(pod.tokenized) == asked
        assert router.completed[-1]["prompt_tokens"] == 4
        # Malformed fields are refused before the pick: nothing stays open.
        for bad in (
            {"stream": True, "stream_options": True},
            {"stream": "yes"},
            {"cache_salt": 5},
            {"prompt": [1, -2]},
        ):
            status, raw = await asyncio.to_thread(http, "POST", base + "/v1/completions", {"model": "m", "prompt": "x", **bad})
            assert status == 400, (bad, raw)
        assert router.scheduler.open_requests == 0
    finally:
        server.close()
        if pod.server is not None:
            pod.server.close()


def test_router_tokenizes_with_what_shapes_the_prompt() -> None:
    asyncio.run(asyncio.wait_for(tokenize_scenario(), timeout=60))


BURST_CONFIG = """apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: burst-prefix-cache-producer
  parameters: {windowDurationMs: 3000, blockSizeTokens: 16}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: burst-prefix-cache-producer}
- type: max-score-picker
"""


async def burst_scenario() -> None:
    router_mod = load_router()
    pods = [FakeVllm(f"pod-{i}", waiting=0) for i in range(3)]
    for p in pods:
        await p.start()
    backends = {p.name: router_mod.Backend(p.name, "127.0.0.1", p.port) for p in pods}
    with pytest.warns(llmd.NotExecutedWarning, match="windowDurationMs"):
        sched = llmd.Scheduler(BURST_CONFIG, seed=1)
    router = router_mod.Router(sched, backends, model="m", scrape_interval_s=0.02)
    # A window far longer than eight threads take to start on a loaded
    # machine, so that all eight land in it.
    assert router.burst is not None and router.burst.seconds == pytest.approx(3.0)
    server = await asyncio.start_server(router.handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        # Two rollout groups of four samples each arrive together (a thread
        # per client, so all eight are in flight within the window).
        prompts = {"a": "alpha " * 80, "b": "bravo " * 80}
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(8) as clients:
            sends = [
                loop.run_in_executor(clients, http, "POST", base + "/v1/completions", {"model": "m", "prompt": prompts[g]})
                for _ in range(4)
                for g in prompts
            ]
            results = await asyncio.gather(*sends)
        assert all(status == 200 for status, _ in results), results
        served = {p.name: {r["prompt"] for r, _ in p.requests} for p in pods}
        groups = [names for names in served.values() if names]
        assert sorted(len(g) for g in groups) == [1, 1], served  # one pod per prompt
        assert sum(len(p.requests) for p in pods) == 8
        metrics = router.scheduler.render_metrics()
        assert 'llmd_burst_requests_total{plugin="burst-prefix-cache-producer",outcome="colocated"} 8' in metrics
        assert router.scheduler.open_requests == 0
    finally:
        server.close()
        for p in pods:
            if p.server is not None:
                p.server.close()


def test_router_picks_bursts_a_window_at_a_time() -> None:
    asyncio.run(asyncio.wait_for(burst_scenario(), timeout=60))
