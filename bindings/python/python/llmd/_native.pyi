"""Type stubs of the native module ``llmd._native`` (checked by mypy.stubtest)."""

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, TypeAlias, final

from llmd._errors import LlmdError
from llmd._types import (
    ConfigReport,
    EndpointState,
    FeedSetting,
    PodStats,
    IndexApplyResult,
    IndexStats,
    IngestResult,
    RequestSummary,
    Target,
    TraceContext,
)

__all__ = [
    "__version__",
    "NEWEST_VLLM_VERSION",
    "BlockHasher",
    "HashChain",
    "EventBatch",
    "BlockStored",
    "BlockRemoved",
    "AllBlocksCleared",
    "decode_event_batch",
    "Topic",
    "parse_topic",
    "parse_seq",
    "REPLAY_END_SEQ",
    "KvIndex",
    "Scheduler",
    "Feed",
    "OtlpExporter",
    "Tokenizer",
    "ChatSession",
    "Decision",
]

__version__: str
NEWEST_VLLM_VERSION: str

_Tokens: TypeAlias = Sequence[int] | Iterable[int]
_ExtraKeyValue: TypeAlias = None | int | str | bytes | tuple["_ExtraKeyValue", ...]

@final
class BlockHasher:
    """Computes the block hashes a vLLM engine computes for its prefix cache and
    publishes in KV events.
    """
    def __new__(
        cls,
        block_size: int = 16,
        algo: str = "sha256_cbor",
        seed: str | None = None,
        vllm_version: str | None = None,
    ) -> BlockHasher: ...
    def block_hashes(
        self,
        tokens: _Tokens,
        *,
        lora_id: int | None = None,
        lora_name: str | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        mm_items: Sequence[tuple[str, int, int]] | None = None,
        prompt_embeds: tuple[bytes, int] | None = None,
    ) -> list[int]:
        """Published 64-bit hash of every full block of `tokens`."""
    def digests(
        self,
        tokens: _Tokens,
        *,
        lora_id: int | None = None,
        lora_name: str | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        mm_items: Sequence[tuple[str, int, int]] | None = None,
        prompt_embeds: tuple[bytes, int] | None = None,
    ) -> list[bytes]:
        """Full digest (the chained value) of every full block of `tokens`."""
    def chain(
        self,
        *,
        lora_id: int | None = None,
        lora_name: str | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        mm_items: Sequence[tuple[str, int, int]] | None = None,
        prompt_embeds: tuple[bytes, int] | None = None,
    ) -> HashChain:
        """An incremental chain for one request (e.g. a chat across turns):
        extending it gives the same hashes as hashing the whole token list.
        """
    @property
    def block_size(self) -> int:
        """Tokens per hashed block."""
    @property
    def algo(self) -> str:
        """vLLM's name of the algorithm."""
    @property
    def seed(self) -> str | None:
        """The configured `PYTHONHASHSEED` (`None` = unset)."""
    @property
    def vllm_version(self) -> str:
        """The vLLM release whose rules are reproduced."""
    @property
    def none_hash(self) -> bytes:
        """NONE_HASH, the parent digest of block 0."""

@final
class HashChain:
    """A request's block hashes, extended as its tokens arrive; a trailing
    partial block waits until it fills.
    """
    def extend(self, tokens: _Tokens) -> list[int]:
        """Appends tokens; returns the hashes of the blocks they completed. On
        error nothing is appended.
        """
    @property
    def block_hashes(self) -> list[int]:
        """Hashes of all completed blocks."""
    @property
    def num_tokens(self) -> int:
        """Tokens seen so far, including the partial block."""

