#pragma once
// LLaMA checkpoints as GGUF files, both ways.
//
// Reading: a GGUF store (io::open of a .gguf) seen in the Hugging Face
// layout llama::CausalLM loads: the llama.* metadata as config.json keys,
// token_embd / blk.N.attn_q / ... as model.embed_tokens / model.layers.N.
// self_attn.q_proj / ..., zero copy. GGUF keeps each head's query and key
// rows in the interleaved order of Meta's RoPE (convert_hf_to_gguf permutes
// them), so the view asks for interleaved RoPE ("kiln.rope_interleaved")
// instead of permuting the rows back. A missing output.weight means tied
// embeddings.
//
// Writing: `kiln quantize` turns a Hugging Face directory (or a GGUF) into
// a GGUF that llama.cpp reads: llama.* keys, tokenizer.ggml.* from the
// SentencePiece model, Q/K rows permuted to GGUF's order, the 2-D weights
// in the chosen type (q4_k_m mixes q4_k and q6_k as llama-quantize does).
#include <filesystem>
#include <functional>
#include <string>

#include "kiln/io/buffer_store.h"
#include "kiln/models/tokenizer.h"

namespace kiln::models::llama {

// True when `store` came from a GGUF file (it has general.architecture).
bool is_gguf(const io::BufferStore& store);

// The Hugging Face view of a GGUF LLaMA store; an error naming the file for
// another architecture, a missing key or an unknown tensor.
io::BufferStore from_gguf(const io::BufferStore& gguf, const std::string& file);

// A LLaMA model opened from any of the forms kiln reads, in the Hugging
// Face layout (weights mapped, zero copy).
struct OpenedModel {
  io::BufferStore store;
  Tokenizer tokenizer;
  bool interleaved_rope = false;  // Q/K rows in Meta's pair order (GGUF, llama2.c)
};
// `path`: a Hugging Face directory (config.json, *.safetensors,
// tokenizer.model), a GGUF file (tokenizer.ggml.* metadata) or a llama2.c
// checkpoint (.bin, tokenizer.bin beside it).
OpenedModel open_model(const std::filesystem::path& path);
// The SentencePiece vocabulary in GGUF metadata (tokenizer.ggml.model "llama").
Vocabulary vocabulary_from_gguf(const io::Metadata& metadata, const std::string& file);

// The target types of `kiln quantize`.
enum class QuantizeType { f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k };
// Parses "q4_k_m" etc.; an error listing the choices otherwise.
QuantizeType quantize_type_from_name(const std::string& name);

struct QuantizeOptions {
  QuantizeType type = QuantizeType::q8_0;
  // Called after each tensor with (done, total, tensor name).
  std::function<void(size_t, size_t, const std::string&)> progress;
};

// Writes `out` (GGUF v3, atomically) from the model at `in`: a Hugging Face
// directory (config.json, *.safetensors, tokenizer.model) or a GGUF file.
void quantize(const std::filesystem::path& in, const std::filesystem::path& out, const QuantizeOptions& options);

}  // namespace kiln::models::llama
