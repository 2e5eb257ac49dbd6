"""Type stubs of the native module ``llmd._native`` (checked by mypy.stubtest)."""

from collections.abc import Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, Literal, TypeAlias, final

from llmd._types import (
    ConfigReport,
    EndpointState,
    IndexApplyResult,
    IndexStats,
    IngestResult,
    RequestSummary,
    Target,
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
    "Decision",
]

__version__: str
NEWEST_VLLM_VERSION: str

_Tokens: TypeAlias = Sequence[int] | Iterable[int]
_ExtraKeyValue: TypeAlias = None | int | str | bytes | tuple["_ExtraKeyValue", ...]

@final
class BlockHasher:
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
    ) -> list[int]: ...
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
    ) -> list[bytes]: ...
    def chain(
        self,
        *,
        lora_id: int | None = None,
        lora_name: str | None = None,
        lora_path: str | None = None,
        cache_salt: str | None = None,
        mm_items: Sequence[tuple[str, int, int]] | None = None,
        prompt_embeds: tuple[bytes, int] | None = None,
    ) -> HashChain: ...
    @property
    def block_size(self) -> int: ...
    @property
    def algo(self) -> str: ...
    @property
    def seed(self) -> str | None: ...
    @property
    def vllm_version(self) -> str: ...
    @property
    def none_hash(self) -> bytes: ...

@final
class HashChain:
    def extend(self, tokens: _Tokens) -> list[int]: ...
    @property
    def block_hashes(self) -> list[int]: ...
    @property
    def num_tokens(self) -> int: ...

