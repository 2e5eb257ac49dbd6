"""The pure-Python vLLM baseline of the hashing benchmark computes vLLM's values."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import vectors

import vllm_hashing as ref


def _baseline_cases() -> list[dict[str, Any]]:
    return [
        c
        for c in vectors()["hash_cases"]
        if c["algo"] in ref.HASH_FUNCTIONS
        and c["seed"] is not None
        and c["extra_key_schema"] in (None, "0.19")
        and (c["request"] is None or (not c["request"]["mm_items"] and not c["request"]["prompt_embeds"]))
    ]


@pytest.mark.parametrize("case", _baseline_cases(), ids=lambda c: str(c["id"]))
def test_baseline_matches_vectors(case: dict[str, Any]) -> None:
    hash_fn = ref.HASH_FUNCTIONS[case["algo"]]
    none_hash = ref.none_hash(hash_fn, case["seed"])
    assert none_hash.hex() == case["none_hash_hex"]
    req = case["request"] or {}
    lora = req.get("lora")
    request = ref.Request(
        all_token_ids=list(case["tokens"]),
        lora_request=ref.LoRARequest(lora["name"], lora["int_id"], lora["path"]) if lora else None,
        cache_salt=req.get("cache_salt"),
    )
    hasher = ref.get_request_block_hasher(case["block_size"], hash_fn, none_hash)
    digests = hasher(request)
    assert [d.hex() for d in digests] == [b["digest_hex"] for b in case["blocks"]]
    assert [str(ref.published(d)) for d in digests] == [b["published_u64"] for b in case["blocks"]]


def test_baseline_covers_both_algorithms() -> None:
    algos = {c["algo"] for c in _baseline_cases()}
    assert algos == {"sha256", "sha256_cbor"}
