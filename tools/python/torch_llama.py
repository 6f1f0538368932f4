"""A small, dependency-free PyTorch implementation of the Hugging Face LLaMA
architecture (LlamaForCausalLM): RMSNorm, rotary embeddings (half-split
"rotate_half" layout, default / linear / llama3 scaling), grouped-query
attention, SwiGLU MLP, tied or untied output head. Parameter names match the
Hugging Face checkpoints ("model.layers.0.self_attn.q_proj.weight", ...).

It is the independent reference kiln is tested against (tests/fixtures/make_nn_fixtures.py)
and the model trained by examples/llama/train.py. Runs on Debian's python3-torch (1.13).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


class Config:
    def __init__(self, **kw):
        self.vocab_size = kw.get("vocab_size", 32000)
        self.hidden_size = kw.get("hidden_size", 4096)
        self.intermediate_size = kw.get("intermediate_size", 11008)
        self.num_hidden_layers = kw.get("num_hidden_layers", 32)
        self.num_attention_heads = kw.get("num_attention_heads", 32)
        self.num_key_value_heads = kw.get("num_key_value_heads", self.num_attention_heads)
        self.rms_norm_eps = kw.get("rms_norm_eps", 1e-6)
        self.rope_theta = kw.get("rope_theta", 10000.0)
        self.rope_scaling = kw.get("rope_scaling", None)
        self.max_position_embeddings = kw.get("max_position_embeddings", 2048)
        self.tie_word_embeddings = kw.get("tie_word_embeddings", False)
        self.bos_token_id = kw.get("bos_token_id", 1)
        self.eos_token_id = kw.get("eos_token_id", 2)

    @property
    def head_dim(self):
        return self.hidden_size // self.num_attention_heads

    def to_json(self):
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": self.rope_scaling,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        }


def rope_inv_freq(head_dim, theta, scaling=None):
    """Rotation frequencies, float64, following transformers' rope init functions."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    if not scaling:
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv / scaling["factor"]
    if kind == "llama3":
        factor = scaling["factor"]
        low, high = scaling["low_freq_factor"], scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        low_wavelen, high_wavelen = old / low, old / high
        out = []
        for f in inv.tolist():
            wavelen = 2 * math.pi / f
            if wavelen < high_wavelen:
                out.append(f)
            elif wavelen > low_wavelen:
                out.append(f / factor)
            else:
                smooth = (old / wavelen - low) / (high - low)
                out.append((1 - smooth) * f / factor + smooth * f)
        return torch.tensor(out, dtype=torch.float64)
    raise ValueError("unsupported rope scaling %r" % (scaling,))


def rotate_half(x):
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope(x, positions, inv_freq):
    """x [b, h, s, hd]; half-split layout; cos/sin computed in float32 then cast like transformers."""
    freqs = positions.float()[:, None] * inv_freq.float()[None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos().to(x.dtype), emb.sin().to(x.dtype)
    return x * cos + rotate_half(x) * sin


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


class Attention(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.num_attention_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.num_key_value_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.num_attention_heads * hd, cfg.hidden_size, bias=False)
        # A plain attribute, not a buffer: module.to(bfloat16) must not round the frequencies.
        self.inv_freq = rope_inv_freq(hd, cfg.rope_theta, cfg.rope_scaling)

    def forward(self, x, positions, past=None):
        cfg = self.cfg
        b, s, _ = x.shape
        hd = cfg.head_dim
        q = self.q_proj(x).view(b, s, cfg.num_attention_heads, hd).transpose(1, 2)
        k = self.k_proj(x).view(b, s, cfg.num_key_value_heads, hd).transpose(1, 2)
        v = self.v_proj(x).view(b, s, cfg.num_key_value_heads, hd).transpose(1, 2)
        q = apply_rope(q, positions, self.inv_freq)
        k = apply_rope(k, positions, self.inv_freq)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        present = (k, v)
        groups = cfg.num_attention_heads // cfg.num_key_value_heads
        k = k.repeat_interleave(groups, dim=1)
        v = v.repeat_interleave(groups, dim=1)
        t = k.shape[2]
        scores = q @ k.transpose(2, 3) / math.sqrt(hd)
        # query i sits at absolute position positions[i]; it sees keys 0..positions[i]
        allowed = torch.arange(t)[None, :] <= positions[:, None]
        scores = scores.masked_fill(~allowed, float("-inf"))
        probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
        out = (probs @ v).transpose(1, 2).reshape(b, s, cfg.num_attention_heads * hd)
        return self.o_proj(out), present


class Mlp(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = Mlp(cfg)

    def forward(self, x, positions, past=None):
        h, present = self.self_attn(self.input_layernorm(x), positions, past)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


class LlamaModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers)])
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class LlamaForCausalLM(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        if not cfg.tie_word_embeddings:
            self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)

    def forward(self, tokens, positions=None, past=None):
        """tokens [b, s] -> logits [b, s, vocab], new past (list of (k, v) per layer)."""
        if positions is None:
            positions = torch.arange(tokens.shape[1])
        x = self.model.embed_tokens(tokens)
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, present = layer(x, positions, None if past is None else past[i])
            presents.append(present)
        x = self.model.norm(x)
        head = self.model.embed_tokens.weight if self.cfg.tie_word_embeddings else self.lm_head.weight
        return x @ head.t(), presents

    def hf_state_dict(self):
        """Parameters under Hugging Face names; a tied head is not stored twice."""
        return {k: v.detach().contiguous() for k, v in self.state_dict().items()}

    @torch.no_grad()
    def generate_greedy(self, prompt, n):
        """Greedy decoding with a KV cache; returns the n new token ids."""
        tokens = torch.tensor([prompt])
        logits, past = self.forward(tokens)
        out = []
        pos = len(prompt)
        for _ in range(n):
            nxt = int(logits[0, -1].argmax())
            out.append(nxt)
            logits, past = self.forward(torch.tensor([[nxt]]), torch.tensor([pos]), past)
            pos += 1
        return out
