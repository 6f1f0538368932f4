#!/usr/bin/env python3
"""PyTorch eager on the reference LLaMA (tools/python/torch_llama.py), timed
the way `kiln bench` and llama-bench time a model: ppN is one forward of N
tokens on an empty cache, tgN is N one-token forwards at positions 0..N-1;
forward steps only (no sampling), one warm-up, then R timed runs.

    command -p python3 bench/peers/torch_llm_bench.py MODEL_DIR [-p 128,512] [-n 128] [-r 3] [-t 2] [--dtype f32|bf16|f16]

Prints one JSON object per test, with the fields of `kiln bench --json`.
"""

import argparse
import json
import os
import struct
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools", "python"))
import torch_llama  # noqa: E402


def load(model_dir, dtype):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    path = os.path.join(model_dir, "model.safetensors")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    state = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = np.array(data[begin:end])
        if info["dtype"] == "BF16":
            t = torch.from_numpy(raw.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(raw.view({"F32": np.float32, "F16": np.float16}[info["dtype"]]))
        state[name] = t.reshape(info["shape"]).to(dtype)
    # Build the module without its random initialisation (torch.empty memory
    # that is never touched before it is replaced), then take the weights.
    saved = torch.nn.Linear.reset_parameters, torch.nn.Embedding.reset_parameters
    torch.nn.Linear.reset_parameters = torch.nn.Embedding.reset_parameters = lambda self: None
    try:
        model = torch_llama.LlamaForCausalLM(torch_llama.Config(**config))
    finally:
        torch.nn.Linear.reset_parameters, torch.nn.Embedding.reset_parameters = saved
    for module_name, module in model.named_modules():
        for name, _ in list(module.named_parameters(recurse=False)):
            full = f"{module_name}.{name}" if module_name else name
            setattr(module, name, torch.nn.Parameter(state[full], requires_grad=False))
    model.eval()
    return model, config


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("-p", default="512")
    parser.add_argument("-n", default="128")
    parser.add_argument("-r", type=int, default=3)
    parser.add_argument("-t", type=int, default=os.cpu_count())
    parser.add_argument("--dtype", choices=["f32", "bf16", "f16"], default="f32")
    args = parser.parse_args()
    torch.set_num_threads(args.t)
    dtype = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}[args.dtype]
    model, config = load(args.model, dtype)
    vocab = config["vocab_size"]

    def ids(count):
        return torch.tensor([[(i * 7919 + 1) % vocab for i in range(count)]])

    def prefill(count):
        tokens = ids(count)
        start = time.perf_counter()
        model(tokens)
        return count / (time.perf_counter() - start)

    def decode(count):
        tokens = ids(count)
        past = None
        start = time.perf_counter()
        for i in range(count):
            _, past = model(tokens[:, i:i + 1], torch.tensor([i]), past)
        return count / (time.perf_counter() - start)

    tests = [("pp", int(p)) for p in args.p.split(",") if int(p) > 0] + \
            [("tg", int(n)) for n in args.n.split(",") if int(n) > 0]
    with torch.no_grad():
        for kind, count in tests:
            run = prefill if kind == "pp" else decode
            run(count)
            rates = [run(count) for _ in range(args.r)]
            print(json.dumps({"model": f"torch {args.dtype}", "backend": f"pytorch {torch.__version__}",
                              "n_threads": args.t, "test": f"{kind}{count}",
                              "n_prompt": count if kind == "pp" else 0, "n_gen": count if kind == "tg" else 0,
                              "avg_ts": float(np.mean(rates)), "stddev_ts": float(np.std(rates, ddof=1)) if len(rates) > 1 else 0.0,
                              "samples_ts": rates}), flush=True)


main()
