#!/usr/bin/env bash
# Builds libllmd and installs it into a prefix:
#   PREFIX/include/llmd.h, llmd.hpp
#   PREFIX/lib/libllmd.a, libllmd.so.X.Y.Z (+ libllmd.so.X, libllmd.so links)
#   PREFIX/lib/pkgconfig/llmd.pc           (pkg-config --libs llmd)
#   PREFIX/lib/cmake/llmd/llmdConfig*.cmake (find_package(llmd))
#   PREFIX/share/llmd/valgrind.supp       (valgrind --suppressions=...)
# Usage: bindings/c/install.sh PREFIX [--profile release|dev]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

prefix=${1:?usage: install.sh PREFIX [--profile release|dev]}
profile=release
if [ "${2:-}" = "--profile" ]; then profile=${3:?missing profile}; fi
case "$profile" in
  release) outdir=release ;;
  dev) outdir=debug ;;
  *) echo "unknown profile: $profile" >&2; exit 2 ;;
esac

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n1)
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
# System libraries the Rust standard library needs when linking statically
# (what `rustc --print native-static-libs` reports on Linux).
native_libs="-lgcc_s -lutil -lrt -lpthread -lm -ldl -lc"
native_libs_cmake="gcc_s;util;rt;pthread;m;dl;c"

(cd "$root" && cargo build -p llmd-c --profile "$profile" --lib)
target_dir=${CARGO_TARGET_DIR:-$root/target}
build="$target_dir/$outdir"

mkdir -p "$prefix/include" "$prefix/lib/pkgconfig" "$prefix/lib/cmake/llmd" "$prefix/share/llmd"
prefix=$(cd "$prefix" && pwd)
install -m 0644 "$here/include/llmd.h" "$here/include/llmd.hpp" "$prefix/include/"
install -m 0644 "$build/libllmd.a" "$prefix/lib/libllmd.a"
install -m 0644 "$here/valgrind.supp" "$prefix/share/llmd/valgrind.supp"
install -m 0755 "$build/libllmd.so" "$prefix/lib/libllmd.so.$version"
ln -sf "libllmd.so.$version" "$prefix/lib/libllmd.so.$major"
ln -sf "libllmd.so.$major" "$prefix/lib/libllmd.so"

subst() {
  sed -e "s|@VERSION@|$version|g" -e "s|@MAJOR@|$major|g" -e "s|@MINOR@|$minor|g" \
      -e "s|@NATIVE_LIBS@|$native_libs|g" -e "s|@NATIVE_LIBS_CMAKE@|$native_libs_cmake|g" \
      "$1" > "$2"
}
subst "$here/pkg/llmd.pc.in" "$prefix/lib/pkgconfig/llmd.pc"
subst "$here/pkg/llmdConfig.cmake.in" "$prefix/lib/cmake/llmd/llmdConfig.cmake"
subst "$here/pkg/llmdConfigVersion.cmake.in" "$prefix/lib/cmake/llmd/llmdConfigVersion.cmake"
echo "installed llmd $version into $prefix"
