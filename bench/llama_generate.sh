#!/usr/bin/env bash
# kiln generate (the optimizing CPU backend) and the PyTorch reference model
# on the same prompt, greedy, interleaved in one run (kiln f32, kiln bf16,
# PyTorch f32, repeated), with the same number of threads.
# Usage: bench/llama_generate.sh [MODEL_DIR] [TOKENS] [THREADS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/kjv-llama}"
tokens="${2:-64}"
threads="${3:-$(nproc)}"
rounds="${4:-3}"
prompt="In the beginning God created the heaven and the earth. And the earth was without form, and void; and darkness was upon the face of the deep."
export OMP_NUM_THREADS="$threads"
lscpu | grep 'Model name' | sed 's/  */ /g'
date -u +%F
for round in $(seq "$rounds"); do
  echo "== round $round"
  echo -n "kiln f32:  " && build/release/kiln generate -m "$model" -p "$prompt" -n "$tokens" --temp 0 -q | tail -1
  echo -n "kiln bf16: " && build/release/kiln generate -m "$model" -p "$prompt" -n "$tokens" --temp 0 -q --dtype bf16 | tail -1
  echo -n "torch f32: " && command -p python3 tools/python/bench_torch_llama.py "$model" "$prompt" "$tokens" "$threads"
done
