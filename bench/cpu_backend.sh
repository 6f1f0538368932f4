#!/usr/bin/env bash
# Usage: bench/cpu_backend.sh [--rounds N] [--reps R] [--build DIR] [--no-build] [--out DIR]
#   Threads: $OMP_NUM_THREADS if set, else every core; kiln, oneDNN and PyTorch get the same.
#   --rounds N   kiln/PyTorch decoder-layer rounds per dtype, interleaved (default 5)
#   --reps R     timed layer calls per round, each side (default 10)
#   --build DIR  where kiln_bench_cpu is built (default build/bench; configured and built with -j1 if needed)
#   --no-build   use DIR's kiln_bench_cpu as it is
#   --out DIR    keep every run's JSON there (default: a temporary folder, removed at the end)
#
# kiln's optimizing CPU backend (Platform::cpu()) against its peers, in one run on one machine:
#   a. matmuls vs oneDNN called directly, b. RMSNorm / softmax vs the memory bandwidth (both through
#   kiln_bench_cpu, interleaved rep by rep) and vs PyTorch eager, c. one TinyLlama decoder layer
#   (128-token prefill) vs PyTorch eager (bench/peers/torch_layer.py), kiln and PyTorch runs
#   alternating round by round, d. compile() of the TinyLlama decode step, cold (a fresh empty
#   KILN_CACHE_DIR) and warm (a second process on the same folder).
# Every run also says how many cores other processes kept busy meanwhile ("others"): on a 2-core
# machine a build running alongside slows every side, kiln's small OpenMP regions most.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=5 reps=10 build=build/bench do_build=1 out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rounds) rounds="$2"; shift 2 ;;
    --reps) reps="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu_backend.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

cores="$(getconf _NPROCESSORS_ONLN)"
threads="${OMP_NUM_THREADS:-$cores}"
export OMP_NUM_THREADS="$threads"
# Debian's python3 (python3-torch), found on the default PATH as `command -p python3` would.
python=("$(command -p -v python3)")
bench="$build/bench/kiln_bench_cpu"

if [[ "$do_build" == 1 ]]; then
  if [[ ! -f "$build/build.ninja" ]]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_TESTS=OFF >/dev/null
  fi
  cmake --build "$build" --target kiln_bench_cpu -j1 | tail -1
fi
[[ -x "$bench" ]] || { echo "cpu_backend.sh: $bench is missing (build it, or drop --no-build)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/kiln-cpu-bench-XXXXXX")"
cache="$work/kernel-cache"
cleanup() { if [[ -z "$out" ]]; then rm -rf "$work"; else rm -rf "$cache"; fi; }
trap cleanup EXIT
if [[ -n "$out" ]]; then mkdir -p "$out"; results="$out"; else results="$work"; fi
: >"$results/runs.jsonl"

# run.py LABEL CMD...: runs CMD, takes the JSON object on its last stdout line and appends it to
# runs.jsonl with the label, the wall time and how many cores other processes used meanwhile
# (/proc/stat's busy time less the command's own, children included).
cat >"$work/run.py" <<'PY'
import json, os, resource, subprocess, sys, time

def machine():
    with open("/proc/stat") as f:
        v = [float(x) for x in f.readline().split()[1:9]]
    return v[0] + v[1] + v[2] + v[5] + v[6], v[7]  # busy (user nice system irq softirq), steal

label, cmd, out = sys.argv[1], sys.argv[3:], sys.argv[2]
tick = os.sysconf("SC_CLK_TCK")
busy0, steal0 = machine()
own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
wall = time.monotonic() - t0
busy1, steal1 = machine()
own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
if done.returncode != 0:
    sys.exit(f"cpu_backend.sh: {label}: {' '.join(cmd)} failed with status {done.returncode}:\n{done.stdout}")
own = (own1.ru_utime - own0.ru_utime) + (own1.ru_stime - own0.ru_stime)
result = json.loads(done.stdout.strip().splitlines()[-1])
result.update(label=label, run_wall_s=wall, run_others_cores=max(0.0, ((busy1 - busy0) / tick - own) / wall))
with open(out, "a") as f:
    f.write(json.dumps(result) + "\n")
PY
run() { "${python[@]}" "$work/run.py" "$1" "$results/runs.jsonl" "${@:2}"; }

echo "== kiln CPU backend vs peers, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
lscpu | grep 'Model name' || true
echo "ISA: $(grep -o -w -E 'avx512f|avx512_bf16|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "threads: $threads (OMP_NUM_THREADS; PyTorch --threads $threads), cores: $cores, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "torch: $("${python[@]}" -c 'import torch; print(torch.__version__)' 2>/dev/null || echo 'not importable')"

echo "-- a/b. matmuls vs oneDNN direct, RMSNorm/softmax vs bandwidth (kiln_bench_cpu, interleaved)" >&2
run matmul "$bench" matmul --json
run norm "$bench" norm --json
for op in rmsnorm softmax; do run "torch_$op" "${python[@]}" bench/peers/torch_layer.py --op "$op" --threads "$threads" --json; done

