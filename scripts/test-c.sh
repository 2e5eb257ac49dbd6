# C ABI section of scripts/test.sh (sourced there with `set -euo pipefail`,
# $ROOT, `step` and `apt_install`): header drift, install into a prefix, C and
# C++ tests against the installed library (plain, valgrind memcheck, ASan +
# UBSan, pkg-config), and the Go package with the race detector.

apt_install build-essential cmake pkg-config valgrind
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || apt_install golang-go

c_work="$ROOT/target/llmd-c"
c_prefix="$c_work/prefix"
mkdir -p "$c_work"

step "C header: committed llmd.h matches the pinned cbindgen output"
"$ROOT/bindings/c/gen-header.sh" "$c_work/llmd.h"
if ! diff -u "$ROOT/bindings/c/include/llmd.h" "$c_work/llmd.h"; then
  echo "bindings/c/include/llmd.h is stale: run bindings/c/gen-header.sh and commit it" >&2
  exit 1
fi
c_version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/Cargo.toml" | head -n1)
c_header_version=$(awk '/#define LLMD_VERSION_(MAJOR|MINOR|PATCH)/ {printf "%s%s", sep, $3; sep="."}' \
  "$ROOT/bindings/c/include/llmd.h")
if [ "$c_header_version" != "$c_version" ]; then
  echo "llmd.h version $c_header_version differs from Cargo.toml $c_version" >&2
  exit 1
fi

step "install libllmd into $c_prefix"
rm -rf "$c_prefix"
"$ROOT/bindings/c/install.sh" "$c_prefix"

step "C/C++ tests (find_package(llmd) from the prefix)"
cmake -S "$ROOT/bindings/c/tests" -B "$c_work/tests" -DCMAKE_PREFIX_PATH="$c_prefix" \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$c_work/tests" -j 2
ctest --test-dir "$c_work/tests" --output-on-failure

step "C/C++ tests under valgrind memcheck (possible leaks too, with the installed suppressions)"
for t in $(ctest --test-dir "$c_work/tests" -N | sed -n 's/^ *Test *#[0-9]*: //p'); do
  valgrind --quiet --error-exitcode=99 --leak-check=full \
    --errors-for-leak-kinds=definite,indirect,possible \
    --show-leak-kinds=definite,indirect,possible \
    --suppressions="$c_prefix/share/llmd/valgrind.supp" \
    --track-origins=yes "$c_work/tests/$t" >/dev/null
  echo "valgrind clean: $t"
done

step "C/C++ tests with AddressSanitizer + UBSan"
cmake -S "$ROOT/bindings/c/tests" -B "$c_work/tests-asan" -DCMAKE_PREFIX_PATH="$c_prefix" \
  -DCMAKE_BUILD_TYPE=Debug -DLLMD_SANITIZE=ON >/dev/null
cmake --build "$c_work/tests-asan" -j 2
# allocator_may_return_null: an oversized allocation returns NULL as plain
# malloc does (the index test checks that such a table is an error status).
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1 \
  UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir "$c_work/tests-asan" --output-on-failure

step "C scheduler test built with pkg-config --cflags --libs llmd"
PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" cc -std=c11 -Wall -Werror \
  -DLLMD_TESTDATA="\"$ROOT/testdata\"" "$ROOT/bindings/c/tests/c/test_scheduler.c" \
  $(PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" pkg-config --cflags --libs llmd) \
  -o "$c_work/test_scheduler_pkgconfig"
"$c_work/test_scheduler_pkgconfig"

step "C benchmark program builds and runs (smoke run, tiny iteration count)"
PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" cc -O2 -std=c11 -Wall -Werror \
  "$ROOT/bindings/c/bench/pick_bench.c" \
  $(PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" pkg-config --cflags --libs llmd) \
  -o "$c_work/pick_bench"
"$c_work/pick_bench" 50

if [ -f "$ROOT/bindings/go/go.mod" ]; then
  # Go's build cache does not look at headers outside a package: keyed by
  # the installed header's digest, cgo code is rebuilt whenever llmd.h
  # changes (a stale object would read structs in an older layout).
  header_key="$(sha256sum "$c_prefix/include/llmd.h" | cut -c1-16)"
  export CGO_CFLAGS="${CGO_CFLAGS:--O2 -g} -DLLMD_HEADER_KEY=0x$header_key"
  step "Go package: vet and tests with -race (cgo against the installed library)"
  (
    cd "$ROOT/bindings/go"
    export PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" CGO_ENABLED=1
    unformatted="$(gofmt -l .)"
    if [ -n "$unformatted" ]; then
      echo "gofmt: not formatted: $unformatted" >&2
      exit 1
    fi
    go vet ./...
    go test -race -count=1 ./...
    # The benchmarks once each: the C loop they compare against runs too.
    go test -run '^$' -bench . -benchtime 1x .
  )
  step "Go package used from another module (examples/go-module: require + replace)"
  (
    cd "$ROOT/examples/go-module"
    export PKG_CONFIG_PATH="$c_prefix/lib/pkgconfig" CGO_ENABLED=1
    go vet ./...
    go test -count=1 ./...
  )
fi