@final
class BlockStored:
    """Blocks committed to an engine's prefix cache."""
    @property
    def block_hashes(self) -> list[int]:
        """64-bit keys of the stored blocks in chain order (what `BlockHasher.block_hashes` computes)."""
    @property
    def raw_block_hashes(self) -> list[int | bytes]:
        """The hashes as published: ints, or digest bytes."""
    @property
    def parent_block_hash(self) -> int | None:
        """64-bit key of the block before the first one (`None` from block 0)."""
    @property
    def raw_parent_block_hash(self) -> int | bytes | None:
        """The parent hash as published."""
    @property
    def token_ids(self) -> list[int]:
        """Tokens of the stored blocks."""
    @property
    def block_size(self) -> int:
        """Tokens per block of this KV-cache group."""
    @property
    def lora_id(self) -> int | None:
        """Integer LoRA adapter id."""
    @property
    def medium(self) -> str | None:
        """`"GPU"`, `"CPU"`, `"STORAGE"` or `None` (GPU)."""
    @property
    def lora_name(self) -> str | None:
        """LoRA adapter name."""
    @property
    def extra_keys(self) -> list[tuple[_ExtraKeyValue, ...] | None] | None:
        """Per block: `None` or the block's extra keys as a tuple."""
    @property
    def group_idx(self) -> int | None:
        """KV-cache group."""
    @property
    def kv_cache_spec_kind(self) -> str | None:
        """KV-cache spec kind, e.g. `"full_attention"`."""
    @property
    def kv_cache_spec_sliding_window(self) -> int | None:
        """Window of a sliding-window group."""
    @property
    def locality(self) -> str | None:
        """`"LOCAL"` / `"REMOTE"` for offloaded copies."""
    @property
    def ownership(self) -> str | None:
        """Opaque owner of an offloaded copy."""
    @property
    def session_id(self) -> str | None:
        """Request session id."""
    @property
    def lookahead_token_ids(self) -> list[list[int]] | None:
        """Per block, the lookahead tokens its hash covers."""

@final
class BlockRemoved:
    """Blocks evicted from an engine's cache."""
    @property
    def block_hashes(self) -> list[int]:
        """64-bit keys of the evicted blocks."""
    @property
    def raw_block_hashes(self) -> list[int | bytes]:
        """The hashes as published: ints, or digest bytes."""
    @property
    def medium(self) -> str | None:
        """Medium the blocks were evicted from (`None` = GPU)."""
    @property
    def group_idx(self) -> int | None:
        """KV-cache group."""
    @property
    def locality(self) -> str | None:
        """`"LOCAL"` / `"REMOTE"`."""
    @property
    def ownership(self) -> str | None:
        """Opaque owner."""

@final
class AllBlocksCleared:
    """The publisher dropped its whole prefix cache."""
    def __new__(cls) -> AllBlocksCleared: ...

_KvEvent: TypeAlias = BlockStored | BlockRemoved | AllBlocksCleared

@final
class EventBatch:
    """One decoded vLLM `EventBatch`."""
    @property
    def ts(self) -> float:
        """`time.time()` of the publisher when the batch was built."""
    @property
    def data_parallel_rank(self) -> int | None:
        """Data-parallel rank of the publisher (`None` when absent)."""
    @property
    def skipped_events(self) -> int:
        """Events with an unknown tag, skipped without failing the batch."""
    @property
    def events(self) -> list[_KvEvent]:
        """The known events, in order: `BlockStored`, `BlockRemoved`, `AllBlocksCleared`."""
    def __len__(self) -> int: ...

def decode_event_batch(payload: bytes | bytearray | memoryview) -> EventBatch:
    """Decodes one msgpack `EventBatch` (frame 2 of a vLLM KV-event message), in
    the layout of any vLLM release.
    """

REPLAY_END_SEQ: int

@final
class Topic:
    """A parsed topic frame. `pod` and `model` follow llm-d's `kv@<pod>@<model>`
    convention; other topics give `pod` = the whole topic and `model` = "".
    """
    @property
    def topic(self) -> str:
        """The whole topic."""
    @property
    def pod(self) -> str:
        """Publisher (pod) identity."""
    @property
    def model(self) -> str:
        """Model name ("" when the topic carries none)."""
    @property
    def conforms_to_convention(self) -> bool:
        """Three `@`-separated parts and the first is `kv`."""

def parse_topic(frame: bytes) -> Topic:
    """Parses frame 0 of a KV-event message (UTF-8 topic)."""
def parse_seq(frame: bytes) -> int:
    """Parses frame 1 of a KV-event message: exactly 8 bytes, unsigned big-endian.
    `REPLAY_END_SEQ` marks the end of a replay.
    """

