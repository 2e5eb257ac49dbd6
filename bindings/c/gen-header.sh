#!/usr/bin/env bash
# Generates the C header with the pinned cbindgen, installing that version
# into a tool cache first when it is missing (idempotent).
# Usage: bindings/c/gen-header.sh [OUTPUT]   (default: bindings/c/include/llmd.h)
set -euo pipefail
CBINDGEN_VERSION=0.29.0
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/include/llmd.h}
tools=${LLMD_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/llmd-tools}
cbindgen_root=$tools/cbindgen-$CBINDGEN_VERSION
cbindgen=$cbindgen_root/bin/cbindgen
if [ ! -x "$cbindgen" ]; then
  echo "installing cbindgen $CBINDGEN_VERSION into $cbindgen_root" >&2
  cargo install cbindgen --version "$CBINDGEN_VERSION" --locked --root "$cbindgen_root" >&2
fi
"$cbindgen" --quiet --config "$here/cbindgen.toml" --crate llmd-c --output "$out" "$here"
