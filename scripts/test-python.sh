# Python section of scripts/test.sh (sourced there with `set -euo pipefail`,
# $ROOT = repository root, `step` and `apt_install` defined).
#
# Builds the `llmd` wheel exactly as `pip install ./bindings/python` does
# (PEP 517, maturin, release profile), installs it into a fresh virtualenv
# with the pinned test tools, then checks the stubs and runs the pytest suite.
# Environment:
#   LLMD_VENV         virtualenv path (default $ROOT/.venv)
#   LLMD_PY_REUSE=1   keep the virtualenv and its tools instead of recreating it
#   LLMD_PY_PYTHON    interpreter that creates the virtualenv (default python3)
#   LLMD_CACHE        downloads kept between runs (default $ROOT/.cache): the
#                     parity tests' sources (vLLM 0.33.0's sdist, real tokenizers;
#                     sha256-pinned, see bindings/python/scripts/parity_sources.py)

llmd_python_section() {
  local venv=${LLMD_VENV:-$ROOT/.venv}
  local python=${LLMD_PY_PYTHON:-python3}
  local wheels=$ROOT/target/wheels
  # Pinned versions of the tools the checks run with (also in pyproject's `test` extra).
  local tools=(maturin==1.16.0 pytest==9.2.0 mypy==2.4.1 cbor2==6.3.0 pyzmq==27.3.0 tokenizers==0.23.3 transformers==5.20.2 jinja2==3.1.6 openai==2.54.0 pydantic==2.14.4 pillow==13.0.0 openai-harmony==0.0.8 opentelemetry-proto==1.45.2 protobuf==7.36.2)

  if ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    apt_install python3 python3-venv python3-pip
    python=/usr/bin/python3
  fi
  if [ "${LLMD_PY_REUSE:-0}" != 1 ] || [ ! -x "$venv/bin/python" ]; then
    step "python: fresh virtualenv $venv ($("$python" --version 2>&1))"
    "$python" -m venv --clear "$venv"
  fi
  step "python: pip install ${tools[*]}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "${tools[@]}"

  step "python: build the llmd wheel (pip wheel ./bindings/python)"
  rm -f "$wheels"/llmd-*.whl
  "$venv/bin/python" -m pip wheel -q --disable-pip-version-check --no-deps \
    -w "$wheels" "$ROOT/bindings/python"
  local wheel
  wheel=$(ls "$wheels"/llmd-*.whl)
  case "$wheel" in
    *-cp310-abi3-*) ;;
    *) echo "expected an abi3 wheel for CPython >= 3.10, got $wheel" >&2; return 1 ;;
  esac
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --force-reinstall --no-deps "$wheel"

  step "python: mypy.stubtest llmd"
  (cd "$ROOT" && "$venv/bin/python" -m mypy.stubtest llmd --concise)
  step "python: mypy --strict (tests, benchmarks, example against the stubs)"
  (cd "$ROOT" && "$venv/bin/python" -m mypy --strict --no-incremental \
    bindings/python/tests bindings/python/bench bindings/python/scripts examples/python)
  local cache=${LLMD_CACHE:-$ROOT/.cache}
  step "python: parity sources into $cache (vLLM 0.33.0 sdist; Qwen2.5 and Llama 3 tokenizers)"
  "$venv/bin/python" "$ROOT/bindings/python/scripts/parity_sources.py" "$cache"
  step "python: pytest"
  (cd "$ROOT" && LLMD_VLLM_SRC="$cache/vllm-0.33.0" LLMD_REAL_TOKENIZERS="$cache/tokenizers" \
    "$venv/bin/python" -m pytest -q bindings/python/tests)
}
llmd_python_section
