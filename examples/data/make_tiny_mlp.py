"""Writes examples/data/tiny_mlp.safetensors: the weights of a small
RMSNorm + SwiGLU MLP block (f32) used by examples/mlp.cpp and by
`kiln inspect examples/data/tiny_mlp.safetensors`.

Run from the repo root with Debian's python3: command -p python3 examples/data/make_tiny_mlp.py
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "fixtures"))
import st_writer  # noqa: E402

rng = np.random.default_rng(7)
d, hidden = 64, 128


tensors = {
    "mlp.up.weight": rng.normal(0, d ** -0.5, (hidden, d)).astype(np.float32),
    "mlp.gate.weight": rng.normal(0, d ** -0.5, (hidden, d)).astype(np.float32),
    "mlp.down.weight": rng.normal(0, hidden ** -0.5, (d, hidden)).astype(np.float32),
    "mlp.down.bias": rng.normal(0, 0.02, (d,)).astype(np.float32),
    "norm.weight": rng.uniform(0.5, 1.5, (d,)).astype(np.float32),
}
out = os.path.join(os.path.dirname(__file__), "tiny_mlp.safetensors")
st_writer.save(out, tensors, metadata={"format": "pt", "description": "kiln example: RMSNorm + SwiGLU MLP"})
print("wrote", out)
