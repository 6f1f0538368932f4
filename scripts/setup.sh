#!/usr/bin/env bash
# Installs the Debian packages kiln needs, only those missing (idempotent).
# Usage: scripts/setup.sh [--fuzz] [--bench]
#   --fuzz adds clang-16 and libFuzzer; --bench adds the peers the benchmarks
#   compare with (PyTorch with OpenBLAS, NumPy, SentencePiece for Python).
set -euo pipefail

packages=(g++ cmake ninja-build ccache libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev libboost1.81-dev
  libsentencepiece-dev libdnnl-dev pkgconf)
for option in "$@"; do
  case "$option" in
    --fuzz) packages+=(clang-16 libclang-rt-16-dev libomp-16-dev) ;;
    --bench) packages+=(python3-torch python3-numpy python3-sentencepiece libopenblas0-pthread) ;;
    *) echo "setup.sh: unknown option '$option' (--fuzz, --bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
