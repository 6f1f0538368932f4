#pragma once
// The LLaMA family (Hugging Face LlamaForCausalLM layout): TinyLlama,
// Llama 2 and Llama 3 are one code path, configured from config.json
// (rope_theta, llama3 rope_scaling, grouped-query attention, tied
// embeddings). Weight names are Hugging Face's: model.embed_tokens.weight,
// model.layers.N.self_attn.q_proj.weight, ..., lm_head.weight.
//
// Tags: tokens {b, s}; hidden states {b, s, d}; heads {b, h, s, hd}; the KV
// cache {layer, b, h, t, hd} with t its capacity.
#include <optional>
#include <tuple>
#include <vector>

#include "kiln/nn/attention.h"
#include "kiln/nn/layers.h"
#include "kiln/nn/rope.h"

namespace kiln::models::llama {

// What a decoder layer needs from config.json.
struct LayerConfig {
  int64_t hidden_size = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  nn::RopeOptions rope;

  // Reads the Hugging Face keys; a missing required key is an error naming it.
  static LayerConfig from(const io::Metadata& config);
};

// The whole model's configuration.
struct Config {
  LayerConfig layer;
  int64_t vocab_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t max_positions = 0;
  bool tie_word_embeddings = false;
  int64_t bos_token_id = -1;
  std::vector<int64_t> eos_token_ids;

  static Config from(const io::Metadata& config);
};

struct Attention {
  nn::Linear q_proj, k_proj, v_proj, o_proj;
  LayerConfig config;

  void init(const io::BufferStore& store) { config = LayerConfig::from(store.metadata()); }
  // x {b, s, d} at absolute positions pos .. pos + s - 1 (`positions` {s});
  // writes this step's keys and values into `cache` and attends over its
  // first `window` positions (0: all of them; the caller keeps pos + s <=
  // window, so every position written so far is among them).
  std::pair<Tensor, nn::KvCache> forward(const Tensor& x, const Tensor& positions, const nn::KvCache& cache,
                                         const Tensor& pos, int64_t window = 0) const;
};
KILN_FIELDS(Attention, q_proj, k_proj, v_proj, o_proj)

struct DecoderLayer {
  nn::RmsNorm input_layernorm, post_attention_layernorm;
  Attention self_attn;
  nn::SwiGluMlp mlp;

  void init(const io::BufferStore& store);
  std::pair<Tensor, nn::KvCache> forward(const Tensor& x, const Tensor& positions, const nn::KvCache& cache,
                                         const Tensor& pos, int64_t window = 0) const;
};
KILN_FIELDS(DecoderLayer, input_layernorm, post_attention_layernorm, self_attn, mlp)

struct Model {
  nn::Embedding embed_tokens;
  std::vector<DecoderLayer> layers;
  nn::RmsNorm norm;
};
KILN_FIELDS(Model, embed_tokens, layers, norm)

struct CausalLM {
  Model model;
  std::optional<nn::Linear> lm_head;  // absent when tie_word_embeddings
  Config config;
  // Attention reads cache positions [0, attention_window) only (0: the whole
  // capacity): a step compiled for a window serves every call whose last
  // position is below it, so early tokens do not pay for the full context.
  int64_t attention_window = 0;

  // Reads config.json (from the store's metadata) and checks it against the
  // weights; a mismatch is an error naming the key and both values.
  void init(const io::BufferStore& store);

  // tokens {b, s} (integers) at positions pos .. pos + s - 1; cache_k and
  // cache_v {layer, b, h, t, hd}. Returns f32 logits {b, s, voc} and the
  // updated caches (donate the old ones to update them in place).
  std::tuple<Tensor, Tensor, Tensor> forward(Tensor tokens, Tensor cache_k, Tensor cache_v, Tensor pos) const;

  // The cache shape for `batch` sequences of up to `capacity` tokens.
  Shape cache_shape(int64_t batch, int64_t capacity, DType dtype) const;
};
KILN_FIELDS(CausalLM, model, lm_head)

// Checks the populated model's weight shapes against its config (called by
// CausalLM::init's users after populate); throws naming the weight.
void check_shapes(const CausalLM& lm);

}  // namespace kiln::models::llama
