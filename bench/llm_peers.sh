#!/usr/bin/env bash
# LLM prefill and decode, kiln against llama.cpp and PyTorch eager on the
# same weights, interleaved in one run: each round measures the read
# bandwidth, then kiln bench, llama-bench (on the GGUF of the same weights,
# same dtype) and PyTorch, each ppN/tgN the same way (forward steps only, one
# warm-up, R timed runs). Prints every round's JSON lines, then a summary of
# medians over the rounds with decode as a fraction of the bandwidth bound.
#
# Usage: bench/llm_peers.sh MODEL_DIR GGUF LLAMA_BENCH [DTYPE] [ROUNDS] [P] [N] [THREADS]
#   MODEL_DIR   a checkpoint from bench/make_llama_checkpoint.py, or a GGUF file (a quantized
#               one from kiln quantize or llama-quantize: pass it as GGUF too, SKIP_TORCH=1, DTYPE f32)
#   GGUF        the same weights from bench/peers/hf_to_gguf.py
#   LLAMA_BENCH the llama-bench binary built from llama.cpp's source; "-" skips it
#   DTYPE       bf16, f32 or f16 (default bf16); P, N: llama-bench style lists (128,512 and 128)
# Set SKIP_TORCH=1 to leave PyTorch out (e.g. for the 7B shape).
set -euo pipefail
cd "$(dirname "$0")/.."
model="$1" gguf="$2" llama_bench="$3"
dtype="${4:-bf16}" rounds="${5:-3}" prompts="${6:-128,512}" gens="${7:-128}" threads="${8:-$(nproc)}"
out=$(mktemp)
lscpu | grep 'Model name' | sed 's/  */ /g' >&2
date -u '+%F %H:%M UTC' >&2
for round in $(seq "$rounds"); do
  echo "== round $round" >&2
  build/release/bench/kiln_bench_cpu bandwidth --json | sed 's/^/{"round":'"$round"',"peer":"bandwidth","r":/; s/$/}/' >>"$out"
  build/release/kiln bench -m "$model" -p "$prompts" -n "$gens" -t "$threads" -r 3 --dtype "$dtype" --json -q |
    command -p python3 -c 'import json,sys; [print(json.dumps({"round":'"$round"',"peer":"kiln","r":t})) for t in json.load(sys.stdin)]' >>"$out"
  if [ "$llama_bench" != "-" ]; then
    "$llama_bench" -m "$gguf" -p "$prompts" -n "$gens" -t "$threads" -r 3 -o jsonl 2>/dev/null |
      sed 's/^/{"round":'"$round"',"peer":"llama.cpp","r":/; s/$/}/' >>"$out"
  fi
  if [ "${SKIP_TORCH:-0}" != 1 ]; then
    command -p python3 bench/peers/torch_llm_bench.py "$model" -p "$prompts" -n "$gens" -t "$threads" -r 3 \
      --dtype "$dtype" | sed 's/^/{"round":'"$round"',"peer":"pytorch","r":/; s/$/}/' >>"$out"
  fi
done
cat "$out"
command -p python3 - "$out" "$model" <<'EOF'
import json, os, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
model = sys.argv[2]  # a checkpoint directory, or a GGUF file both sides read
weights = os.path.getsize(model) if os.path.isfile(model) else os.path.getsize(os.path.join(model, "model.safetensors"))
bandwidth = statistics.median(r["r"]["read_bandwidth_gbs"] for r in rows if r["peer"] == "bandwidth")
bound = bandwidth * 1e9 / weights
print(f"\nread bandwidth median {bandwidth:.1f} GB/s; {weights / 1e9:.2f} GB of weights: decode bound {bound:.1f} tokens/s")
tests = sorted({r["r"]["test"] if "test" in r["r"] else None for r in rows if r["peer"] == "kiln"})
def test_name(r):
    t = r["r"]
    if "test" in t:
        return t["test"]
    return f"pp{t['n_prompt']}" if t["n_prompt"] > 0 else f"tg{t['n_gen']}"
print("| test | " + " | ".join(p for p in ["kiln", "llama.cpp", "pytorch"]) + " | kiln/llama.cpp | kiln/pytorch | kiln/bound |")
print("|---|---|---|---|---|---|---|")
for test in tests:
    medians = {}
    for peer in ["kiln", "llama.cpp", "pytorch"]:
        values = [r["r"]["avg_ts"] for r in rows if r["peer"] == peer and test_name(r) == test]
        medians[peer] = statistics.median(values) if values else None
    fmt = lambda v: f"{v:.2f}" if v else "-"
    ratio = lambda a, b: f"{a / b:.2f}x" if a and b else "-"
    of_bound = f"{medians['kiln'] / bound:.0%}" if test.startswith("tg") else ""
    print(f"| {test} | {fmt(medians['kiln'])} | {fmt(medians['llama.cpp'])} | {fmt(medians['pytorch'])} | "
          f"{ratio(medians['kiln'], medians['llama.cpp'])} | {ratio(medians['kiln'], medians['pytorch'])} | {of_bound} |")
EOF
rm -f "$out"
