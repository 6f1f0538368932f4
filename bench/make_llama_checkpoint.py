#!/usr/bin/env python3
"""Writes a LLaMA checkpoint with random weights at a real model's shapes, in
the Hugging Face layout (config.json, model.safetensors, tokenizer.model), for
benchmarks: speed does not depend on the values, and nothing is downloaded.

    command -p python3 bench/make_llama_checkpoint.py --shape tinyllama-1.1b --dtype bf16 [--out DIR]

Weights are N(0, 0.02), norms 1. The vocabulary is the shipped model's
(models/kjv-llama, 2048 pieces), so the output decodes to text. The files go
to DIR (default: $KILN_BENCH_MODELS, else ~/.cache/kiln-bench/<shape>-<dtype>),
outside the repository; an existing complete checkpoint is kept. Only the
standard library and numpy are used; tensors are generated and written one at
a time, so memory stays at about one tensor.
"""

import argparse
import json
import os
import shutil
import struct
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB = 2048

SHAPES = {
    # TinyLlama-1.1B: grouped-query attention with 4 kv heads.
    "tinyllama-1.1b": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                           num_attention_heads=32, num_key_value_heads=4, max_position_embeddings=2048),
    "llama2-7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=4096),
}
DTYPES = {"f32": ("F32", 4, "float32"), "bf16": ("BF16", 2, "bfloat16"), "f16": ("F16", 2, "float16")}


def tensor_shapes(c):
    d, f = c["hidden_size"], c["intermediate_size"]
    kv = d // c["num_attention_heads"] * c["num_key_value_heads"]
    shapes = [("model.embed_tokens.weight", (VOCAB, d))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes += [(p + "input_layernorm.weight", (d,)),
                   (p + "self_attn.q_proj.weight", (d, d)),
                   (p + "self_attn.k_proj.weight", (kv, d)),
                   (p + "self_attn.v_proj.weight", (kv, d)),
                   (p + "self_attn.o_proj.weight", (d, d)),
                   (p + "post_attention_layernorm.weight", (d,)),
                   (p + "mlp.gate_proj.weight", (f, d)),
                   (p + "mlp.up_proj.weight", (f, d)),
                   (p + "mlp.down_proj.weight", (d, f))]
    shapes += [("model.norm.weight", (d,)), ("lm_head.weight", (VOCAB, d))]
    return shapes


def encode(values, dtype):
    """float32 array -> bytes of the checkpoint dtype (bf16 rounded to nearest even)."""
    if dtype == "f32":
        return values.astype("<f4").tobytes()
    if dtype == "f16":
        return values.astype("<f2").tobytes()
    bits = values.astype("<f4").view("<u4")
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def write_safetensors(path, shapes, dtype, seed):
    st_dtype, size, _ = DTYPES[dtype]
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in shapes:
        nbytes = int(np.prod(shape)) * size
        header[name] = {"dtype": st_dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    rng = np.random.default_rng(seed)
    start, written, shown = time.time(), 0, 0.0
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)) + text)
        for name, shape in shapes:
            if name.endswith("norm.weight"):
                values = np.ones(shape, dtype=np.float32)
            else:
                values = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            out.write(encode(values, dtype))
            written += values.size * size
            if time.time() - shown >= 1 or written == offset:
                shown = time.time()
                print(f"\r  {written / 2**30:6.2f} / {offset / 2**30:.2f} GiB ({shown - start:4.0f} s)",
                      end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--dtype", choices=sorted(DTYPES), required=True)
    parser.add_argument("--out", help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    base = os.environ.get("KILN_BENCH_MODELS", os.path.expanduser("~/.cache/kiln-bench"))
    out = args.out or os.path.join(base, f"{args.shape}-{args.dtype}")
    if os.path.realpath(out).startswith(os.path.realpath(REPO) + os.sep):
        sys.exit(f"make_llama_checkpoint: {out} is inside the repository; generated models stay outside it")
    config = dict(SHAPES[args.shape], architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=VOCAB,
                  rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False,
                  bos_token_id=1, eos_token_id=2, hidden_act="silu", torch_dtype=DTYPES[args.dtype][2])
    done = os.path.join(out, ".complete")
    if os.path.exists(done):
        print(out)
        return
    os.makedirs(out, exist_ok=True)
    shapes = tensor_shapes(config)
    params = sum(int(np.prod(s)) for _, s in shapes)
    print(f"make_llama_checkpoint: {args.shape} {args.dtype}, {params / 1e9:.2f}B parameters -> {out}",
          file=sys.stderr)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(os.path.join(REPO, "models", "kjv-llama", "tokenizer.model"), out)
    write_safetensors(os.path.join(out, "model.safetensors.partial"), shapes, args.dtype, args.seed)
    os.replace(os.path.join(out, "model.safetensors.partial"), os.path.join(out, "model.safetensors"))
    open(done, "w").close()
    print(out)


if __name__ == "__main__":
    main()
