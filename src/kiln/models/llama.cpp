#include "kiln/models/llama.h"

#include <fmt/format.h>

namespace kiln::models::llama {
namespace {

template <typename T>
T required(const io::Metadata& config, const char* key) {
  if (!config.contains(key)) fail("config.json: '{}' is missing (needed by the llama model)", key);
  return config.get<T>(key);
}

template <typename T>
T optional_key(const io::Metadata& config, const char* key, T fallback) {
  if (!config.contains(key) || std::holds_alternative<std::monostate>(config.at(key))) return fallback;
  return config.get<T>(key);
}

nn::RopeScaling rope_scaling(const io::Metadata& config) {
  nn::RopeScaling s;
  std::string kind = optional_key<std::string>(config, "rope_scaling.rope_type", "");
  if (kind.empty()) kind = optional_key<std::string>(config, "rope_scaling.type", "");
  if (kind.empty() || kind == "default") return s;
  s.factor = required<double>(config, "rope_scaling.factor");
  if (kind == "linear") {
    s.kind = nn::RopeScaling::Kind::linear;
  } else if (kind == "llama3") {
    s.kind = nn::RopeScaling::Kind::llama3;
    s.low_freq_factor = required<double>(config, "rope_scaling.low_freq_factor");
    s.high_freq_factor = required<double>(config, "rope_scaling.high_freq_factor");
    s.original_max_position = required<int64_t>(config, "rope_scaling.original_max_position_embeddings");
  } else {
    fail("config.json: rope_scaling type '{}' is not supported (default, linear, llama3)", kind);
  }
  return s;
}

}  // namespace

LayerConfig LayerConfig::from(const io::Metadata& config) {
  LayerConfig c;
  c.hidden_size = required<int64_t>(config, "hidden_size");
  c.num_heads = required<int64_t>(config, "num_attention_heads");
  c.num_kv_heads = optional_key<int64_t>(config, "num_key_value_heads", c.num_heads);
  if (c.num_heads <= 0 || c.num_kv_heads <= 0 || c.num_heads % c.num_kv_heads != 0)
    fail("config.json: num_attention_heads {} must be a positive multiple of num_key_value_heads {}", c.num_heads,
         c.num_kv_heads);
  c.head_dim = optional_key<int64_t>(config, "head_dim", c.hidden_size / c.num_heads);
  c.rms_norm_eps = optional_key<double>(config, "rms_norm_eps", 1e-6);
  // Hugging Face checkpoints rotate by halves; GGUF ones keep Meta's pairs
  // (llama_gguf.h sets this key).
  c.rope.layout = optional_key<bool>(config, "kiln.rope_interleaved", false) ? nn::RopeLayout::interleaved
                                                                               : nn::RopeLayout::half_split;
  c.rope.theta = optional_key<double>(config, "rope_theta", 10000.0);
  c.rope.scaling = rope_scaling(config);
  return c;
}

Config Config::from(const io::Metadata& config) {
  Config c;
  c.layer = LayerConfig::from(config);
  c.vocab_size = required<int64_t>(config, "vocab_size");
  c.intermediate_size = required<int64_t>(config, "intermediate_size");
  c.num_layers = required<int64_t>(config, "num_hidden_layers");
  c.max_positions = optional_key<int64_t>(config, "max_position_embeddings", 2048);
  c.tie_word_embeddings = optional_key<bool>(config, "tie_word_embeddings", false);
  c.bos_token_id = optional_key<int64_t>(config, "bos_token_id", -1);
  if (config.contains("eos_token_id")) {
    const auto& eos = config.at("eos_token_id");
    if (std::holds_alternative<std::vector<int64_t>>(eos))
      c.eos_token_ids = config.get<std::vector<int64_t>>("eos_token_id");
    else if (!std::holds_alternative<std::monostate>(eos))
      c.eos_token_ids = {config.get<int64_t>("eos_token_id")};
  }
  return c;
}

std::pair<Tensor, nn::KvCache> Attention::forward(const Tensor& x, const Tensor& positions, const nn::KvCache& cache,
                                                  const Tensor& pos, int64_t window) const {
  auto heads = [&](const nn::Linear& proj, int64_t count) {
    return proj(x).split_axis("d", {{"h", count}, {"hd", config.head_dim}}).transpose({"b", "h", "s", "hd"});
  };
  const Tensor q = nn::rope(heads(q_proj, config.num_heads), positions, config.rope);
  const Tensor k = nn::rope(heads(k_proj, config.num_kv_heads), positions, config.rope);
  const Tensor v = heads(v_proj, config.num_kv_heads);
  const nn::KvCache updated = cache.update(k, v, pos);
  const int64_t capacity = updated.k.dim("t");
  auto visible = [&](const Tensor& t) { return window > 0 && window < capacity ? t.slice("t", 0, window) : t; };
  const Tensor out = nn::attention(q, visible(updated.k), visible(updated.v), {.causal = true, .query_offset = pos});
  return {o_proj(out.transpose({"b", "s", "h", "hd"}).merge({"h", "hd"}, "d")), updated};
}

void DecoderLayer::init(const io::BufferStore& store) {
  const double eps = LayerConfig::from(store.metadata()).rms_norm_eps;
  input_layernorm.eps = eps;
  post_attention_layernorm.eps = eps;
}

std::pair<Tensor, nn::KvCache> DecoderLayer::forward(const Tensor& x, const Tensor& positions, const nn::KvCache& cache,
                                                     const Tensor& pos, int64_t window) const {
  auto [attended, updated] = self_attn.forward(input_layernorm(x), positions, cache, pos, window);
  const Tensor h = x + attended;
  return {h + mlp(post_attention_layernorm(h)), updated};
}

void CausalLM::init(const io::BufferStore& store) {
  config = Config::from(store.metadata());
  model.norm.eps = config.layer.rms_norm_eps;
}

void check_shapes(const CausalLM& lm) {
  const Config& c = lm.config;
  auto expect = [](const Tensor& t, std::string_view name, std::vector<int64_t> dims) {
    if (!std::ranges::equal(t.shape().dims(), dims))
      fail("config.json does not match the weights: '{}' is {} but the config implies [{}]", name,
           t.shape().dims_string(), fmt::join(dims, ","));
  };
  const int64_t d = c.layer.hidden_size, hd = c.layer.head_dim;
  if (static_cast<int64_t>(lm.model.layers.size()) != c.num_layers)
    fail("config.json does not match the weights: num_hidden_layers is {} but the weights have {} layers", c.num_layers,
         lm.model.layers.size());
  expect(lm.model.embed_tokens.weight, "model.embed_tokens.weight", {c.vocab_size, d});
  for (size_t i = 0; i < lm.model.layers.size(); ++i) {
    const DecoderLayer& l = lm.model.layers[i];
    const std::string p = fmt::format("model.layers.{}.", i);
    expect(l.self_attn.q_proj.weight, p + "self_attn.q_proj.weight", {c.layer.num_heads * hd, d});
    expect(l.self_attn.k_proj.weight, p + "self_attn.k_proj.weight", {c.layer.num_kv_heads * hd, d});
    expect(l.self_attn.v_proj.weight, p + "self_attn.v_proj.weight", {c.layer.num_kv_heads * hd, d});
    expect(l.self_attn.o_proj.weight, p + "self_attn.o_proj.weight", {d, c.layer.num_heads * hd});
    expect(l.mlp.gate_proj.weight, p + "mlp.gate_proj.weight", {c.intermediate_size, d});
    expect(l.mlp.up_proj.weight, p + "mlp.up_proj.weight", {c.intermediate_size, d});
    expect(l.mlp.down_proj.weight, p + "mlp.down_proj.weight", {d, c.intermediate_size});
  }
  if (lm.lm_head)
    expect(lm.lm_head->weight, "lm_head.weight", {c.vocab_size, d});
  else if (!c.tie_word_embeddings)
    fail("config.json does not match the weights: tie_word_embeddings is false but there is no lm_head.weight");
}

std::tuple<Tensor, Tensor, Tensor> CausalLM::forward(Tensor tokens, Tensor cache_k, Tensor cache_v, Tensor pos) const {
  const Tensor positions = iota(Shape({{"s", tokens.dim("s")}}, DType::i32), "s") + pos.convert(DType::i32);
  Tensor x = model.embed_tokens(tokens);  // {b, s, d}
  for (size_t i = 0; i < model.layers.size(); ++i) {
    const auto layer = static_cast<int64_t>(i);
    const nn::KvCache cache{cache_k.slice("layer", layer, layer + 1).squeeze("layer"),
                            cache_v.slice("layer", layer, layer + 1).squeeze("layer")};
    auto [y, updated] = model.layers[i].forward(x, positions, cache, pos, attention_window);
    x = y;
    const Tensor index = scalar(static_cast<double>(layer), DType::i32);
    cache_k = cache_k.dynamic_update_slice({{"layer", index}}, updated.k.insert_axis(0, "layer"));
    cache_v = cache_v.dynamic_update_slice({{"layer", index}}, updated.v.insert_axis(0, "layer"));
  }
  x = model.norm(x);
  const Tensor logits =
      lm_head ? (*lm_head)(x).rename({{"d", "voc"}}) : x.dot(model.embed_tokens.weight.with_tags({"voc", "d"}), "d");
  return {logits.convert(DType::f32), cache_k, cache_v};
}

Shape CausalLM::cache_shape(int64_t batch, int64_t capacity, DType dtype) const {
  return Shape({{"layer", config.num_layers},
                {"b", batch},
                {"h", config.layer.num_kv_heads},
                {"t", capacity},
                {"hd", config.layer.head_dim}},
               dtype);
}

}  // namespace kiln::models::llama
