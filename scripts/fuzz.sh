#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-16 and runs one of them on a corpus
# seeded with the test fixtures (valid and malformed files).
# Usage: scripts/fuzz.sh [safetensors|json|gguf|llama2c|ir_parse|kiln_file] [seconds, default 600]
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-safetensors}"
seconds="${2:-600}"
scripts/setup.sh --fuzz

cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++-16 \
  -DKILN_FUZZ=ON -DKILN_TESTS=OFF -DKILN_SANITIZE=ON >/dev/null
cmake --build build/fuzz --target "${target}_fuzz"

corpus="build/fuzz/corpus-$target"
mkdir -p "$corpus"
dict=()
if [[ "$target" == gguf ]]; then
  find tests/fixtures/gguf tests/fixtures/gguf_fuzz -name '*.gguf' -exec cp {} "$corpus"/ \; 2>/dev/null || true
elif [[ "$target" == llama2c ]]; then
  # The fuzzer reads byte 0 (even: a checkpoint; odd: a tokenizer.bin) and byte 1 before the file.
  for f in tests/fixtures/llama2c/*.bin; do
    if [[ "$(basename "$f")" == tokenizer.bin ]]; then printf '\x01\xff' >"$corpus/tokenizer"; cat "$f" >>"$corpus/tokenizer"
    else printf '\x00\x00' >"$corpus/$(basename "$f")"; head -c 3000 "$f" >>"$corpus/$(basename "$f")"; fi
  done
elif [[ "$target" == ir_parse ]]; then
  dict=(-dict=fuzz/ir.dict)
  cp fuzz/ir_seed.ir "$corpus"/
elif [[ "$target" == kiln_file ]]; then
  dict=(-dict=fuzz/ir.dict)
  KILN_FUZZ_WRITE_SEED="$corpus/seed.kexe" "build/fuzz/fuzz/kiln_file_fuzz"
elif [[ "$target" == safetensors ]]; then
  dict=(-dict=fuzz/safetensors.dict)
  find tests/fixtures examples/data -name '*.safetensors' -exec cp {} "$corpus"/ \; 2>/dev/null || true
  # Files with the same name in different directories: keep one of each, libFuzzer minimizes anyway.
else
  dict=(-dict=fuzz/safetensors.dict)
  i=0
  while IFS= read -r f; do cp "$f" "$corpus/seed$((i++)).json"; done < <(find tests/fixtures -name '*.json')
fi
"build/fuzz/fuzz/${target}_fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  "${dict[@]}" -print_final_stats=1 "$corpus"
