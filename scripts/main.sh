#!/usr/bin/env bash
# The main job: set up, build, and inspect the example weights shipped in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh release
build/release/kiln inspect examples/data/tiny_mlp.safetensors