@final
class BlockStored:
    @property
    def block_hashes(self) -> list[int]: ...
    @property
    def raw_block_hashes(self) -> list[int | bytes]: ...
    @property
    def parent_block_hash(self) -> int | None: ...
    @property
    def raw_parent_block_hash(self) -> int | bytes | None: ...
    @property
    def token_ids(self) -> list[int]: ...
    @property
    def block_size(self) -> int: ...
    @property
    def lora_id(self) -> int | None: ...
    @property
    def medium(self) -> str | None: ...
    @property
    def lora_name(self) -> str | None: ...
    @property
    def extra_keys(self) -> list[tuple[_ExtraKeyValue, ...] | None] | None: ...
    @property
    def group_idx(self) -> int | None: ...
    @property
    def kv_cache_spec_kind(self) -> str | None: ...
    @property
    def kv_cache_spec_sliding_window(self) -> int | None: ...
    @property
    def locality(self) -> str | None: ...
    @property
    def ownership(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def lookahead_token_ids(self) -> list[list[int]] | None: ...

@final
class BlockRemoved:
    @property
    def block_hashes(self) -> list[int]: ...
    @property
    def raw_block_hashes(self) -> list[int | bytes]: ...
    @property
    def medium(self) -> str | None: ...
    @property
    def group_idx(self) -> int | None: ...
    @property
    def locality(self) -> str | None: ...
    @property
    def ownership(self) -> str | None: ...

@final
class AllBlocksCleared:
    def __new__(cls) -> AllBlocksCleared: ...

_KvEvent: TypeAlias = BlockStored | BlockRemoved | AllBlocksCleared

@final
class EventBatch:
    @property
    def ts(self) -> float: ...
    @property
    def data_parallel_rank(self) -> int | None: ...
    @property
    def skipped_events(self) -> int: ...
    @property
    def events(self) -> list[_KvEvent]: ...
    def __len__(self) -> int: ...

def decode_event_batch(payload: bytes | bytearray | memoryview) -> EventBatch: ...

REPLAY_END_SEQ: int

@final
class Topic:
    @property
    def topic(self) -> str: ...
    @property
    def pod(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def conforms_to_convention(self) -> bool: ...

def parse_topic(frame: bytes) -> Topic: ...
def parse_seq(frame: bytes) -> int: ...

@final
class Decision:
    @property
    def request_id(self) -> str: ...
    @property
    def target(self) -> Target | None: ...
    @property
    def fallbacks(self) -> list[Target]: ...
    @property
    def prefill_target(self) -> Target | None: ...
    @property
    def encode_targets(self) -> list[Target]: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def response_headers(self) -> dict[str, str]: ...
    @property
    def remove_headers(self) -> list[str]: ...
    def explain(self) -> dict[str, Any]: ...
    def explain_json(self) -> str: ...

@final
class Scheduler:
    def __new__(cls, config: str | None = None, *, seed: int | None = None, strict: bool = False) -> Scheduler: ...
    @staticmethod
    def from_yaml(text: str, *, seed: int | None = None, strict: bool = False) -> Scheduler: ...
    @staticmethod
    def from_file(path: str | PathLike[str], *, seed: int | None = None, strict: bool = False) -> Scheduler: ...
    @staticmethod
    def default(*, seed: int | None = None) -> Scheduler: ...
    @property
    def report(self) -> ConfigReport: ...
    def add_endpoint(
        self,
        name: str,
        address: str,
        *,
        labels: Mapping[str, str] | None = None,
        model: str | None = None,
        lora_adapters: Sequence[str] | None = None,
    ) -> None: ...
    def update_endpoint(
        self,
        name: str,
        address: str,
        *,
        labels: Mapping[str, str] | None = None,
        model: str | None = None,
        lora_adapters: Sequence[str] | None = None,
    ) -> None: ...
    def remove_endpoint(self, name: str) -> None: ...
    def endpoints(self) -> list[str]: ...
    def endpoint_state(self, name: str) -> EndpointState: ...
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
    ) -> None: ...
    def update_metrics_text(self, name: str, text: str) -> None: ...
    def ingest_kv_events(
        self, endpoint: str, payload: bytes | bytearray | memoryview, seq: int | None = None
    ) -> IngestResult: ...
    def tick(self) -> None: ...
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
    ) -> Decision: ...
    def _time_pick(
        self,
        iterations: int,
        *,
        model: str = "",
        prompt: str | None = None,
        tokens: _Tokens | None = None,
        request_id: str | None = None,
    ) -> float: ...
    def on_first_token(self, request_id: str) -> bool: ...
    def on_prefill_done(self, request_id: str) -> bool: ...
    def on_tokens(self, request_id: str, n: int) -> bool: ...
    def on_complete(
        self, request_id: str, cached_tokens: int | None = None, *, usage: Mapping[str, Any] | None = None
    ) -> RequestSummary | None: ...
    def on_error(
        self, request_id: str, kind: Literal["cancelled", "upstream", "other"] = "upstream"
    ) -> RequestSummary | None: ...
    def render_metrics(self) -> str: ...
    @property
    def open_requests(self) -> int: ...

@final
class KvIndex:
    def __new__(
        cls,
        *,
        block_size: int = 16,
        mode: Literal["engine_parity", "router_keys", "approximate"] | None = None,
        hasher: BlockHasher | None = None,
        capacity_blocks: int = 1048576,
        max_endpoints: int = 1024,
        gpu_weight: float = 1.0,
        cpu_weight: float = 0.8,
        storage_weight: float = 0.5,
        speculative_weight: float = 0.9,
        speculative_ttl_s: float = 2.0,
    ) -> KvIndex: ...
    def apply_event_batch(
        self, endpoint: str, payload: bytes | bytearray | memoryview, *, model: str = "", seq: int | None = None
    ) -> IndexApplyResult: ...
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
    ) -> list[int]: ...
    def match_prefix(self, block_hashes: _Tokens, *, model: str = "") -> dict[str, float]: ...
    def match_prefix_blocks(self, block_hashes: _Tokens, *, model: str = "") -> dict[str, tuple[int, float]]: ...
    def record_routing(self, endpoint: str, block_hashes: _Tokens, *, model: str = "") -> None: ...
    def remove_endpoint(self, endpoint: str) -> None: ...
    def clear_endpoint(self, endpoint: str) -> None: ...
    def tick(self) -> None: ...
    @property
    def block_size(self) -> int: ...
    def stats(self) -> IndexStats: ...
