#!/usr/bin/env python3
"""PyTorch eager peer timings for kiln's LLaMA decoder layer, at TinyLlama shapes.

The layer does what kiln's models::llama::DecoderLayer does (src/kiln/models/llama.cpp, nn/layers.cpp,
nn/rope.cpp, nn/attention.cpp), op for op and in the same order:
  h   = x + o_proj(attention(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1)))   with n1 = rmsnorm(x)
  out = h + down_proj(silu(gate_proj(n2)) * up_proj(n2))                         with n2 = rmsnorm(h)
Differences, all small next to the projections (~99% of the FLOPs):
  - a prefill from position 0 without a KV cache: keys are the `tokens` new ones (kiln attends over its
    cache's capacity, masked);
  - key/value heads are repeated for the query groups (repeat_interleave, as HF's repeat_kv does) where
    kiln groups the query heads instead (the same pairing: query head i uses kv head i // (32 / 4));
  - in bf16, q.k^T comes out of the matmul in bf16 (as in HF) before the f32 mask and softmax; kiln's dot
    writes f32 scores directly.

Usage (Debian's python3, which has python3-torch):
  command -p python3 bench/peers/torch_layer.py --dtype f32 --threads 2
  command -p python3 bench/peers/torch_layer.py --dtype bf16 --threads 2 --reps 20 --tokens 128 --json
  command -p python3 bench/peers/torch_layer.py --op rmsnorm --threads 2   # also: --op softmax
Median and min are over --reps timed forwards (after 3 warm-ups; 10 for --op) on fixed inputs.
"""
import argparse
import json
import os
import statistics
import time

HIDDEN, INTERMEDIATE, HEADS, KV_HEADS, HEAD_DIM = 2048, 5632, 32, 4, 64
EPS, THETA = 1e-5, 10000.0

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
parser.add_argument("--threads", type=int, default=os.cpu_count())
parser.add_argument("--reps", type=int, default=None, help="timed runs (default 20 for the layer, 200 for --op)")
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--op", choices=["rmsnorm", "softmax"], help="time one op over a {32,128,128} tensor instead")
parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
parser.add_argument("--omp-wait", choices=["auto", "active", "passive"], default="auto",
                    help="OMP_WAIT_POLICY; auto: passive for the f32 layer, else libgomp's default (active)")
args = parser.parse_args()

# Debian's torch hands f32 matmuls to the system BLAS (OpenBLAS, with its own pthread pool that
# torch.set_num_threads does not reach), so its thread count must be fixed before torch loads it.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(args.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
# After each OpenMP region libgomp's threads spin for a while; with as many of them as cores, they starve
# OpenBLAS's threads, and the f32 layer measured 2-2.5x slower (and erratic) on 2 cores. Sleeping waits
# cure that but slow the small OpenMP-only kernels (rmsnorm 0.12 -> 0.4 ms), hence only for the f32 layer.
wait = args.omp_wait
if wait == "auto":
    wait = "passive" if args.dtype == "f32" and not args.op else None
if wait:
    os.environ.setdefault("OMP_WAIT_POLICY", wait)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DTYPE = {"f32": torch.float32, "bf16": torch.bfloat16}[args.dtype]


def rmsnorm(x, weight):
    # Statistics in f32 (as kiln and HF do for narrow floats), the weight applied in x's dtype.
    wide = x.float()
    normalised = wide * torch.rsqrt(wide.pow(2).mean(-1, keepdim=True) + EPS)
    return weight * normalised.to(x.dtype)


def rope(x, cos, sin):
    # Hugging Face "rotate_half" pairs (x[i], x[i + hd/2]), rotated in f32 and returned in x's dtype.
    wide = x.float()
    first, second = wide.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, second * cos + first * sin], dim=-1).to(x.dtype)


