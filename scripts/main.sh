#!/usr/bin/env bash
# The main job: set up, build, and generate text with the small LLaMA shipped
# in models/kjv-llama (trained on the King James Bible by examples/llama/train.py).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
build/release/kiln generate -m models/kjv-llama -p "And God said" -n 64 "$@"
