"""Shared fixtures: the repository's test data and the benchmark helpers."""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[3]
BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"
VECTORS_PATH = REPO_ROOT / "testdata" / "vllm-compat" / "vectors.json"
CONFIGS_DIR = REPO_ROOT / "testdata" / "llm-d-configs"

# The vLLM baseline of the benchmarks is tested here too.
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))


@cache
def vectors() -> dict[str, Any]:
    with VECTORS_PATH.open() as f:
        data: dict[str, Any] = json.load(f)
    return data