@final
class Decision:
    """The outcome of one scheduling cycle."""
    @property
    def request_id(self) -> str:
        """The request id the lifecycle calls take (generated when `pick` got none)."""
    @property
    def target(self) -> Target | None:
        """The chosen endpoint: `{"name": ..., "address": "ip:port"}`."""
    @property
    def fallbacks(self) -> list[Target]:
        """Further targets in preference order, for retries."""
    @property
    def prefill_target(self) -> Target | None:
        """The remote prefill endpoint of a disaggregated (P/D) request."""
    @property
    def encode_targets(self) -> list[Target]:
        """Encoder endpoints when encoding is disaggregated."""
    @property
    def headers(self) -> dict[str, str]:
        """Headers to set on the upstream request (llm-d's routing headers)."""
    @property
    def response_headers(self) -> dict[str, str]:
        """Headers to set on the response to the client (the session-affinity
        token naming the endpoint that served the request).
        """
    @property
    def remove_headers(self) -> list[str]:
        """Headers to remove from the upstream request: a stale prefiller
        header, and routing headers the client sent that this decision does
        not set.
        """
    @property
    def trace(self) -> TraceContext | None:
        """The scheduling span's W3C trace context when the request carried a
        valid `traceparent` (`trace_id`, `parent_span_id`, `span_id` as hex,
        `flags`, `tracestate`); its `traceparent` is also in `headers`.
        """
    def explain(self) -> dict[str, Any]:
        """Why: every candidate, every filter drop, every scorer's raw and
        weighted score, the picker's choice.
        """
    def explain_json(self) -> str:
        """The explanation as a JSON string."""

