#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite: the release build, then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer.
# Usage: scripts/test.sh [--no-sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

configs=(release asan)
[[ "${1:-}" == "--no-sanitize" ]] && configs=(release)
jobs=$(nproc)
for config in "${configs[@]}"; do
  echo "== $config =="
  scripts/build.sh "$config"
  ctest --test-dir "build/$config" --output-on-failure -j "$jobs"
done
