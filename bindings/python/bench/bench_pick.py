"""Python-side overhead of ``Scheduler.pick``: the same request picked from
Python and in a Rust loop (``Scheduler._time_pick``) on the same scheduler,
in the same process. Times are CPU time of the calling thread.

    python bindings/python/bench/bench_pick.py [--endpoints 8] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import time
import timeit
from pathlib import Path
from typing import Any

import llmd

CONFIGS = Path(__file__).resolve().parents[3] / "testdata" / "llm-d-configs"
MODEL = "meta-llama/Llama-3.1-8B-Instruct"


def best(fn: Any, repeat: int) -> float:
    """Best CPU time of this thread per call: other processes on a shared
    machine stretch wall time, not the calling thread's CPU time (the native
    work runs on this thread too, with the GIL released)."""
    timer = timeit.Timer(fn, timer=time.thread_time)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number


def scheduler(config: str | None, endpoints: int) -> llmd.Scheduler:
    s = llmd.Scheduler.from_file(CONFIGS / config, seed=1) if config else llmd.Scheduler.default(seed=1)
    rng = random.Random(1)
    for i in range(endpoints):
        name = f"pod-{i}"
        s.add_endpoint(name, f"10.0.0.{i}:8000", model=MODEL)
        s.update_metrics(name, waiting_queue_size=rng.randrange(8), kv_cache_usage=rng.random() * 0.8)
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoints", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    text = "You are a helpful assistant. " * 8 + "Summarize the following document."
    tokens = list(range(1000, 2024))
    cases: list[tuple[str, str | None, dict[str, Any]]] = [
        ("default config, text prompt", None, {"prompt": text}),
        ("default config, 1024 tokens", None, {"tokens": tokens}),
        ("precise prefix config, 1024 tokens", "02-precise-prefix-kv-events.yaml", {"tokens": tokens}),
    ]
    rows = []
    for label, config, prompt in cases:
        s = scheduler(config, args.endpoints)
        kwargs: dict[str, Any] = {"model": MODEL, "request_id": "bench", **prompt}
        # Same id every time: the open-request table holds one entry.
        t_py = best(lambda: s.pick(**kwargs), args.repeat)
        n = max(1, int(0.2 / max(t_py, 1e-7)))
        t_rust = best(lambda: s._time_pick(n, **kwargs), args.repeat) / n
        rows.append(
            {
                "case": label,
                "endpoints": args.endpoints,
                "rust_us": round(t_rust * 1e6, 2),
                "python_us": round(t_py * 1e6, 2),
                "overhead_us": round((t_py - t_rust) * 1e6, 2),
            }
        )
    # pick_openai: the body as the gateway has it (bytes), with the tiny
    # test tokenizer for the chat case.
    tiny = CONFIGS.parent / "tokenizers" / "tiny"
    bodies = [
        ("pick_openai, completions, 1024 ids", "/v1/completions", {"model": MODEL, "prompt": tokens}),
        (
            "pick_openai, chat, 256 words",
            "/v1/chat/completions",
            {"model": MODEL, "messages": [{"role": "user", "content": " ".join(f"w{i % 200}" for i in range(256))}]},
        ),
    ]
    for label, path, body in bodies:
        s = scheduler("02-precise-prefix-kv-events.yaml", args.endpoints)
        s.set_tokenizer("", llmd.Tokenizer.from_dir(tiny))
        raw = json.dumps(body).encode()
        t_py = best(lambda: s.pick_openai(path, raw, request_id="bench"), args.repeat)
        n = max(1, int(0.2 / max(t_py, 1e-7)))
        t_rust = best(lambda: s._time_pick_openai(n, path, raw), args.repeat) / n
        rows.append(
            {
                "case": label,
                "endpoints": args.endpoints,
                "rust_us": round(t_rust * 1e6, 2),
                "python_us": round(t_py * 1e6, 2),
                "overhead_us": round((t_py - t_rust) * 1e6, 2),
            }
        )
    if args.json:
        print(json.dumps({"python": platform.python_version(), "results": rows}))
        return
    print(f"Scheduler.pick, {args.endpoints} endpoints, Python {platform.python_version()}")
    print(f"{'case':<38} {'Rust µs':>8} {'Python µs':>10} {'overhead µs':>12}")
    for r in rows:
        print(f"{r['case']:<38} {r['rust_us']:>8} {r['python_us']:>10} {r['overhead_us']:>12}")


if __name__ == "__main__":
    main()
