#!/usr/bin/env bash
# Runs every test of the project on a fresh machine: installs what it needs
# (idempotently), then checks formatting and lints, and runs the Rust, Python,
# C/C++/Go and Prometheus tests. Usage: ./scripts/test.sh [section...]
# Sections: rust python c prom sim (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
sections=("$@")
[ ${#sections[@]} -gt 0 ] || sections=(rust python c prom sim)
want() { local s; for s in "${sections[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
step() { printf '\n==> %s\n' "$*"; }

apt_install() {
  # Installs Debian packages that are missing; no-op when all are present.
  local missing=()
  local p
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  step "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get -o Acquire::Retries=3 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o Acquire::Retries=3 install -y -qq \
    --no-install-recommends "${missing[@]}"
}

if want rust; then
  step "cargo fmt --check"
  cargo fmt --all -- --check
  step "cargo clippy (all targets, warnings are errors)"
  cargo clippy --workspace --all-targets -- -D warnings
  step "cargo test"
  cargo test --workspace --exclude llmd-python
  step "cargo test: long stress tests (release)"
  cargo test --release -p llmd-kvindex -- --ignored
  step "fuzz target compiles (running it needs nightly cargo-fuzz)"
  (cd fuzz && cargo check --locked)
  step "loom: the index's lock-free read/reuse protocol under every interleaving"
  RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$ROOT/target/loom" \
    cargo test --release -p llmd-kvindex --test loom_index
fi

for s in python c prom sim; do
  if want "$s" && [ -f "scripts/test-$s.sh" ]; then
    step "section $s"
    # shellcheck source=/dev/null
    . "scripts/test-$s.sh"
  fi
done
step "all tests passed"
