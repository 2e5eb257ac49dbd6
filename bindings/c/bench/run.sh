#!/usr/bin/env bash
# Measures the per-pick cost from Rust, from Rust through the C ABI, from C
# and from Go on one scenario (see benches/pick.rs). Installs a release build
# into target/llmd-c/bench-prefix first. Usage: bindings/c/bench/run.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
prefix="$root/target/llmd-c/bench-prefix"
"$root/bindings/c/install.sh" "$prefix" >/dev/null
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
cc -O2 -std=c11 "$here/pick_bench.c" $(pkg-config --cflags --libs llmd) -o "$prefix/pick_bench"
echo "== C"
"$prefix/pick_bench"
echo "== Go"
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi
(cd "$root/bindings/go" && go test -run '^$' -bench 'BenchmarkPick$|BenchmarkCall$' -benchtime 1s -count 3 . &&
  go test -run '^$' -bench 'BenchmarkGoOverhead$' -benchtime 1x -count 3 .)
echo "== Rust: C ABI overhead (alternating rounds)"
(cd "$root" && cargo bench -p llmd-c --bench abi_overhead)
echo "== Rust (criterion)"
(cd "$root" && cargo bench -p llmd-c --bench pick -- --warm-up-time 1 --measurement-time 3)
