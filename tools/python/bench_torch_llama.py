"""Times the PyTorch reference LLaMA (tools/python/torch_llama.py) the way
`kiln generate` is timed: load, prefill of the prompt, then greedy decoding
of N tokens one at a time with a KV cache. Prints one line in the same form.

  command -p python3 tools/python/bench_torch_llama.py MODEL_DIR PROMPT N THREADS
"""
import os
import sys
import time

import sentencepiece as spm
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load_llama  # noqa: E402

model_dir, prompt, n, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
start = time.time()
model = load_llama.load(model_dir)
sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
load_seconds = time.time() - start
ids = [sp.bos_id()] + sp.encode(prompt)
with torch.no_grad():
    start = time.time()
    logits, past = model(torch.tensor([ids]))
    token = int(logits[0, -1].argmax())
    prefill = time.time() - start
    start = time.time()
    for step in range(1, n):
        logits, past = model(torch.tensor([[token]]), torch.tensor([len(ids) + step - 1]), past)
        token = int(logits[0, -1].argmax())
    decode = time.time() - start
print("pytorch %s (%d threads): load %.2f s, prefill %d tokens at %.1f tokens/s, decode %d tokens at %.1f tokens/s"
      % (torch.__version__, threads, load_seconds, len(ids), len(ids) / prefill, n - 1, (n - 1) / decode))
