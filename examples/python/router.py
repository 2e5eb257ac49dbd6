"""A small OpenAI-compatible streaming router built on llmd (standard library only).

For every ``POST /v1/completions`` or ``/v1/chat/completions`` it asks the
scheduler for a backend, forwards the request there (with llm-d's routing
headers), streams the answer back as it arrives (with the backend's ``x-*``
response headers and the decision's response headers), and tells the scheduler
about the first token, every further token and the completion, with the
cached-token count the engine reports in its usage. With a
`burst-prefix-cache-producer` in the config, requests are held for its window
and picked together (`Scheduler.pick_batch`), so requests sharing a prompt
share a backend.

An ``llmd.Feed`` connects the scheduler to the backends: it scrapes their
``/metrics`` and, for backends with a KV-event endpoint, subscribes to their
events (with vLLM's replay on gaps), so precise prefix-cache routing works out
of the box. Prompts are tokenized by a backend's ``/tokenize`` when events are
on (the router must see the engine's token ids). ``GET /metrics`` serves the
scheduler's and the feed's Prometheus metrics.

    llmd pods -n 4 > fleet.txt &        # a fake fleet, or real vLLM pods
    python examples/python/router.py --fleet fleet.txt [--config epp.yaml] [--port 8000]
    python examples/python/router.py --backend pod-a=http://127.0.0.1:8001 \\
        --events pod-a=tcp://127.0.0.1:5557 [--replay pod-a=tcp://127.0.0.1:5558]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import llmd

T = TypeVar("T")

log = logging.getLogger("llmd.router")
ROUTES = ("/v1/completions", "/v1/chat/completions")
MAX_BODY = 64 << 20
# The request fields that decide the prompt's tokens, as vLLM's /tokenize
# takes them (its defaults are the completion endpoints' own, so a field the
# client left out stays out): tools and template arguments change the
# rendered chat, and without them the ids, hence the block hashes, differ
# from the ones the engine caches.
TOKENIZE_FIELDS = (
    "prompt", "messages", "add_generation_prompt", "continue_final_message", "add_special_tokens",
    "chat_template", "chat_template_kwargs", "tools", "mm_processor_kwargs", "media_io_kwargs",
)


class ClientGone(ConnectionError):
    """The client closed its connection before its answer was complete (a
    half-close counts: as uvicorn, the router reads it as the client
    leaving)."""


# Headers that belong to one connection (RFC 9110 §7.6.1), and those the
# router writes itself: everything else the client sent (Authorization
# included) goes to the backend.
NOT_FORWARDED = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
     "transfer-encoding", "upgrade", "host", "content-length", "content-type",
     # Answered by the router itself: the body goes upstream whole.
     "expect"}
)


class Lifecycle:
    """Ends one picked request exactly once: completed with the engine's
    usage, or failed with a reason; later calls do nothing."""

    def __init__(self, router: "Router", rid: str) -> None:
        self.router, self.rid, self.ended = router, rid, False

    def complete(self, usage: dict[str, Any]) -> None:
        if not self.ended:
            self.ended = True
            summary = self.router.scheduler.on_complete(self.rid, usage=usage)
            if summary is not None:
                self.router.completed.append(summary)

    def error(self, kind: Literal["cancelled", "upstream", "other"]) -> None:
        if not self.ended:
            self.ended = True
            self.router.scheduler.on_error(self.rid, kind)

    def served_by(self, name: str) -> None:
        """A fallback target took the request: its load and metrics move there."""
        try:
            self.router.scheduler.on_served_by(self.rid, name)
        except llmd.LlmdError as e:  # removed meanwhile: the load stays where it was
            log.warning("%s: served by %s, not recorded (%s)", self.rid, name, e)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# Precise prefix-cache routing (llm-d's precise guide, on KV events) with load
# scorers beside it: used when backends publish KV events and no config is given.
PRECISE_CONFIG = """apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: precise-prefix-cache-producer
  parameters:
    kvEventsConfig: {discoverPods: false}
- type: prefix-cache-scorer
  parameters: {prefixMatchInfoProducerName: precise-prefix-cache-producer}
- type: queue-scorer
- type: kv-cache-utilization-scorer
- type: max-score-picker
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: prefix-cache-scorer
    weight: 3
  - pluginRef: queue-scorer
    weight: 2
  - pluginRef: kv-cache-utilization-scorer
    weight: 2
  - pluginRef: max-score-picker
"""


@dataclass
class Backend:
    name: str
    host: str
    port: int
    events: str | None = None
    """The pod's KV-event PUB endpoint (``tcp://host:port``), if it publishes."""
    replay: str | None = None
    """Its replay ROUTER endpoint, if any."""


