#!/usr/bin/env bash
# Installs the kiln build in BUILD_DIR into a temporary prefix, then builds
# tests/install/consumer against it twice, outside the build tree: with
# CMake's find_package(kiln), and with pkg-config. Each consumer must run and
# print "consumer ok".
#   install_test.sh BUILD_DIR SOURCE_DIR CXX
set -euo pipefail
build_dir=$1 source_dir=$2 cxx=$3
work=$(mktemp -d "${TMPDIR:-/tmp}/kiln-install-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
tokenizer=$source_dir/models/kjv-llama/tokenizer.model

cmake --install "$build_dir" --prefix "$prefix" >"$work/install.log"
for path in bin/kiln include/kiln/kiln.h include/kiln/version.h lib/libkiln.a lib/libkiln_models.a \
  lib/cmake/kiln/kilnConfig.cmake lib/pkgconfig/kiln.pc; do
  [[ -e $prefix/$path ]] || { echo "install_test: $path was not installed" >&2; exit 1; }
done
"$prefix/bin/kiln" --version

echo "== find_package(kiln)"
cmake -S "$source_dir/tests/install/consumer" -B "$work/cmake-build" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >"$work/configure.log" ||
  { cat "$work/configure.log"; exit 1; }
cmake --build "$work/cmake-build"
"$work/cmake-build/consumer" "$tokenizer"

echo "== pkg-config kiln"
flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs kiln)
echo "pkg-config: $flags"
# shellcheck disable=SC2086  # the flags are words
"$cxx" -O1 "$source_dir/tests/install/consumer/main.cpp" -o "$work/consumer-pc" $flags
"$work/consumer-pc" "$tokenizer"
