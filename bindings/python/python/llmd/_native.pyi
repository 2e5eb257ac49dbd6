"""Type stubs of the native module ``llmd._native`` (checked by mypy.stubtest)."""

from collections.abc import Iterable, Sequence
from typing import TypeAlias, final

__all__ = [
    "__version__",
    "NEWEST_VLLM_VERSION",
    "BlockHasher",
    "EventBatch",
    "BlockStored",
    "BlockRemoved",
    "AllBlocksCleared",
    "decode_event_batch",
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
