"""``BlockHasher.block_hashes`` of an 8k-token prompt vs vLLM's own Python hashing.

Both sides hash the same tokens with the same algorithm, seed and block size
in the same process; the outputs are compared before anything is timed. The
vLLM side is ``vllm_hashing`` (vLLM's code path written out with cbor2 /
pickle and hashlib), the llmd side includes converting the Python list.

    python bindings/python/bench/bench_hashing.py [--tokens 8192] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import vllm_hashing as ref  # noqa: E402

import llmd  # noqa: E402


def best_seconds(fn: object, repeat: int, budget_s: float = 0.2) -> float:
    """Best CPU time of this thread per call over `repeat` rounds of about
    `budget_s` each (other processes on a shared machine stretch wall time,
    not this thread's CPU time; the native work runs on this thread too)."""
    timer = timeit.Timer(fn, timer=time.thread_time)  # type: ignore[arg-type]
    number, _ = timer.autorange()
    number = max(1, int(number * budget_s / 0.2))
    return min(timer.repeat(repeat=repeat, number=number)) / number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--block-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    rng = random.Random(0)
    tokens = [rng.randrange(0, 128_000) for _ in range(args.tokens)]
    seed = "0"
    results = []
    for algo in ("sha256_cbor", "sha256"):
        hasher = llmd.BlockHasher(block_size=args.block_size, algo=algo, seed=seed, vllm_version="0.20.0")
        hash_fn = ref.HASH_FUNCTIONS[algo]
        vllm_hasher = ref.get_request_block_hasher(args.block_size, hash_fn, ref.none_hash(hash_fn, seed))

        def run_vllm(vllm_hasher: object = vllm_hasher) -> list[bytes]:
            return vllm_hasher(ref.Request(all_token_ids=tokens))  # type: ignore[operator, no-any-return]

        def run_llmd(hasher: llmd.BlockHasher = hasher) -> list[int]:
            return hasher.block_hashes(tokens)

        expected = [ref.published(d) for d in run_vllm()]
        if run_llmd() != expected or hasher.digests(tokens) != run_vllm():
            raise SystemExit(f"{algo}: llmd and the vLLM baseline disagree")

        t_vllm = best_seconds(run_vllm, args.repeat)
        t_llmd = best_seconds(run_llmd, args.repeat)
        results.append(
            {
                "algo": algo,
                "tokens": args.tokens,
                "blocks": len(expected),
                "vllm_python_us": round(t_vllm * 1e6, 1),
                "llmd_us": round(t_llmd * 1e6, 1),
                "speedup": round(t_vllm / t_llmd, 1),
            }
        )

    if args.json:
        print(json.dumps({"python": platform.python_version(), "results": results}))
        return
    print(f"block_hashes, {args.tokens} tokens, block size {args.block_size}, Python {platform.python_version()}")
    print(f"{'algo':<12} {'blocks':>6} {'vLLM Python µs':>15} {'llmd µs':>9} {'speedup':>8}")
    for r in results:
        print(
            f"{r['algo']:<12} {r['blocks']:>6} {r['vllm_python_us']:>15} {r['llmd_us']:>9} {r['speedup']:>7}×"
        )


if __name__ == "__main__":
    main()
