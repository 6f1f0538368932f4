#!/usr/bin/env bash
# kiln generate and the PyTorch reference model on the same prompt, greedy,
# one after the other in one run, with the same number of threads (kiln's
# reference backend is single-threaded, so PyTorch gets 1 thread too).
# Usage: bench/llama_generate.sh [MODEL_DIR] [TOKENS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/kjv-llama}"
tokens="${2:-64}"
prompt="And God said"
echo "== kiln (build/release, Platform::cpu = reference interpreter, 1 thread)"
build/release/kiln generate -m "$model" -p "$prompt" -n "$tokens" --temp 0 -q | tail -1
build/release/kiln generate -m "$model" -p "$prompt" -n "$tokens" --temp 0 -q --dtype bf16 | tail -1 | sed 's/^/bf16: /'
echo "== PyTorch (Debian python3-torch, OpenBLAS if installed)"
command -p python3 tools/python/bench_torch_llama.py "$model" "$prompt" "$tokens" 1
