"""Loads a Hugging Face LLaMA-layout directory (config.json + model.safetensors)
into tools/python/torch_llama.py's LlamaForCausalLM, reading the weights with
tests/fixtures/st_writer.py (no safetensors or transformers packages)."""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fixtures"))
import st_writer  # noqa: E402
import torch_llama  # noqa: E402


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    cfg = torch_llama.Config(**config)
    model = torch_llama.LlamaForCausalLM(cfg)
    _, tensors = st_writer.load_numpy(os.path.join(model_dir, "model.safetensors"))
    state = {name: torch.from_numpy(array.copy()) for name, array in tensors.items()}
    model.load_state_dict(state)
    model.eval()
    return model