@dataclass
class BurstWindow:
    """Collects the requests that arrive within `seconds` of the first and
    picks them together (`Scheduler.pick_batch`): llm-d's
    burst-prefix-cache-producer holds requests for its window in the router,
    and so does this; the library assigns the window."""

    scheduler: llmd.Scheduler
    seconds: float
    pending: list[tuple[dict[str, Any], asyncio.Future[llmd.Decision]]] = field(default_factory=list)
    closing: asyncio.Task[None] | None = None

    async def pick(self, request: dict[str, Any]) -> llmd.Decision:
        future: asyncio.Future[llmd.Decision] = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if self.closing is None:
            self.closing = asyncio.create_task(self.close_after())
        return await future

    async def close_after(self) -> None:
        await asyncio.sleep(self.seconds)
        window, self.pending, self.closing = self.pending, [], None
        results: list[llmd.Decision | BaseException]
        try:
            # Microseconds per request, as a plain pick: run on the loop.
            results = list(self.scheduler.pick_batch([r for r, _ in window]))
        except Exception as e:  # a malformed request: the whole window fails with it
            results = [e] * len(window)
        for (_, future), r in zip(window, results):
            if future.done():
                continue  # its client went away
            if isinstance(r, BaseException):
                future.set_exception(r)
            else:
                future.set_result(r)


