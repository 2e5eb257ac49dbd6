"""vLLM's own prefix-cache hashing, written out in pure Python as vLLM 0.20 runs it.

This is the baseline of the ``block_hashes`` benchmark: the same functions,
loop and data shapes as ``vllm/utils/hashing.py`` and
``vllm/v1/core/kv_cache_utils.py`` (``sha256``, ``sha256_cbor``,
``init_none_hash``, ``hash_block_tokens``, ``generate_block_hash_extra_keys``
and the closure of ``get_request_block_hasher``), with a minimal stand-in for
the engine's ``Request`` that carries the attributes the loop reads. Only the
multimodal and prompt-embedding branches are left out: the benchmark hashes
plain text prompts (optionally with LoRA and cache salt), where vLLM takes the
same early exits. The test suite checks this module against ``vectors.json``
so the baseline is known to compute vLLM's values.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cbor2

BlockHash = bytes


def sha256(input: Any) -> bytes:
    input_bytes = pickle.dumps(input, protocol=pickle.HIGHEST_PROTOCOL)
    return hashlib.sha256(input_bytes).digest()


def sha256_cbor(input: Any) -> bytes:
    input_bytes = cbor2.dumps(input, canonical=True)
    return hashlib.sha256(input_bytes).digest()


HASH_FUNCTIONS: dict[str, Callable[[Any], bytes]] = {
    "sha256": sha256,
    "sha256_cbor": sha256_cbor,
}


def none_hash(hash_fn: Callable[[Any], bytes], seed: str) -> BlockHash:
    """``init_none_hash`` with ``PYTHONHASHSEED`` set to ``seed``."""
    return hash_fn(seed)


@dataclass
class LoRARequest:
    lora_name: str
    lora_int_id: int
    lora_path: str = ""


@dataclass
class Request:
    """The attributes of ``vllm.v1.request.Request`` that block hashing reads."""

    all_token_ids: list[int]
    lora_request: LoRARequest | None = None
    cache_salt: str | None = None
    mm_features: list[Any] = field(default_factory=list)
    prompt_embeds: Any = None
    block_hashes: list[BlockHash] = field(default_factory=list)

    @property
    def num_tokens(self) -> int:
        return len(self.all_token_ids)


def hash_block_tokens(
    hash_function: Callable[[Any], bytes],
    parent_block_hash: BlockHash | None,
    curr_block_token_ids: Sequence[int],
    extra_keys: tuple[Any, ...] | None = None,
    *,
    none_hash: BlockHash,
) -> BlockHash:
    if not parent_block_hash:
        parent_block_hash = none_hash

    curr_block_token_ids_tuple = tuple(curr_block_token_ids)
    return BlockHash(hash_function((parent_block_hash, curr_block_token_ids_tuple, extra_keys)))


def _gen_lora_extra_hash_keys(request: Request) -> list[str]:
    if not request.lora_request:
        return []
    return [request.lora_request.lora_name]


def generate_block_hash_extra_keys(
    request: Request, start_token_idx: int, end_token_idx: int, start_mm_idx: int
) -> tuple[tuple[Any, ...] | None, int]:
    # The multimodal branch returns ([], start_mm_idx) when the request has no
    # mm_features, and the prompt-embedding branch [] without embeddings.
    mm_extra_keys: list[Any] = []
    new_start_mm_idx = start_mm_idx
    if request.mm_features:
        raise NotImplementedError("multimodal requests are outside this baseline")
    lora_extra_keys: list[Any] = _gen_lora_extra_hash_keys(request)
    cache_salt_keys: list[str] = (
        [request.cache_salt] if (start_token_idx == 0 and request.cache_salt) else []
    )
    prompt_embeds_keys: list[Any] = []
    if request.prompt_embeds is not None:
        raise NotImplementedError("prompt embeddings are outside this baseline")

    extra_keys: list[Any] = lora_extra_keys + mm_extra_keys + cache_salt_keys + prompt_embeds_keys
    if not extra_keys:
        return None, new_start_mm_idx
    return tuple(extra_keys), new_start_mm_idx


def get_request_block_hasher(
    block_size: int, caching_hash_fn: Callable[[Any], bytes], none_hash: BlockHash
) -> Callable[[Request], list[BlockHash]]:
    def request_block_hasher(request: Request) -> list[BlockHash]:
        start_token_idx = len(request.block_hashes) * block_size
        num_tokens = request.num_tokens

        if start_token_idx + block_size > num_tokens:
            return []

        curr_mm_idx = 0
        if start_token_idx > 0:
            curr_mm_idx = -1

        prev_block_hash_value = request.block_hashes[-1] if request.block_hashes else None
        new_block_hashes: list[BlockHash] = []
        while True:
            end_token_idx = start_token_idx + block_size
            if end_token_idx > num_tokens:
                break

            extra_keys, curr_mm_idx = generate_block_hash_extra_keys(
                request, start_token_idx, end_token_idx, curr_mm_idx
            )

            block_tokens = request.all_token_ids[start_token_idx:end_token_idx]
            block_hash = hash_block_tokens(
                caching_hash_fn,
                prev_block_hash_value,
                block_tokens,
                extra_keys,
                none_hash=none_hash,
            )

            new_block_hashes.append(block_hash)
            start_token_idx += block_size
            prev_block_hash_value = block_hash

        return new_block_hashes

    return request_block_hasher


def published(block_hash: BlockHash) -> int:
    """``maybe_convert_block_hash``: the u64 an event carries for a digest."""
    return int.from_bytes(block_hash[-8:], "big")
