"""Writes examples/data/tiny_mlp.safetensors: the weights of a small SwiGLU MLP
(up/gate/down projections, bf16 and f32) used by the README's main job,
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


def bf16_bits(x):
    """Round-to-nearest-even f32 -> bf16, returned as raw uint16 storage."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


tensors = {
    "mlp.up.weight": ("BF16", bf16_bits(rng.normal(0, d ** -0.5, (hidden, d)))),
    "mlp.gate.weight": ("BF16", bf16_bits(rng.normal(0, d ** -0.5, (hidden, d)))),
    "mlp.down.weight": ("BF16", bf16_bits(rng.normal(0, hidden ** -0.5, (d, hidden)))),
    "mlp.down.bias": rng.normal(0, 0.02, (d,)).astype(np.float32),
    "norm.weight": np.ones((d,), dtype=np.float32),
}
out = os.path.join(os.path.dirname(__file__), "tiny_mlp.safetensors")
st_writer.save(out, tensors, metadata={"format": "pt", "description": "kiln example: a tiny SwiGLU MLP"})
print("wrote", out)
