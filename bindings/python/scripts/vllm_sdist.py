"""Fetches vLLM 0.33.0's source distribution from PyPI for the chat parity
test (``tests/vllm_chat.py``), checks its sha256, and unpacks the files the
oracle reads. Idempotent: a complete unpacked copy is reused.

Usage: vllm_sdist.py CACHE_DIR   (prints the unpacked source directory)
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import urllib.request
from pathlib import Path

VERSION = "0.33.0"
URL = (
    "https://files.pythonhosted.org/packages/f7/25/"
    "aa5684e9c59d6fc75f78926b7f15e8d9adc7de2d9e6e7575b80776ad8169/vllm-0.33.0.tar.gz"
)
SHA256 = "f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112"
# What the oracle reads (vllm_chat.py's module docstring says why).
MEMBERS = (
    "PKG-INFO",
    "vllm/exceptions.py",
    "vllm/utils/func_utils.py",
    "vllm/renderers/",
    "vllm/entrypoints/",
)


def main(cache: Path) -> Path:
    root = cache / f"vllm-{VERSION}"
    done = root / ".complete"
    if done.is_file():
        return root
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"vllm-{VERSION}.tar.gz"
    if not tarball.is_file() or hashlib.sha256(tarball.read_bytes()).hexdigest() != SHA256:
        part = tarball.with_suffix(".part")
        with urllib.request.urlopen(URL, timeout=300) as r, part.open("wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        got = hashlib.sha256(part.read_bytes()).hexdigest()
        if got != SHA256:
            part.unlink()
            raise SystemExit(f"{URL}: sha256 {got}, expected {SHA256}")
        part.replace(tarball)
    prefix = f"vllm-{VERSION}/"
    with tarfile.open(tarball) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.isfile() and any(m.name.startswith(prefix + w) for w in MEMBERS)
        ]
        tar.extractall(cache, members=wanted, filter="data")
    done.write_text(SHA256 + "\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(main(Path(sys.argv[1])))
