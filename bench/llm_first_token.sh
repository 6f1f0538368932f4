#!/usr/bin/env bash
# Time to first token of `kiln generate` for a 128-token prompt, load and
# compile included, with a cold kernel cache (an empty KILN_CACHE_DIR: every
# kernel compiled by the C++ compiler) and then a warm one (loaded from
# disk), and the peak resident memory of a whole generation. Wall times come
# from /usr/bin/time, so they include process start and reading the weights.
#
# Usage: bench/llm_first_token.sh MODEL_DIR [DTYPE] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1" dtype="${2:-bf16}" tokens="${3:-128}"
# 128 tokens with the shipped vocabulary (BOS included).
prompt="In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God said, Let there be light: and there was light. And God saw the light, that it was good: and God divided the light from the darkness. And God called the light Day, and the darkness he called Night. And the evening and the morning were the first day. And God said, Let there be a firm"
cache=$(mktemp -d)
trap 'rm -rf "$cache"' EXIT
lscpu | grep 'Model name' | sed 's/  */ /g'
date -u '+%F %H:%M UTC'
run() {  # label, then kiln generate arguments
  local label="$1"
  shift
  /usr/bin/time -f "%e %M" -o "$cache/time" build/release/kiln generate -m "$model" -p "$prompt" --temp 0 \
    --dtype "$dtype" --json -q "$@" >"$cache/out.json"
  read -r seconds kib <"$cache/time"
  local count
  count=$(command -p python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["prompt_tokens"]))' "$cache/out.json")
  echo "$label: $count-token prompt, wall $seconds s, peak RSS $((kib / 1024)) MiB"
}
KILN_CACHE_DIR="$cache/kernels" run "first token, cold kernel cache" -n 1
KILN_CACHE_DIR="$cache/kernels" run "first token, warm kernel cache" -n 1
KILN_CACHE_DIR="$cache/kernels" run "$tokens tokens, warm kernel cache" -n "$tokens"
weights=$(du -b "$model"/*.safetensors | awk '{s += $1} END {print s}')
echo "weights on disk: $((weights / 1048576)) MiB"
