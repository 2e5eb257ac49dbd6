"""A minimal msgpack writer for vLLM ``EventBatch`` payloads (the array layout
of vLLM 0.10.2 - 0.13), so tests can make KV events for any token list.

``test_scheduler.py`` checks that it reproduces a payload of vectors.json
byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any


def _pack(v: Any, out: bytearray) -> None:
    if v is None:
        out.append(0xC0)
    elif isinstance(v, bool):
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        if 0 <= v < 0x80:
            out.append(v)
        elif v >= 0:
            for tag, fmt, limit in ((0xCC, ">B", 1 << 8), (0xCD, ">H", 1 << 16), (0xCE, ">I", 1 << 32), (0xCF, ">Q", 1 << 64)):
                if v < limit:
                    out.append(tag)
                    out += struct.pack(fmt, v)
                    return
            raise ValueError("int too large")
        elif v >= -32:
            out += struct.pack(">b", v)
        else:
            out.append(0xD3)
            out += struct.pack(">q", v)
    elif isinstance(v, float):
        out.append(0xCB)
        out += struct.pack(">d", v)
    elif isinstance(v, str):
        b = v.encode()
        if len(b) < 32:
            out.append(0xA0 | len(b))
        else:
            out.append(0xD9)
            out.append(len(b))
        out += b
    elif isinstance(v, (list, tuple)):
        if len(v) < 16:
            out.append(0x90 | len(v))
        else:
            out.append(0xDC)
            out += struct.pack(">H", len(v))
        for item in v:
            _pack(item, out)
    else:
        raise TypeError(type(v))


def stored(
    hashes: Sequence[int], tokens: Sequence[int], *, parent: int | None = None, block_size: int = 16, medium: str = "GPU"
) -> list[Any]:
    return ["BlockStored", list(hashes), parent, list(tokens), block_size, None, medium]


def removed(hashes: Sequence[int], *, medium: str = "GPU") -> list[Any]:
    return ["BlockRemoved", list(hashes), medium]


def cleared() -> list[Any]:
    return ["AllBlocksCleared"]


def batch(events: Sequence[list[Any]], *, ts: float = 1700000000.5, dp_rank: int = 0) -> bytes:
    out = bytearray()
    _pack([ts, list(events), dp_rank], out)
    return bytes(out)


def stored_for(tokens: Sequence[int], *, key_base: int, block_size: int = 16) -> bytes:
    """One batch storing every full block of `tokens` with made-up engine keys."""
    n = len(tokens) // block_size
    hashes = [key_base + i for i in range(n)]
    return batch([stored(hashes, tokens[: n * block_size], block_size=block_size)])
