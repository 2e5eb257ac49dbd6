"""The type stubs carry the runtime's docstrings (what ``help()`` shows)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "stub_docs.py"


def test_stub_docstrings_match_the_runtime() -> None:
    r = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, f"run {SCRIPT.name} to update the stub:\n{r.stderr}"