for dtype in f32 bf16; do
  for ((r = 1; r <= rounds; r++)); do
    echo "-- c. decoder layer $dtype, round $r/$rounds: kiln, then PyTorch" >&2
    run "kiln_layer_$dtype" "$bench" layer --dtype "$dtype" --reps "$reps" --json
    run "torch_layer_$dtype" "${python[@]}" bench/peers/torch_layer.py --dtype "$dtype" --threads "$threads" \
      --reps "$reps" --json
  done
done

echo "-- d. compile() of the TinyLlama decode step: cold, then warm, KILN_CACHE_DIR=$cache" >&2
mkdir -p "$cache"
KILN_CACHE_DIR="$cache" run compile_cold "$bench" compile-time --json
KILN_CACHE_DIR="$cache" run compile_warm "$bench" compile-time --json

"${python[@]}" - "$results/runs.jsonl" <<'PY'
import json, statistics, sys

runs = [json.loads(line) for line in open(sys.argv[1])]
def pick(label): return [r for r in runs if r["label"] == label]
def med(values): return statistics.median(values)
def others(rs): return max(r["run_others_cores"] for r in rs)

(mm,), (nm,) = pick("matmul"), pick("norm")
print("\n== a. matmul, kiln (w a prepared weight) vs oneDNN direct, medians of interleaved reps")
print(f"{'M x N x K':<20} {'dtype':<5} {'w':<6} {'kiln ms':>9} {'oneDNN ms':>10} {'kiln GF/s':>10} {'oneDNN GF/s':>12} "
      f"{'kiln/oneDNN':>12} {'others':>7}")
for r in mm["matmul"]:
    shape = f"{r['m']} x {r['n']} x {r['k']}"
    print(f"{shape:<20} {r['dtype']:<5} {r['weight_layout']:<6} {r['kiln']['median_ms']:>9.2f} "
          f"{r['onednn']['median_ms']:>10.2f} {r['kiln_gflops']:>10.1f} {r['onednn_gflops']:>12.1f} "
          f"{r['ratio_kiln_over_onednn']:>12.3f} {r['load']['others_cores']:>7.2f}")

n = nm["norm"]
print(f"\n== b. {{32,128,128}} f32: kiln vs memory bandwidth ({n['read_bandwidth_gbs']:.1f} GB/s read) and PyTorch eager")
print(f"{'op':<8} {'kiln ms':>9} {'bound ms':>9} {'kiln/bound':>11} {'torch ms':>9} {'torch/kiln':>11} {'others':>7}")
for r in n["ops"]:
    (t,) = pick("torch_" + r["op"])
    k = r["kiln"]["median_ms"]
    print(f"{r['op']:<8} {k:>9.4f} {r['bandwidth_bound_ms']:>9.4f} {r['ratio_kiln_over_bound']:>11.2f} "
          f"{t['median_ms']:>9.4f} {t['median_ms'] / k:>11.2f} {max(n['load']['others_cores'], t['run_others_cores']):>7.2f}")

print("\n== c. TinyLlama decoder layer, 128-token prefill, batch 1 (median of per-round medians)")
print(f"{'dtype':<5} {'rounds':>6} {'kiln ms':>9} {'torch ms':>9} {'speedup':>8} {'per-round speedups':<34} {'others (max)':>12}")
for dtype in ("f32", "bf16"):
    ks, ts = pick("kiln_layer_" + dtype), pick("torch_layer_" + dtype)
    ratios = [t["median_ms"] / k["median_ms"] for k, t in zip(ks, ts)]
    kiln, torch = med([k["median_ms"] for k in ks]), med([t["median_ms"] for t in ts])
    print(f"{dtype:<5} {len(ks):>6} {kiln:>9.2f} {torch:>9.2f} {torch / kiln:>8.2f} "
          f"{' '.join(f'{x:.2f}' for x in ratios):<34} {others(ks + ts):>12.2f}")
print("speedup = torch_ms / kiln_ms; kiln rounds: " +
      "; ".join(f"{d} " + " ".join(f"{k['median_ms']:.1f}" for k in pick('kiln_layer_' + d)) for d in ("f32", "bf16")) +
      " ms; torch rounds: " +
      "; ".join(f"{d} " + " ".join(f"{t['median_ms']:.1f}" for t in pick('torch_layer_' + d)) for d in ("f32", "bf16")) +
      " ms")

(cold,), (warm,) = pick("compile_cold"), pick("compile_warm")
print(f"\n== d. compile() of the TinyLlama decode step (22 layers, {cold['dtype']}), one process each")
print(f"cold {cold['compile_s']:.2f} s (others {cold['load']['others_cores']:.2f}), "
      f"warm {warm['compile_s']:.2f} s (others {warm['load']['others_cores']:.2f})")
PY
if [[ -n "$out" ]]; then echo "(every run's JSON: $results/runs.jsonl)"; fi
