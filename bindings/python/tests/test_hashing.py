"""Every hash case of vectors.json through llmd.BlockHasher."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import vectors

import llmd


def _version(case: dict[str, Any]) -> str:
    # Any release of the case's range reproduces it; the newest one also
    # covers the unset-seed cases (vLLM >= 0.29).
    return str(case["vllm_versions"]).split("-")[-1]


def _extras(case: dict[str, Any]) -> dict[str, Any]:
    req = case["request"]
    if req is None:
        return {}
    out: dict[str, Any] = {}
    if req["lora"] is not None:
        out.update(
            lora_id=req["lora"]["int_id"],
            lora_name=req["lora"]["name"],
            lora_path=req["lora"]["path"],
        )
    if req["cache_salt"] is not None:
        out["cache_salt"] = req["cache_salt"]
    if req["mm_items"]:
        out["mm_items"] = [(m["identifier"], m["offset"], m["length"]) for m in req["mm_items"]]
    if req["prompt_embeds"] is not None:
        pe = req["prompt_embeds"]
        out["prompt_embeds"] = (bytes.fromhex(pe["data_hex"]), pe["row_bytes"])
    return out


HASH_CASES = vectors()["hash_cases"]


@pytest.mark.parametrize("case", HASH_CASES, ids=lambda c: str(c["id"]))
def test_hash_case(case: dict[str, Any]) -> None:
    hasher = llmd.BlockHasher(
        block_size=case["block_size"],
        algo=case["algo"],
        seed=case["seed"],
        vllm_version=_version(case),
    )
    assert hasher.none_hash.hex() == case["none_hash_hex"]
    extras = _extras(case)
    keys = hasher.block_hashes(case["tokens"], **extras)
    assert [str(k) for k in keys] == [b["published_u64"] for b in case["blocks"]]
    digests = hasher.digests(case["tokens"], **extras)
    assert [d.hex() for d in digests] == [b["digest_hex"] for b in case["blocks"]]


def test_all_cases_ran() -> None:
    assert len(HASH_CASES) == vectors()["counts"]["hash_cases"] > 400


def test_defaults_and_properties() -> None:
    h = llmd.BlockHasher()
    assert (h.block_size, h.algo, h.seed) == (16, "sha256_cbor", None)
    assert h.vllm_version == llmd.NEWEST_VLLM_VERSION
    assert "sha256_cbor" in repr(h)
    # vLLM >= 0.29 with the seed unset hashes "vllm-none-hash" (SPEC 2.4).
    assert h.block_hashes(range(1, 33)) == llmd.BlockHasher(seed=None).block_hashes(list(range(1, 33)))


def test_token_containers_agree() -> None:
    h = llmd.BlockHasher(seed="42")
    tokens = list(range(1, 65))
    expected = h.block_hashes(tokens)
    assert len(expected) == 4
    assert h.block_hashes(tuple(tokens)) == expected
    assert h.block_hashes(iter(tokens)) == expected
    assert h.block_hashes(tokens + [1, 2, 3]) == expected  # the partial tail is not hashed
    assert h.block_hashes(tokens[:15]) == []


def test_seed_changes_hashes() -> None:
    tokens = list(range(32))
    assert llmd.BlockHasher(seed="0").block_hashes(tokens) != llmd.BlockHasher(seed="42").block_hashes(tokens)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"algo": "md5"},
        {"block_size": 0},
        {"vllm_version": "zero.one"},
        {"vllm_version": "0.1.0"},
        {"algo": "xxhash", "seed": None},  # random NONE_HASH per process in vLLM
        {"algo": "xxhash", "vllm_version": "0.11.0", "seed": "0"},  # not in that release
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(llmd.HashError) as info:
        llmd.BlockHasher(**kwargs)
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_bad_tokens() -> None:
    h = llmd.BlockHasher()
    with pytest.raises(TypeError):
        h.block_hashes("not tokens")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        h.block_hashes([1.5] * 16)  # type: ignore[list-item]
    with pytest.raises(llmd.InvalidArgumentError, match="position 0"):
        h.block_hashes([-1] * 16)


def test_bad_extras() -> None:
    h = llmd.BlockHasher(seed="0")
    with pytest.raises(llmd.HashError):
        h.block_hashes(list(range(32)), mm_items=[("img", 4, 0)])  # covers no token
    with pytest.raises(llmd.HashError):
        h.block_hashes([0] * 32, prompt_embeds=(b"\0" * 16, 16))  # 1 row for 32 tokens


def test_incremental_chain_equals_whole_prompt() -> None:
    h = llmd.BlockHasher(seed="0", algo="sha256")
    tokens = list(range(1, 200))
    chain = h.chain(lora_name="a", lora_path="p", cache_salt="s")
    got: list[int] = []
    for start in range(0, len(tokens), 37):  # turns that end mid-block
        got += chain.extend(tokens[start : start + 37])
    assert got == chain.block_hashes == h.block_hashes(tokens, lora_name="a", lora_path="p", cache_salt="s")
    assert chain.num_tokens == len(tokens)
    with pytest.raises(llmd.InvalidArgumentError):
        chain.extend([-1])
    assert chain.num_tokens == len(tokens)