@dataclass
class Router:
    scheduler: llmd.Scheduler
    backends: dict[str, Backend]
    model: str = ""
    scrape_interval_s: float = 0.05
    tokenize: bool | None = None
    """Tokenize prompts through a backend's ``/tokenize`` (default: when any
    backend publishes KV events)."""
    completed: list[llmd.RequestSummary] = field(default_factory=list)
    feed: llmd.Feed = field(init=False)
    inflight: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    """The tasks serving client connections. asyncio holds a connection's task
    only through its sockets: once a client closes while the task waits on
    the backend (until the task sees it), nothing else would, and a garbage
    collection would drop the task with its request still open."""

    burst: BurstWindow | None = field(init=False, default=None)
    """With a `burst-prefix-cache-producer` configured: requests are picked a
    window at a time, so those sharing a prompt share a backend."""

    def __post_init__(self) -> None:
        window = self.scheduler.burst_window
        if window is not None:
            self.burst = BurstWindow(self.scheduler, window)
        self.feed = llmd.Feed(self.scheduler, scrape_interval=self.scrape_interval_s)
        for b in self.backends.values():
            self.scheduler.add_endpoint(b.name, f"{b.host}:{b.port}", model=self.model or None)
            self.feed.add_pod(b.name, f"{b.host}:{b.port}", events=b.events, replay=b.replay)
        if self.tokenize is None:
            self.tokenize = any(b.events for b in self.backends.values())

    # ---- client side ------------------------------------------------------------

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.inflight.add(task)
        try:
            method, path, headers, body = await read_request(reader, writer)
            if method == "GET" and path == "/metrics":
                text = self.scheduler.render_metrics() + self.feed.render_metrics()
                await respond(writer, 200, text.encode(), "text/plain; version=0.0.4")
            elif method == "GET" and path == "/health":
                await respond(writer, 200, b"ok", "text/plain")
            elif method == "POST" and path in ROUTES:
                await self.proxy(path, headers, body, reader, writer)
            else:
                raise HttpError(404, f"no route for {method} {path}")
        except HttpError as e:
            await respond(writer, e.status, json.dumps({"error": {"message": str(e)}}).encode())
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except Exception:
            # A bug must not leave the client without an answer.
            log.exception("request failed")
            try:
                await respond(writer, 500, json.dumps({"error": {"message": "internal router error"}}).encode())
            except ConnectionError:
                pass
        finally:
            writer.close()
            if task is not None:
                self.inflight.discard(task)

    async def proxy(
        self, path: str, headers: dict[str, str], body: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            req = json.loads(body)
        except ValueError as e:
            raise HttpError(400, f"body is not JSON: {e}") from None
        if not isinstance(req, dict):
            raise HttpError(400, "body must be a JSON object")
        # Checked before the pick: past it every request must end, and a
        # malformed field found later would leave it counted in flight.
        if not isinstance(req.get("stream", False), (bool, type(None))):
            raise HttpError(400, "'stream' must be a boolean")
        if not isinstance(req.get("stream_options") or {}, dict):
            raise HttpError(400, "'stream_options' must be an object")
        # The same for what the scheduler reads from the body: a bad value
        # would otherwise fail a whole burst window with it.
        if not isinstance(req.get("cache_salt"), (str, type(None))):
            raise HttpError(400, "'cache_salt' must be a string")
        prompt = req.get("prompt")
        if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
            if not all(0 <= t < 1 << 32 for t in prompt):
                raise HttpError(400, "prompt token ids must be in 0 ..= 2^32-1")
            # Token ids already: the engine hashes these, not a rendering.
            tokens: list[int] | None = prompt
        else:
            tokens = await self.tokens_of(req) if self.tokenize else None
        request: dict[str, Any] = {
            "model": str(req.get("model", self.model)),
            "prompt": None if tokens is not None else prompt_text(req),
            "tokens": tokens,
            "headers": headers,
            "session_id": headers.get("x-session-id"),
            "cache_salt": req.get("cache_salt"),
        }
        try:
            if self.burst is not None:
                decision = await self.burst.pick(request)
            else:
                decision = self.scheduler.pick(**request)
        except llmd.NoEndpointsError as e:
            raise HttpError(503, str(e)) from None
        except llmd.ResourceExhaustedError as e:
            raise HttpError(429, str(e)) from None
        except (llmd.LlmdError, TypeError, ValueError) as e:
            # A field the scheduler refuses (a cache_salt that is not a
            # string, token ids out of range): the client's error, as vLLM
            # answers it.
            raise HttpError(400, str(e)) from None
        stream = bool(req.get("stream"))
        wants_usage = bool((req.get("stream_options") or {}).get("include_usage"))
        if stream:
            # The engine's usage (with cached tokens) only comes when asked for.
            req["stream_options"] = {**(req.get("stream_options") or {}), "include_usage": True}
        upstream_headers = {**{k: v for k, v in headers.items() if k not in NOT_FORWARDED}, **decision.headers}
        for name in decision.remove_headers:
            upstream_headers.pop(name.lower(), None)
        rid = decision.request_id
        targets = [t for t in [decision.target, *decision.fallbacks] if t is not None]
        # From here on the request ends exactly once, whatever happens.
        life = Lifecycle(self, rid)
        try:
            for i, target in enumerate(targets):
                try:
                    up_reader, up_writer = await self.connect(target["name"])
                except (OSError, asyncio.TimeoutError) as e:
                    log.warning("%s: %s unreachable (%s)", rid, target["name"], e)
                    if i + 1 == len(targets):
                        raise HttpError(502, f"backend {target['name']} unreachable") from None
                    continue
                if i > 0:
                    life.served_by(target["name"])
                try:
                    await self.relay(
                        life,
                        path,
                        req,
                        upstream_headers,
                        decision.response_headers,
                        stream,
                        wants_usage,
                        up_reader,
                        up_writer,
                        reader,
                        writer,
                    )
                finally:
                    up_writer.close()
                return
        except ClientGone:
            life.error("cancelled")
            log.info("%s: client went away", rid)
        except HttpError:
            life.error("upstream")
            raise
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
            life.error("upstream")
            log.warning("%s: upstream stream broken (%s)", rid, e)
        except BaseException:
            life.error("cancelled")  # the task was cancelled, or a bug: released, then raised
            raise
        finally:
            life.error("upstream")  # a path that did not end it (none should)

    async def connect(self, name: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        b = self.backends[name]
        return await asyncio.wait_for(asyncio.open_connection(b.host, b.port), timeout=5)

    async def tokens_of(self, req: dict[str, Any]) -> list[int] | None:
        """The prompt's token ids from a backend's ``/tokenize`` (chat
        messages rendered with its chat template); ``None`` when no backend
        answers, and the scheduler then estimates from the text."""
        body = {k: req[k] for k in TOKENIZE_FIELDS if k in req}
        payload = json.dumps(body).encode()
        for name in self.backends:
            try:
                r, w = await self.connect(name)
            except OSError:
                continue
            try:
                w.write(
                    b"POST /tokenize HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(payload), payload)
                )
                await w.drain()
                status, headers = await read_head(r)
                data = b"".join([c async for c in iter_body(r, headers)])
            except (ConnectionError, asyncio.IncompleteReadError, ValueError):
                continue
            finally:
                w.close()
            if status == 200:
                tokens = json.loads(data).get("tokens")
                if isinstance(tokens, list):
                    return [int(t) for t in tokens]
            return None
        return None

    async def relay(
        self,
        life: Lifecycle,
        path: str,
        req: dict[str, Any],
        headers: dict[str, str],
        response_headers: dict[str, str],
        stream: bool,
        wants_usage: bool,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
        client: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        payload = json.dumps(req).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        up_writer.write(
            f"POST {path} HTTP/1.1\r\nHost: upstream\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n{head}\r\n".encode() + payload
        )
        await up_writer.drain()
        # Until the reply's head, and for a non-streamed reply until its end,
        # nothing is written to the client, so a client that leaves
        # meanwhile is only seen by watching its side: the upstream
        # connection is then closed, and vLLM aborts the request, as it
        # does for its own clients.
        status, up_headers = await unless_client_leaves(client, read_head(up_reader))
        body = iter_body(up_reader, up_headers)
        # The backend's own x-* headers (e.g. x-inference-pod) and the
        # decision's response headers go back to the client.
        extra = {k: v for k, v in up_headers.items() if k.startswith("x-")} | response_headers
        if status != 200 or not stream:
            data = await unless_client_leaves(client, collect(body))
            if status == 200:
                # A non-streaming reply: no token calls; the engine's usage
                # carries the output and cached token counts (TTFT is then
                # the whole request).
                life.complete(json.loads(data).get("usage") or {})
            else:
                life.error("upstream")
            await respond(writer, status, data, up_headers.get("content-type", "application/json"), extra)
            return
        head = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        await send(
            writer,
            f"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n{head}\r\n".encode(),
        )
        seen_first, failed, buf = False, False, b""
        usage: dict[str, Any] = {}
        async for chunk in body:
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                data = event.removeprefix(b"data: ").strip()
                if data != b"[DONE]":
                    msg = json.loads(data)
                    usage = msg.get("usage") or usage
                    if msg.get("error") is not None or msg.get("object") == "error":
                        failed = True  # vLLM's error event: forwarded, not a success
                    elif msg.get("choices"):
                        if not seen_first:
                            self.scheduler.on_first_token(life.rid)
                            seen_first = True
                        else:
                            self.scheduler.on_tokens(life.rid, 1)
                    elif not wants_usage:
                        continue  # the usage chunk the client did not ask for
                await send(writer, b"%x\r\n%s\n\n\r\n" % (len(event) + 2, event))
        await send(writer, b"0\r\n\r\n")
        if failed:
            life.error("upstream")
        else:
            life.complete(usage)

    # ---- background work -------------------------------------------------------

    async def maintain_forever(self) -> None:
        """Scraping and events run on the feed's threads; this only expires
        the scheduler's speculative index entries now and then, and closes
        requests a lost completion left open for 15 minutes (their load
        would count against their pod for good)."""
        while True:
            self.scheduler.tick()
            self.scheduler.expire_requests(900.0)
            await asyncio.sleep(0.5)


def prompt_text(req: dict[str, Any]) -> str:
    if "messages" in req:
        parts = []
        for m in req["messages"]:
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            parts.append(f"{m.get('role', '')}: {content or ''}")
        return "\n".join(parts)
    prompt = req.get("prompt", "")
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The final response's status and headers; interim (1xx) responses,
    such as a 100 Continue, are skipped."""
    while True:
        status_line = (await reader.readuntil(b"\r\n")).decode("latin-1")
        parts = status_line.split(" ", 2)
        headers = await read_headers(reader)
        status = int(parts[1])
        if not 100 <= status < 200:
            return status, headers


async def read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    headers: dict[str, str] = {}
    while (line := (await reader.readuntil(b"\r\n")).decode("latin-1").strip()) != "":
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


async def read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[str, str, dict[str, str], bytes]:
    """One request: its body by Content-Length or chunked, with ``Expect:
    100-continue`` answered before the body is read (curl sends it for
    bodies over 1 KiB). Ambiguous framing (both, or a bad length) is a 400,
    another transfer coding a 501."""
    request_line = (await reader.readuntil(b"\r\n")).decode("latin-1").split()
    if len(request_line) != 3:
        raise HttpError(400, "malformed request line")
    headers = await read_headers(reader)
    coding = headers.get("transfer-encoding", "").lower()
    if coding not in ("", "chunked"):
        raise HttpError(501, f"transfer coding {coding!r} is not supported")
    if coding and "content-length" in headers:
        raise HttpError(400, "both Content-Length and Transfer-Encoding")
    length_text = headers.get("content-length", "0")
    if not (length_text.isascii() and length_text.isdigit()):
        raise HttpError(400, "bad Content-Length")
    length = int(length_text)
    if length > MAX_BODY:
        raise HttpError(413, "body too large")
    if headers.get("expect", "").lower() == "100-continue" and (coding or length):
        await send(writer, b"HTTP/1.1 100 Continue\r\n\r\n")
    if coding:
        body = await read_chunked(reader)
    else:
        body = await reader.readexactly(length) if length else b""
    return request_line[0], request_line[1].split("?")[0], headers, body


async def read_chunked(reader: asyncio.StreamReader) -> bytes:
    """A chunked request body (extensions and trailers ignored), at most
    MAX_BODY bytes."""
    body = bytearray()
    while True:
        size_text = (await reader.readuntil(b"\r\n")).split(b";")[0].strip()
        # Hex digits only: int() would also take "0x", signs and "_".
        if not size_text or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpError(400, "bad chunk size")
        size = int(size_text, 16)
        if len(body) + size > MAX_BODY:
            raise HttpError(413, "body too large")
        if size == 0:
            break
        body += await reader.readexactly(size)
        if await reader.readexactly(2) != b"\r\n":
            raise HttpError(400, "bad chunk")
    while (await reader.readuntil(b"\r\n")).strip():
        pass  # trailers
    return bytes(body)


async def collect(body: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in body])


async def unless_client_leaves(client: asyncio.StreamReader, work: Awaitable[T]) -> T:
    """Runs `work` while watching the client's side of the connection: if
    the client closes it first, `work` is cancelled and ClientGone raised.
    (Bytes the client sends meanwhile end the watch; the router serves one
    request per connection.)"""
    task = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(client.read(1))
    try:
        done, _ = await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        if task not in done and (watch.exception() is not None or watch.result() == b""):
            raise ClientGone("client closed the connection")
        return await task
    finally:
        for t in (task, watch):
            t.cancel()


async def iter_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> Any:
    """Yields the body as it arrives: chunked, sized, or until the peer closes."""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while (size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)) > 0:
            yield await reader.readexactly(size)
            await reader.readexactly(2)
        return
    if "content-length" in headers:
        yield await reader.readexactly(int(headers["content-length"]))
        return
    while chunk := await reader.read(65536):
        yield chunk


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Writes to the client; a failure means the client went away."""
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError as e:
        raise ClientGone(str(e)) from e


async def respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    ctype: str = "application/json",
    headers: dict[str, str] | None = None,
) -> None:
    head = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
    writer.write(
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Error'}\r\nContent-Type: {ctype}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n{head}\r\n".encode() + body
    )
    await writer.drain()


def parse_backend(spec: str) -> Backend:
    name, _, url = spec.partition("=")
    u = urlsplit(url)
    if not name or u.hostname is None or u.port is None:
        raise argparse.ArgumentTypeError(f"expected NAME=http://HOST:PORT, got {spec!r}")
    return Backend(name, u.hostname, u.port)


def parse_pair(spec: str) -> tuple[str, str]:
    name, _, value = spec.partition("=")
    if not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {spec!r}")
    return name, value


def read_fleet(path: str) -> list[Backend]:
    """Backends from `llmd pods` output: ``name http://host:port events replay``."""
    out = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4:
                b = parse_backend(f"{parts[0]}={parts[1]}")
                b.events, b.replay = parts[2], parts[3]
                out.append(b)
    return out


async def serve(router: Router, host: str, port: int) -> None:
    server = await asyncio.start_server(router.handle, host, port)
    log.info("listening on %s", ", ".join(str(s.getsockname()) for s in server.sockets))
    maintenance = asyncio.create_task(router.maintain_forever())
    try:
        with router.feed:
            async with server:
                await server.serve_forever()
    finally:
        maintenance.cancel()


def main() -> None:
    ap = argparse.ArgumentParser(description="OpenAI-compatible streaming router on llmd")
    ap.add_argument("--backend", type=parse_backend, action="append", default=[])
    ap.add_argument("--events", type=parse_pair, action="append", default=[], help="NAME=tcp://HOST:PORT")
    ap.add_argument("--replay", type=parse_pair, action="append", default=[], help="NAME=tcp://HOST:PORT")
    ap.add_argument("--fleet", help="backends from `llmd pods` output (one pod per line)")
    ap.add_argument(
        "--config", help="llm-d EndpointPickerConfig YAML (default: precise routing with events, else llm-d's default)"
    )
    ap.add_argument("--model", default="", help="model served by every backend")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    backends = {b.name: b for b in [*args.backend, *(read_fleet(args.fleet) if args.fleet else [])]}
    for name, ep in args.events:
        backends[name].events = ep
    for name, ep in args.replay:
        backends[name].replay = ep
    if not backends:
        ap.error("no backends: give --backend or --fleet")
    if args.config:
        scheduler = llmd.Scheduler.from_file(args.config)
    elif any(b.events for b in backends.values()):
        scheduler = llmd.Scheduler(PRECISE_CONFIG)
    else:
        scheduler = llmd.Scheduler.default()
    router = Router(scheduler, backends, model=args.model)
    asyncio.run(serve(router, args.host, args.port))


if __name__ == "__main__":
    main()
