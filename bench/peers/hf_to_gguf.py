#!/usr/bin/env python3
"""Converts a Hugging Face LLaMA-layout directory (config.json,
model.safetensors, tokenizer.model) to a GGUF file that llama.cpp runs, at the
checkpoint's own dtype (f32, f16 or bf16; 1-D norm weights in f32 as
llama.cpp's converter keeps them), so llama-bench reads the same weights as
kiln. Written from the GGUF layout and the llama.* key names; it uses gguf-py
(the gguf-py folder of the llama.cpp source) only to write the file.

    command -p python3 bench/peers/hf_to_gguf.py LLAMA_CPP_DIR MODEL_DIR OUT.gguf

Needs python3-numpy and python3-sentencepiece. The weights are read through a
memory map, so memory stays small.
"""

import json
import os
import struct
import sys

import numpy as np

if len(sys.argv) != 4:
    sys.exit(__doc__)
llama_cpp, model_dir, out_path = sys.argv[1:]
sys.path.insert(0, os.path.join(llama_cpp, "gguf-py"))
import gguf  # noqa: E402
import sentencepiece as spm  # noqa: E402

ST_TYPES = {"F32": (np.float32, gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
            "F16": (np.float16, gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
            "BF16": (np.uint16, gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16)}


def read_safetensors(path):
    """name -> (safetensors dtype, numpy view into the mapped file)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = data[begin:end].view(ST_TYPES[info["dtype"]][0]).reshape(info["shape"])
        out[name] = (info["dtype"], array)
    return out


def to_f32(st_dtype, array):
    if st_dtype == "BF16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32)


def rope_rows_for_gguf(w, heads):
    """HF stores each head's rows as two halves (rotate-half RoPE); GGUF's
    llama layout interleaves them in pairs: row order (h, 2, hd/2) -> (h, hd/2, 2)."""
    rows, cols = w.shape
    return w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def main():
    with open(os.path.join(model_dir, "config.json")) as f:
        c = json.load(f)
    tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    st_dtype = tensors["model.embed_tokens.weight"][0]
    _, ggml_type, file_type = ST_TYPES[st_dtype]
    heads, kv_heads = c["num_attention_heads"], c.get("num_key_value_heads", c["num_attention_heads"])

    w = gguf.GGUFWriter(out_path, "llama")
    w.add_name(os.path.basename(os.path.normpath(model_dir)))
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_block_count(c["num_hidden_layers"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(kv_heads)
    w.add_rope_dimension_count(c["hidden_size"] // heads)
    w.add_rope_freq_base(c.get("rope_theta", 10000.0))
    w.add_layer_norm_rms_eps(c["rms_norm_eps"])
    w.add_vocab_size(c["vocab_size"])
    w.add_file_type(file_type)

    sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i).encode("utf-8"))
        scores.append(sp.get_score(i))
        types.append(gguf.TokenType.UNKNOWN if sp.is_unknown(i) else gguf.TokenType.CONTROL if sp.is_control(i)
                     else gguf.TokenType.BYTE if sp.is_byte(i) else gguf.TokenType.UNUSED if sp.is_unused(i)
                     else gguf.TokenType.NORMAL)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(c.get("bos_token_id", sp.bos_id()))
    w.add_eos_token_id(c.get("eos_token_id", sp.eos_id()))
    w.add_unk_token_id(sp.unk_id())
    w.add_add_bos_token(True)

    def add(name, hf_name, heads_for_rope=None):
        dtype, array = tensors[hf_name]
        if array.ndim == 1:
            w.add_tensor(name, to_f32(dtype, array))
            return
        if heads_for_rope is not None:
            array = rope_rows_for_gguf(np.asarray(array), heads_for_rope)
        w.add_tensor(name, array, raw_dtype=ggml_type)

    add("token_embd.weight", "model.embed_tokens.weight")
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        add(f"blk.{i}.attn_norm.weight", p + "input_layernorm.weight")
        add(f"blk.{i}.attn_q.weight", p + "self_attn.q_proj.weight", heads)
        add(f"blk.{i}.attn_k.weight", p + "self_attn.k_proj.weight", kv_heads)
        add(f"blk.{i}.attn_v.weight", p + "self_attn.v_proj.weight")
        add(f"blk.{i}.attn_output.weight", p + "self_attn.o_proj.weight")
        add(f"blk.{i}.ffn_norm.weight", p + "post_attention_layernorm.weight")
        add(f"blk.{i}.ffn_gate.weight", p + "mlp.gate_proj.weight")
        add(f"blk.{i}.ffn_up.weight", p + "mlp.up_proj.weight")
        add(f"blk.{i}.ffn_down.weight", p + "mlp.down_proj.weight")
    add("output_norm.weight", "model.norm.weight")
    if "lm_head.weight" in tensors:
        add("output.weight", "lm_head.weight")

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file(progress=False)
    w.close()
    print(out_path)


main()