class DecoderLayer:
    def __init__(self, dtype):
        gen = torch.Generator().manual_seed(0)

        def weight(out_features, in_features):  # nn.Linear layout {out, in}, N(0, 0.02)
            return (torch.randn(out_features, in_features, generator=gen) * 0.02).to(dtype)

        self.q = weight(HEADS * HEAD_DIM, HIDDEN)
        self.k = weight(KV_HEADS * HEAD_DIM, HIDDEN)
        self.v = weight(KV_HEADS * HEAD_DIM, HIDDEN)
        self.o = weight(HIDDEN, HEADS * HEAD_DIM)
        self.gate = weight(INTERMEDIATE, HIDDEN)
        self.up = weight(INTERMEDIATE, HIDDEN)
        self.down = weight(HIDDEN, INTERMEDIATE)
        self.norm1 = torch.ones(HIDDEN, dtype=dtype)
        self.norm2 = torch.ones(HIDDEN, dtype=dtype)
        # Computed in double and stored as f32, as kiln's rope_frequencies does.
        exponents = torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM
        self.frequencies = (THETA ** -exponents).float()

    def attention(self, x, positions):
        b, s, _ = x.shape
        angles = positions.float()[:, None] * self.frequencies[None, :]  # {s, hd/2}
        cos, sin = angles.cos(), angles.sin()

        def heads(weight, count):  # {b, s, count*hd} -> {b, count, s, hd}
            return F.linear(x, weight).view(b, s, count, HEAD_DIM).transpose(1, 2)

        q = rope(heads(self.q, HEADS), cos, sin)
        k = rope(heads(self.k, KV_HEADS), cos, sin)
        v = heads(self.v, KV_HEADS)
        k = k.repeat_interleave(HEADS // KV_HEADS, dim=1)
        v = v.repeat_interleave(HEADS // KV_HEADS, dim=1)

        scores = torch.matmul(q, k.transpose(-1, -2)).float() * HEAD_DIM**-0.5  # {b, h, s, t}
        causal = positions[None, :] <= positions[:, None]  # key position <= query position
        scores = scores.masked_fill(~causal, float("-inf"))
        probabilities = torch.softmax(scores, dim=-1).to(x.dtype)
        out = torch.matmul(probabilities, v)  # {b, h, s, hd}
        return F.linear(out.transpose(1, 2).reshape(b, s, HEADS * HEAD_DIM), self.o)

    def __call__(self, x, positions):
        h = x + self.attention(rmsnorm(x, self.norm1), positions)
        n = rmsnorm(h, self.norm2)
        return h + F.linear(F.silu(F.linear(n, self.gate)) * F.linear(n, self.up), self.down)


def time_ms(fn, reps, warmup):
    for _ in range(warmup):
        fn()
    ms = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - start) * 1e3)
    return ms


def main():
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(1)
    with torch.inference_mode():
        if args.op:
            reps = args.reps or 200
            x = torch.randn(32, 128, 128, generator=gen).to(DTYPE)
            if args.op == "rmsnorm":
                weight = torch.ones(128, dtype=DTYPE)
                fn = lambda: rmsnorm(x, weight)  # noqa: E731
            else:
                fn = lambda: torch.softmax(x, dim=-1)  # noqa: E731
            what = {"op": args.op, "shape": [32, 128, 128]}
            ms = time_ms(fn, reps, warmup=10)
        else:
            reps = args.reps or 20
            layer = DecoderLayer(DTYPE)
            x = torch.randn(1, args.tokens, HIDDEN, generator=gen).to(DTYPE)
            positions = torch.arange(args.tokens, dtype=torch.int32)
            out = layer(x, positions)
            if not torch.isfinite(out).all():
                raise SystemExit("the layer produced non-finite values")
            what = {"op": "decoder_layer", "tokens": args.tokens, "batch": 1}
            ms = time_ms(lambda: layer(x, positions), reps, warmup=3)

    result = dict(what, dtype=args.dtype, threads=torch.get_num_threads(), reps=reps,
                  omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "default"),
                  openblas_threads=int(os.environ["OPENBLAS_NUM_THREADS"]),
                  median_ms=statistics.median(ms), min_ms=min(ms), torch=torch.__version__)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"torch {result['torch']} {result['op']} {args.dtype} threads={result['threads']} reps={reps} "
              f"OMP_WAIT_POLICY={result['omp_wait_policy']}: "
              f"median {result['median_ms']:.3f} ms, min {result['min_ms']:.3f} ms")


if __name__ == "__main__":
    main()
