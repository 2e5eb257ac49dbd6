"""Keeps the docstrings of ``llmd/_native.pyi`` equal to the native module's.

The runtime docstrings come from the Rust doc comments (what ``help()``
shows); the stub carries the same text so that editors and type checkers show
it too. ``python stub_docs.py`` rewrites the stub in place; ``--check`` only
reports the classes and functions whose stub docstring differs (exit 1).

Dunder methods are skipped: a class's constructor is documented on the class.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import sys
from pathlib import Path
from typing import Any

import llmd._native as native

STUB = Path(__file__).resolve().parent.parent / "python" / "llmd" / "_native.pyi"


def runtime_doc(owner: Any, name: str) -> str | None:
    obj = getattr(owner, name, None)
    doc = getattr(obj, "__doc__", None) if obj is not None else None
    if not doc:
        return None
    if isinstance(obj, type) and doc == type.__doc__:
        return None
    return inspect.cleandoc(doc)


def targets(tree: ast.Module) -> list[tuple[ast.FunctionDef | ast.ClassDef, str | None]]:
    """Every documented stub node with the docstring the runtime gives it."""
    out: list[tuple[ast.FunctionDef | ast.ClassDef, str | None]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append((node, runtime_doc(native, node.name)))
        elif isinstance(node, ast.ClassDef):
            cls = getattr(native, node.name, None)
            out.append((node, runtime_doc(native, node.name)))
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and not item.name.startswith("__"):
                    out.append((item, runtime_doc(cls, item.name) if cls is not None else None))
    return out


def quote(doc: str, indent: str) -> list[str]:
    text = doc.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    lines = text.split("\n")
    if len(lines) == 1:
        return [f'{indent}"""{lines[0]}"""']
    body = [f"{indent}{line}" if line else "" for line in lines[1:]]
    return [f'{indent}"""{lines[0]}', *body, f'{indent}"""']


def rewrite(src: str) -> str:
    tree = ast.parse(src)
    lines = src.split("\n")
    edits = []
    for node, doc in targets(tree):
        if doc is None:
            continue
        first = node.body[0]
        has_doc = isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
        edits.append((node, doc, has_doc))
    # Bottom-up, so earlier line numbers stay valid.
    for node, doc, has_doc in sorted(edits, key=lambda e: e[0].lineno, reverse=True):
        first = node.body[0]
        indent = " " * (node.col_offset + 4)
        new = quote(doc, indent)
        if has_doc:
            start, end = first.lineno - 1, (first.end_lineno or first.lineno) - 1
            lines[start : end + 1] = new
            continue
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and first.value.value is Ellipsis and len(node.body) == 1:
            # `def f(...) -> T: ...` (the body on the signature's last line).
            row = first.lineno - 1
            line = lines[row]
            head = line[: first.col_offset].rstrip()
            tail = line[first.end_col_offset :]
            if head.strip():
                lines[row : row + 1] = [head + tail, *new]
            else:
                lines[row : row + 1] = new
            continue
        # A class or function with a real body: the docstring goes first,
        # above the first statement's decorators if it has any.
        decorators = getattr(first, "decorator_list", [])
        row = min([first.lineno, *(d.lineno for d in decorators)]) - 1
        lines[row:row] = new
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="report differences, change nothing")
    args = parser.parse_args()
    src = STUB.read_text()
    new = rewrite(src)
    if args.check:
        tree = ast.parse(src)
        stale = [
            node.name
            for node, doc in targets(tree)
            if doc is not None and ast.get_docstring(node, clean=True) != doc
        ]
        for name in stale:
            print(f"stub docstring differs from the runtime's: {name}", file=sys.stderr)
        return 1 if stale else 0
    if new != src:
        STUB.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
