"""Trains the small LLaMA shipped in models/kjv-llama: a SentencePiece BPE
tokenizer and a LLaMA-architecture decoder (RMSNorm, RoPE, SwiGLU,
grouped-query attention, untied head) on the King James Bible from Debian's
bible-kjv package (public domain). Reproducible: fixed seeds, fixed step
count, 2 threads.

Run from the repo root (about 30 minutes on the 2-core development VM; the
libopenblas0-pthread package makes PyTorch 30x faster than Debian's default BLAS):
  apt-get install bible-kjv python3-torch python3-sentencepiece python3-numpy libopenblas0-pthread
  command -p python3 examples/llama/train.py [--steps N] [--out models/kjv-llama]

Writes config.json, model.safetensors (Hugging Face names, f32),
tokenizer.model and train_log.json (losses) to --out.
"""
import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import sentencepiece as spm
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fixtures"))
import st_writer  # noqa: E402
import torch_llama  # noqa: E402

VOCAB = 2048
CONFIG = dict(vocab_size=VOCAB, hidden_size=192, intermediate_size=512, num_hidden_layers=4, num_attention_heads=6,
              num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0, max_position_embeddings=512,
              tie_word_embeddings=False, bos_token_id=1, eos_token_id=2)
BLOCK = 256
BATCH = 16


def chapters():
    """The Bible as a list of chapters, each the chapter's verses joined by spaces."""
    text = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True, text=True).stdout
    out, current, key = [], [], None
    for line in text.splitlines():
        m = re.match(r"^(\S+?)(\d+):(\d+) (.*)$", line)
        if not m:
            continue
        chapter = (m.group(1), m.group(2))
        if chapter != key and current:
            out.append(" ".join(current))
            current = []
        key = chapter
        current.append(m.group(4).strip())
    if current:
        out.append(" ".join(current))
    return out


def train_tokenizer(texts, prefix):
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        for t in texts:
            f.write(t + "\n")
        corpus = f.name
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, vocab_size=VOCAB, model_type="bpe", character_coverage=1.0,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, byte_fallback=True, num_threads=2, input_sentence_size=0,
        shuffle_input_sentence=False, max_sentence_length=100000, minloglevel=2)
    os.unlink(corpus)


def encode(sp, texts):
    ids = []
    for t in texts:
        ids.append(1)
        ids.extend(sp.encode(t))
        ids.append(2)
    return torch.tensor(ids, dtype=torch.long)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--out", default=os.path.join("models", "kjv-llama"))
    args = parser.parse_args()
    torch.manual_seed(1611)
    random.seed(1611)
    torch.set_num_threads(2)
    os.makedirs(args.out, exist_ok=True)

    texts = chapters()
    val_texts = texts[::20]            # every 20th chapter is held out
    train_texts = [t for i, t in enumerate(texts) if i % 20 != 0]
    prefix = os.path.join(args.out, "tokenizer")
    train_tokenizer(train_texts, prefix)
    os.replace(prefix + ".model", os.path.join(args.out, "tokenizer.model"))
    os.unlink(prefix + ".vocab")
    sp = spm.SentencePieceProcessor(model_file=os.path.join(args.out, "tokenizer.model"))
    train_ids, val_ids = encode(sp, train_texts), encode(sp, val_texts)
    print("chapters: %d train / %d val; tokens: %d train / %d val" %
          (len(train_texts), len(val_texts), len(train_ids), len(val_ids)), flush=True)

    cfg = torch_llama.Config(**CONFIG)
    model = torch_llama.LlamaForCausalLM(cfg)
    for name, p in model.named_parameters():  # GPT-2 style init
        if p.dim() == 2:
            torch.nn.init.normal_(p, std=0.02)
    n_params = sum(p.numel() for p in model.parameters())
    print("parameters: %d" % n_params, flush=True)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = 100

    def lr_at(step):
        if step < warmup:
            return 3e-3 * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return 3e-4 + 0.5 * (3e-3 - 3e-4) * (1 + math.cos(math.pi * progress))

    def batch(ids, generator):
        starts = torch.randint(0, len(ids) - BLOCK - 1, (BATCH,), generator=generator)
        x = torch.stack([ids[s:s + BLOCK] for s in starts])
        y = torch.stack([ids[s + 1:s + BLOCK + 1] for s in starts])
        return x, y

    def loss_of(x, y):
        logits, _ = model(x)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))

    @torch.no_grad()
    def validate():
        model.eval()
        losses = []
        for s in range(0, len(val_ids) - BLOCK - 1, BLOCK):
            x = val_ids[s:s + BLOCK][None]
            y = val_ids[s + 1:s + BLOCK + 1][None]
            losses.append(float(loss_of(x, y)))
        model.train()
        return sum(losses) / len(losses)

    generator = torch.Generator().manual_seed(7)
    log = {"config": CONFIG, "parameters": n_params, "steps": args.steps, "block": BLOCK, "batch": BATCH,
           "train": [], "val": []}
    start = time.time()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        x, y = batch(train_ids, generator)
        loss = loss_of(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0 or step == args.steps - 1:
            elapsed = time.time() - start
            log["train"].append([step, float(loss)])
            print("step %5d  loss %.3f  lr %.2e  %.0f s" % (step, float(loss), lr_at(step), elapsed), flush=True)
        if (step + 1) % 200 == 0 or step == args.steps - 1:
            v = validate()
            log["val"].append([step + 1, v])
            print("step %5d  validation loss %.3f (perplexity %.1f)" % (step + 1, v, math.exp(v)), flush=True)
    log["seconds"] = time.time() - start

    state = {k: v.numpy().astype(np.float32) for k, v in model.hf_state_dict().items()}
    st_writer.save(os.path.join(args.out, "model.safetensors"), state, metadata={"format": "pt"})
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(cfg.to_json(), f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "train_log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    print("saved to %s in %.0f s; final validation loss %.3f" % (args.out, log["seconds"], log["val"][-1][1]))


if __name__ == "__main__":
    main()