@final
class Scheduler:
    """Routes requests across vLLM endpoints: filters, weighted scorers and a
    picker built from an llm-d `EndpointPickerConfig`, fed with endpoint
    metrics and KV events, told about every request's progress.
    """
    def __new__(
        cls,
        config: str | None = None,
        *,
        seed: int | None = None,
        strict: bool = False,
        max_open_requests: int | None = None,
    ) -> Scheduler: ...
    @staticmethod
    def from_yaml(
        text: str, *, seed: int | None = None, strict: bool = False, max_open_requests: int | None = None
    ) -> Scheduler:
        """Builds from an `EndpointPickerConfig` document (YAML or JSON); warns
        or refuses (`strict=True`) and takes `seed` and `max_open_requests`
        as the constructor does.
        """
    @staticmethod
    def from_file(
        path: str | PathLike[str],
        *,
        seed: int | None = None,
        strict: bool = False,
        max_open_requests: int | None = None,
    ) -> Scheduler:
        """Builds from an `EndpointPickerConfig` file; warns or refuses
        (`strict=True`) and takes `seed` and `max_open_requests` as the
        constructor does.
        """
    @staticmethod
    def default(*, seed: int | None = None, max_open_requests: int | None = None) -> Scheduler:
        """llm-d's default pipeline (queue 2, kv-cache-utilization 2,
        prefix-cache 3); `seed` and `max_open_requests` as the constructor
        takes them.
        """
    @property
    def open_requests_limit(self) -> int:
        """The most requests held open between `pick` and `on_complete`
        (`max_open_requests`, default 2**20). A pick that finds this many
        open first closes the oldest sixteenth as `expire_requests` would,
        counted in `llmd_open_requests_expired_at_limit_total`.
        """
    @property
    def report(self) -> ConfigReport:
        """What loading the config did: every plugin (configured or injected,
        executed or only accepted, with the settings accepted but not
        executed), the warnings, and `not_executed`, one line per configured
        plugin or setting the library does not execute.
        """
    def add_endpoint(
        self,
        name: str,
        address: str,
        *,
        labels: Mapping[str, str] | None = None,
        model: str | None = None,
        lora_adapters: Sequence[str] | None = None,
    ) -> None:
        """Registers an endpoint. A name already registered, or an address that
        is not `host:port` (IPv6 in brackets), raises `InvalidArgumentError`;
        `update_endpoint` changes a registered one.
        """
    def update_endpoint(
        self,
        name: str,
        address: str,
        *,
        labels: Mapping[str, str] | None = None,
        model: str | None = None,
        lora_adapters: Sequence[str] | None = None,
    ) -> None:
        """Replaces a registered endpoint's description (its metrics are kept;
        its load, cache and index state start over); raises
        `UnknownEndpointError` when it is not registered.
        """
    def remove_endpoint(self, name: str) -> None:
        """Removes an endpoint and everything known about its cache."""
    def endpoints(self) -> list[str]:
        """Names of the registered endpoints."""
    def endpoint_state(self, name: str) -> EndpointState:
        """An endpoint's live state: its metrics and in-flight load."""
    def update_metrics(
        self,
        name: str,
        *,
        waiting_queue_size: int = 0,
        running_requests_size: int = 0,
        kv_cache_usage: float = 0.0,
        active_models: Sequence[str] | None = None,
        waiting_models: Sequence[str] | None = None,
        max_active_models: int = 0,
        cache_block_size: int = 0,
        cache_num_blocks: int = 0,
    ) -> None:
        """Stores a metrics snapshot given as numbers (stamped now)."""
    def update_metrics_text(self, name: str, text: str) -> None:
        """Parses a vLLM `/metrics` response body and stores the snapshot."""
    def ingest_kv_events(
        self, endpoint: str, payload: bytes | bytearray | memoryview, seq: int | None = None
    ) -> IngestResult:
        """Applies one KV-event message payload (msgpack `EventBatch`) from
        `endpoint`. With `seq` (the message's sequence number) duplicates are
        skipped, gaps and restarts reported in the result, and a gap's lost
        batches from the replay socket, in order, applied as "replayed" (stop
        reading the replay after the gap's last number: the later batches it
        sends were applied live and would read as a restart).
        """
    def tick(self) -> None:
        """Periodic maintenance (expires speculative cache entries); call it
        every few hundred milliseconds.
        """
    def expire_requests(self, max_age: float) -> int:
        """Releases the requests picked more than `max_age` seconds ago that
        never finished (dropped without `on_complete` / `on_error`): their
        endpoint load, in-flight gauges and latency-model accounting, counted
        with outcome `expired`. Returns how many. A negative or non-finite
        age raises `InvalidArgumentError`. Without it the open requests are
        still bounded: a pick that finds `open_requests_limit` open expires
        the oldest sixteenth first (`llmd_open_requests_expired_at_limit_total`).
        """
    def pick_openai(
        self,
        path: str,
        body: bytes | str | Mapping[str, Any],
        *,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> Decision:
        """Picks for an OpenAI request body as the gateway received it: `path`
        is `/v1/completions` or `/v1/chat/completions`, `body` the bytes (or
        a dict). With a tokenizer for the model (`set_tokenizer`), the
        prompt's ids are the engine's (chat templates rendered as vLLM
        does); without one they are estimated from the text and the
        decision's explanation says so. Malformed bodies raise
        `InvalidArgumentError` naming the field.
        """
    def set_tokenizer(self, model: str, tokenizer: Tokenizer) -> None:
        """Uses `tokenizer` for requests to `model` ("" for every model without
        its own) in `pick_openai`.
        """
    def pick(
        self,
        *,
        model: str = "",
        prompt: str | None = None,
        tokens: _Tokens | None = None,
        request_id: str | None = None,
        lora_name: str | None = None,
        lora_id: int | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        session_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        priority: int = 0,
        ttft_slo_ms: float | None = None,
        tpot_slo_ms: float | None = None,
        multimodal: bool = False,
        arrived_at: float | None = None,
        mm_items: Sequence[str] | None = None,
    ) -> Decision:
        """Runs one scheduling cycle for a request described by the keyword
        arguments (the fields of the Rust `Request`). `mm_items` identifies
        the request's multimodal items (any stable string per image, video
        or audio, e.g. a hash of its URL or bytes) for the
        `mm-embeddings-cache` plugins; giving any implies `multimodal`.
        `ttft_slo_ms` and `tpot_slo_ms` are None or 0 (no objective) or a
        positive finite number of milliseconds; anything else raises
        `InvalidArgumentError`.
        """
    def pick_batch(self, requests: Sequence[dict[str, Any]]) -> list[Decision | LlmdError]:
        """Picks a window of requests together (each a dict of `pick`'s keyword
        arguments), for a `burst-prefix-cache-producer`: requests sharing a
        prompt go to the same replica, as llm-d assigns a window. Returns one
        entry per request, in order: its `Decision`, or the `LlmdError` that
        `pick` would have raised for it. A malformed dict raises at once.
        """
    @property
    def burst_window(self) -> float | None:
        """Seconds a host should collect requests for `pick_batch` (the longest
        `windowDurationMs` of the configured burst producers); `None` without
        one.
        """
    def _time_pick(
        self,
        iterations: int,
        *,
        model: str = "",
        prompt: str | None = None,
        tokens: _Tokens | None = None,
        request_id: str | None = None,
    ) -> float:
        """Benchmark helper: seconds per `pick` of the same request, timed in
        Rust over `iterations` calls (the Rust side of the binding overhead).
        """
    def _time_pick_openai(self, iterations: int, path: str, body: bytes, *, request_id: str = "bench") -> float:
        """Benchmark helper: seconds per `pick_openai` of the same body, timed
        in Rust over `iterations` calls.
        """
    def on_first_token(self, request_id: str) -> bool:
        """The first output token arrived. False for an unknown request id."""
    def on_prefill_done(self, request_id: str) -> bool:
        """The remote prefill of a disaggregated request finished (the KV cache
        is on the decode endpoint). False for an unknown request id.
        """
    def on_served_by(self, request_id: str, endpoint: str) -> bool:
        """The request is served by `endpoint` instead of its decision's first
        target: the host fell back to another target (one of the decision's
        fallbacks, or its own) after the first could not be reached. Its
        in-flight load and gauges, the endpoint label of its request series
        and the latency model's in-flight accounting move there, and its
        timings train no endpoint's latency model. Call it when the request
        is sent to the new target, before the lifecycle calls that follow.
        False for an unknown request id; an endpoint that is not registered
        raises `UnknownEndpointError`.
        """
    def on_tokens(self, request_id: str, n: int) -> bool:
        """`n` more output tokens arrived. False for an unknown request id."""
    def on_complete(
        self, request_id: str, cached_tokens: int | None = None, *, usage: Mapping[str, Any] | None = None
    ) -> RequestSummary | None:
        """The request finished. `usage` is the response's OpenAI `usage`
        object as the engine returned it (`prompt_tokens`,
        `completion_tokens`, `prompt_tokens_details.cached_tokens`): its
        completion tokens replace the counted ones, so a non-streaming reply
        records its output too. `cached_tokens`, when given, is the engine's
        prefix-cache hit and wins over `usage`'s (-1, like None, means not
        reported, as in the C and Go bindings). Returns the request's
        summary, or None for an unknown id. A `usage` that is not plain data,
        a count in it or a `cached_tokens` that is not an integer in
        0 ..= 2^32-1 raises `InvalidArgumentError` after the request is
        completed without that value, so a bad argument never leaves a
        request counted as in flight.
        """
    def on_error(
        self, request_id: str, kind: Literal["cancelled", "upstream", "other"] = "upstream"
    ) -> RequestSummary | None:
        """The request failed: `kind` is `"cancelled"` (the client went away),
        `"upstream"` (the endpoint failed) or `"other"`. An unknown kind
        still closes the request (as `"other"`: it must not stay in flight),
        then raises `InvalidArgumentError`.
        """
    def render_metrics(self) -> str:
        """The scheduler's metrics in the Prometheus text format (TTFT, TPOT,
        cache hits, routing scores, decisions, KV-event health), for a
        `/metrics` endpoint.
        """
    @property
    def open_requests(self) -> int:
        """Requests picked and not finished yet."""

@final
class Feed:
    """Follows vLLM pods for a `Scheduler`: subscribes to their KV events
    (ZMQ, with vLLM's replay on gaps and restarts), scrapes their `/metrics`,
    and adds and removes them as discovery says. Runs on its own threads
    (no GIL held); `start()` / `stop()` or `with feed:`. A stopped feed
    cannot start again: `add_pod`, `sync_pods`, `bind_events`,
    `discover_dns` and `watch_file` then raise `InvalidArgumentError`.

    Built from the scheduler's config: a precise producer's `kvEventsConfig`
    (topic filter, concurrency, `socketPort` / `replaySocketPort` for every
    pod, a bound `zmqEndpoint`), the `metrics-data-source` and
    `file-discovery` are executed; `settings` lists each. Keyword arguments
    override the config.
    """
    def __new__(
        cls,
        scheduler: Scheduler,
        *,
        topics: Sequence[str] | None = None,
        concurrency: int | None = None,
        events_port: int | None = None,
        replay_port: int | None = None,
        scrape_interval: float | None = None,
        scrape_timeout: float | None = None,
        replay_timeout: float | None = None,
        remove_after: float | None = None,
        clear_on_unrecoverable_gap: bool | None = None,
        heartbeat_interval: float | None = None,
    ) -> Feed: ...
    def add_pod(
        self,
        name: str,
        address: str,
        *,
        events: str | None = None,
        replay: str | None = None,
        metrics_url: str | None = None,
        scrape: bool = True,
        data_parallel_size: int = 1,
    ) -> None:
        """Follows a pod: registers it in the scheduler (unless an endpoint of
        that name exists), subscribes to `events` (a ZMQ endpoint such as
        `tcp://10.0.0.7:5557`; by default `tcp://<host>:<socketPort>` when the
        config discovers pods), replays gaps from `replay`, and scrapes
        `metrics_url` (default `http://<address>/metrics`; `scrape=False`
        turns scraping off).
        """
    def remove_pod(self, name: str) -> None:
        """Stops following a pod and removes it (and its index entries) from
        the scheduler; its batches still in flight are not applied.
        """
    def sync_pods(self, pods: Sequence[Mapping[str, Any]]) -> None:
        """Makes the followed pods exactly `pods` (for a host with its own
        discovery, e.g. a Kubernetes watch): each a dict with `name` and
        `address`, and optionally `events`, `replay`, `metrics_url`, `scrape`,
        `data_parallel_size` as in `add_pod`. New names are added, missing
        ones removed (with their index entries), changed ones replaced; pods
        from DNS or file discovery are left alone. An unknown key or a value
        of the wrong type raises `InvalidArgumentError` naming it.
        """
    def bind_events(self, endpoint: str) -> str:
        """Binds a socket for pods that dial in (vLLM with a `tcp://host:port`
        events endpoint, llm-d-inference-sim); messages go to the pod their
        topic (`kv@<pod>@<model>`) names. Returns the bound endpoint.
        """
    def discover_dns(self, host: str, port: int, *, interval: float = 5.0) -> None:
        """Follows every address a DNS name resolves to (a headless service),
        re-resolving every `interval` seconds; pods are named by IP.
        """
    def watch_file(self, path: str | PathLike[str], *, watch: bool = True) -> None:
        """Follows the pods of llm-d's endpoint file (`endpoints: [{name,
        namespace, address, port, labels}]`), re-read when it changes when
        `watch` is true.
        """
    def start(self) -> None:
        """Starts the threads (idempotent while running; a stopped feed cannot
        be started again).
        """
    def stop(self) -> None:
        """Stops every thread and closes every socket; pods stay registered."""
    def __enter__(self) -> Feed: ...
    def __exit__(self, *_args: object) -> bool: ...
    @property
    def running(self) -> bool:
        """True between `start()` and `stop()`."""
    @property
    def pods(self) -> list[str]:
        """Names of the followed pods."""
    @property
    def bound_endpoints(self) -> list[str]:
        """The endpoints bound for pods that dial in (`bind_events` and the
        configuration's `zmqEndpoint`), as this host dials them: a port 0
        asked for is the port given, a wildcard host `*` is `127.0.0.1`.
        Empty once the feed is stopped.
        """
    def stats(self) -> dict[str, PodStats]:
        """Per-pod counters by name: events, blocks, gaps, duplicates, restarts,
        replays (ok / too old / incomplete / failed), clears, reconnects,
        heartbeat timeouts, connect failures, malformed messages, decode
        errors, queue drops,
        scrapes and scrape errors, evictions, registration failures, last
        event and scrape ages, up,
        registered.
        """
    @property
    def settings(self) -> list[FeedSetting]:
        """Config settings this feed executes or not, each with a note."""
    @property
    def unknown_publisher_messages(self) -> int:
        """Messages on bound sockets whose topic named no followed pod."""
    def render_metrics(self) -> str:
        """The `llmd_feed_*` metrics in Prometheus text format (serve them
        beside `Scheduler.render_metrics()`).
        """

@final
class OtlpExporter:
    """Exports the spans of decisions whose request carried a sampled W3C
    `traceparent` to an OTLP/HTTP traces endpoint (`http://`), continuing
    that trace: the scheduling span has the id the decision forwards to the
    worker. Exporting happens on a thread of its own; `export_decision`
    only queues (a full queue drops and counts).
    """
    def __new__(
        cls,
        endpoint: str,
        *,
        service_name: str = "llmd",
        sampling_ratio: float = 1.0,
        max_queue_spans: int = 65536,
        max_batch_spans: int = 512,
        flush_interval: float = 0.5,
        timeout: float = 5.0,
    ) -> OtlpExporter: ...
    def export_decision(self, decision: Decision, start: float, end: float) -> bool:
        """Queues `decision`'s spans, timed from `start` to `end` (Unix seconds,
        `time.time()` around the pick). Returns whether they were queued: a
        decision without a sampled trace context, outside the sampling
        ratio, or beyond the queue is not (and is counted in `stats()`).
        """
    def flush(self, timeout: float = 5.0) -> bool:
        """Waits until the queued spans are sent (at most `timeout` seconds);
        returns whether the queue drained.
        """
    def stats(self) -> dict[str, int]:
        """Counters: `exported_spans`, `dropped_spans`, `failed_spans`,
        `unsampled_decisions`.
        """
    def stop(self) -> None:
        """Sends what is queued, then stops the export thread (idempotent)."""

@final
class ChatSession:
    """One conversation's tokenization cache (`Tokenizer.session()`)."""
    def encode_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """The ids of the whole conversation `messages`, as
        `Tokenizer.encode_chat` gives them, tokenizing only the new text.
        """
    @property
    def last_reused_tokens(self) -> int:
        """Ids the last `encode_chat` took from the cache."""
    def reset(self) -> None:
        """Forgets the cached prefix."""

@final
class Tokenizer:
    """A tokenizer and chat templates loaded from a local model directory
    (`tokenizer.json`, `tokenizer_config.json`, chat templates as
    docs/tokenizer.md lists them); nothing is downloaded. Ids equal HF's
    `tokenizers` on the same files; chat rendering follows vLLM 0.33's chat
    completions.
    """
    @staticmethod
    def from_dir(
        path: str | PathLike[str],
        *,
        chat_template: str | None = None,
        default_chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> Tokenizer:
        """Loads a model directory; `chat_template` and
        `default_chat_template_kwargs` mirror the engine's
        `--chat-template` (a file or the template itself) and
        `--default-chat-template-kwargs`.
        """
    def encode(self, text: str, *, add_special_tokens: bool = True) -> list[int]:
        """Token ids of `text`; `/v1/completions` prompts add special tokens."""
    def render_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> str:
        """The prompt string vLLM's chat completions render from OpenAI
        `messages` (and `tools`, `chat_template_kwargs`).
        """
    def encode_chat(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
        tools: Sequence[Mapping[str, Any]] | None = None,
        chat_template_kwargs: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """The token ids vLLM's chat completions feed the engine: the rendered
        chat tokenized without added special tokens.
        """
    def encode_openai(self, path: str, body: bytes | str | Mapping[str, Any]) -> list[int]:
        """The token ids vLLM feeds the engine for an OpenAI request body sent
        to `path` (`/v1/completions` or `/v1/chat/completions`; `body` as
        bytes or a dict): every body field that reaches the template or the
        tokenizer is applied (`tools`, `chat_template_kwargs`, `documents`,
        `reasoning_effort`, `add_special_tokens`, ...). A malformed body
        raises `InvalidArgumentError` with `code` `"request"`; a valid one
        whose engine ids cannot be computed here (its own `chat_template`, a
        `suffix` or `prompt_embeds`, or a model vLLM renders otherwise) with
        `code` `"not_exact"`: route it on an estimate (`pick_openai` does).
        """
    def session(self) -> ChatSession:
        """A session for one conversation: each `encode_chat` on it gives the
        same ids as `Tokenizer.encode_chat`, tokenizing only what follows
        the previous turn's last safe cut.
        """
    @property
    def chat_template(self) -> str | None:
        """The chat template, or None."""
    @property
    def content_format(self) -> Literal["string", "openai"]:
        """How the template reads message content: "string" or "openai"."""

@final
class KvIndex:
    """Which endpoints hold which blocks, in which tier (GPU, CPU, storage).
    Reads never wait for writers; writes to different endpoints run in parallel.
    """
    def __new__(
        cls,
        *,
        block_size: int | None = None,
        mode: Literal["engine_parity", "router_keys", "approximate"] | None = None,
        hasher: BlockHasher | None = None,
        capacity_blocks: int = 1048576,
        max_endpoints: int = 1024,
        gpu_weight: float = 1.0,
        cpu_weight: float = 0.8,
        storage_weight: float = 0.5,
        speculative_weight: float = 0.9,
        speculative_ttl_s: float = 2.0,
        approx_capacity_per_endpoint: int = 31250,
        speculative_capacity: int = 65536,
        engine_map_capacity_per_endpoint: int = 262144,
    ) -> KvIndex: ...
    def apply_event_batch(
        self, endpoint: str, payload: bytes | bytearray | memoryview, *, model: str = "", seq: int | None = None
    ) -> IndexApplyResult:
        """Applies one KV-event payload (msgpack `EventBatch`) published by
        `endpoint` (registered on first use) serving `model`. With `seq`
        duplicates are skipped, a restart clears the endpoint first, gaps are
        reported, and a gap's lost batches from the replay socket, in order,
        are applied as "replayed" (stop reading the replay after the gap's
        last number: the later batches it sends were applied live and would
        read as a restart).
        """
    def prompt_keys(
        self,
        tokens: _Tokens,
        *,
        model: str = "",
        lora_id: int | None = None,
        lora_name: str | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        mm_items: Sequence[tuple[str, int, int]] | None = None,
        prompt_embeds: tuple[bytes, int] | None = None,
    ) -> list[int]:
        """The block keys of a prompt in this index's key mode (vLLM's keys in
        engine parity, the index's own chain otherwise), for `match_prefix`.
        In the router modes only `lora_name` of the extras enters the keys.
        """
    def match_prefix(self, block_hashes: _Tokens, *, model: str = "") -> dict[str, float]:
        """Longest run of `block_hashes` (from block 0) each endpoint holds, as
        `{endpoint: score}`, the score summing each matched block's best tier
        weight. Endpoints holding no leading block are absent.
        """
    def match_prefix_blocks(self, block_hashes: _Tokens, *, model: str = "") -> dict[str, tuple[int, float]]:
        """Like `match_prefix`, with the number of consecutive blocks matched:
        `{endpoint: (blocks, score)}`.
        """
    def record_routing(self, endpoint: str, block_hashes: _Tokens, *, model: str = "") -> None:
        """Approximate mode: `endpoint` was sent a request with these blocks.
        Other modes: a speculative entry that expires unless an event confirms it.
        """
    def remove_endpoint(self, endpoint: str) -> None:
        """Forgets an endpoint and every block it held. Unknown names are ignored."""
    def clear_endpoint(self, endpoint: str) -> None:
        """Drops every block an endpoint holds (its engine restarted)."""
    def tick(self) -> None:
        """Expires speculative entries; call it periodically."""
    @property
    def block_size(self) -> int:
        """Tokens per block."""
    def stats(self) -> IndexStats:
        """Sizes and health counters, with the blocks each endpoint holds."""
