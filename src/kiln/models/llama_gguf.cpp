#include "kiln/models/llama_gguf.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "kiln/core/element.h"
#include "kiln/core/quant.h"
#include "kiln/io/gguf.h"
#include "kiln/io/open.h"
#include "kiln/models/llama.h"
#include "kiln/models/llama2c.h"
#include "kiln/models/tokenizer.h"

namespace kiln::models::llama {
namespace {

// GGUF tensor names and their Hugging Face counterparts (".weight" follows both).
constexpr std::pair<std::string_view, std::string_view> kGlobalNames[] = {
    {"token_embd", "model.embed_tokens"}, {"output_norm", "model.norm"}, {"output", "lm_head"}};
constexpr std::pair<std::string_view, std::string_view> kLayerNames[] = {
    {"attn_norm", "input_layernorm"}, {"attn_q", "self_attn.q_proj"},      {"attn_k", "self_attn.k_proj"},
    {"attn_v", "self_attn.v_proj"},   {"attn_output", "self_attn.o_proj"}, {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},    {"ffn_up", "mlp.up_proj"},           {"ffn_down", "mlp.down_proj"}};

// "blk.3.attn_q.weight" -> "model.layers.3.self_attn.q_proj.weight"; empty when unknown.
std::string hf_name(std::string_view gguf) {
  std::string_view suffix;
  for (std::string_view s : {".weight", ".bias"})
    if (gguf.ends_with(s)) suffix = s;
  if (suffix.empty()) return {};
  std::string_view stem = gguf.substr(0, gguf.size() - suffix.size());
  for (const auto& [from, to] : kGlobalNames)
    if (stem == from) return fmt::format("{}{}", to, suffix);
  if (!stem.starts_with("blk.")) return {};
  stem.remove_prefix(4);
  const size_t dot = stem.find('.');
  if (dot == std::string_view::npos || dot == 0) return {};
  const std::string_view layer = stem.substr(0, dot), part = stem.substr(dot + 1);
  if (!std::ranges::all_of(layer, [](char c) { return c >= '0' && c <= '9'; })) return {};
  for (const auto& [from, to] : kLayerNames)
    if (part == from) return fmt::format("model.layers.{}.{}{}", layer, to, suffix);
  return {};
}

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; empty when unknown.
std::string gguf_name(std::string_view hf) {
  constexpr std::string_view kLayers = "model.layers.";
  if (hf.starts_with(kLayers)) {
    const std::string_view rest = hf.substr(kLayers.size());
    const size_t dot = rest.find('.');
    if (dot == std::string_view::npos) return {};
    const std::string_view layer = rest.substr(0, dot), part = rest.substr(dot + 1);
    for (const auto& [gguf, h] : kLayerNames)
      if (part.starts_with(h) && part.substr(h.size()).starts_with("."))
        return fmt::format("blk.{}.{}{}", layer, gguf, part.substr(h.size()));
    return {};
  }
  for (const auto& [gguf, h] : kGlobalNames)
    if (hf.starts_with(h) && hf.substr(h.size()).starts_with("."))
      return fmt::format("{}{}", gguf, hf.substr(h.size()));
  return {};
}

}  // namespace

bool is_gguf(const io::BufferStore& store) { return store.metadata().contains("general.architecture"); }

io::BufferStore from_gguf(const io::BufferStore& gguf, const std::string& file) {
  const io::Metadata& m = gguf.metadata();
  const std::string arch = m.contains("general.architecture") ? m.get<std::string>("general.architecture") : "";
  if (arch != "llama")
    fail("{}: general.architecture is '{}'; kiln reads LLaMA GGUF files (general.architecture \"llama\")", file, arch);
  io::BufferStore out;
  out.metadata() = m;  // the tokenizer.ggml.* keys stay for the tokenizer
  io::Metadata& c = out.metadata();
  auto copy = [&](const char* from, const char* to, bool required) {
    if (m.contains(from))
      c.set(to, m.at(from));
    else if (required)
      fail("{}: GGUF metadata key '{}' is missing (needed for the llama model's {})", file, from, to);
  };
  copy("llama.embedding_length", "hidden_size", true);
  copy("llama.feed_forward_length", "intermediate_size", true);
  copy("llama.block_count", "num_hidden_layers", true);
  copy("llama.attention.head_count", "num_attention_heads", true);
  copy("llama.attention.head_count_kv", "num_key_value_heads", false);
  copy("llama.attention.layer_norm_rms_epsilon", "rms_norm_eps", true);
  copy("llama.rope.freq_base", "rope_theta", false);
  copy("llama.context_length", "max_position_embeddings", false);
  copy("llama.attention.key_length", "head_dim", false);
  copy("tokenizer.ggml.bos_token_id", "bos_token_id", false);
  copy("tokenizer.ggml.eos_token_id", "eos_token_id", false);
  if (m.contains("llama.rope.scaling.type")) {
    const auto kind = m.get<std::string>("llama.rope.scaling.type");
    if (kind == "linear") {
      c.set("rope_scaling.type", std::string("linear"));
      copy("llama.rope.scaling.factor", "rope_scaling.factor", true);
    } else if (kind != "none") {
      fail("{}: llama.rope.scaling.type '{}' is not supported (none, linear)", file, kind);
    }
  }
  if (gguf.contains("rope_freqs.weight"))
    fail("{}: has rope_freqs.weight (Llama 3.1-style RoPE frequency factors), which kiln does not read yet", file);
  if (!gguf.contains("token_embd.weight")) fail("{}: has no token_embd.weight", file);
  c.set("vocab_size", m.contains("llama.vocab_size") ? m.at("llama.vocab_size")
                                                     : io::MetaValue(gguf.get("token_embd.weight").shape().dim(0)));
  c.set("tie_word_embeddings", !gguf.contains("output.weight"));
  c.set("kiln.rope_interleaved", true);  // Q/K rows in GGUF's order: see llama_gguf.h
  for (const std::string& name : gguf.names()) {
    const std::string hf = hf_name(name);
    if (hf.empty()) fail("{}: tensor '{}' is not one a LLaMA GGUF has (token_embd, blk.N.attn_q, ...)", file, name);
    out.add(hf, gguf.get(name), gguf.file_of(name));
  }
  return out;
}

QuantizeType quantize_type_from_name(const std::string& name) {
  static const std::pair<std::string_view, QuantizeType> kNames[] = {
      {"f32", QuantizeType::f32},   {"f16", QuantizeType::f16},   {"bf16", QuantizeType::bf16},
      {"q8_0", QuantizeType::q8_0}, {"q4_0", QuantizeType::q4_0}, {"q4_k_m", QuantizeType::q4_k_m},
      {"q6_k", QuantizeType::q6_k}};
  for (const auto& [n, t] : kNames)
    if (name == n) return t;
  fail("quantize: type '{}' is not one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k", name);
}

namespace {

// llama.cpp's general.file_type numbers (LLAMA_FTYPE_*).
int64_t file_type(QuantizeType t) {
  switch (t) {
    case QuantizeType::f32:
      return 0;
    case QuantizeType::f16:
      return 1;
    case QuantizeType::q4_0:
      return 2;
    case QuantizeType::q8_0:
      return 7;
    case QuantizeType::q4_k_m:
      return 15;
    case QuantizeType::q6_k:
      return 18;
    case QuantizeType::bf16:
      return 32;
  }
  return 0;
}

// Layers that get more bits in llama-quantize's k-quant mixes: the first
// and last eighth, and every third one between.
bool use_more_bits(int64_t layer, int64_t layers) {
  return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

// The dtype one 2-D weight is stored in. A row length the block does not
// divide falls back as llama-quantize does (q4_k -> q5_0, q6_k -> q8_0,
// and the 32-element types to f16).
DType weight_dtype(QuantizeType t, std::string_view gguf, int64_t layers, int64_t row) {
  DType d = DType::f32;
  switch (t) {
    case QuantizeType::f32:
      return DType::f32;
    case QuantizeType::f16:
      return DType::f16;
    case QuantizeType::bf16:
      return DType::bf16;
    case QuantizeType::q8_0:
      d = DType::q8_0;
      break;
    case QuantizeType::q4_0:
      d = gguf == "output.weight" ? DType::q6_k : DType::q4_0;
      break;
    case QuantizeType::q6_k:
      d = DType::q6_k;
      break;
    case QuantizeType::q4_k_m: {
      d = DType::q4_k;
      int64_t layer = -1;
      if (gguf.starts_with("blk.")) layer = std::stoll(std::string(gguf.substr(4)));
      if (gguf == "output.weight") d = DType::q6_k;
      if ((gguf.ends_with(".attn_v.weight") || gguf.ends_with(".ffn_down.weight")) && use_more_bits(layer, layers))
        d = DType::q6_k;
      break;
    }
  }
  if (row % block_size(d) != 0) d = d == DType::q4_k ? DType::q5_0 : d == DType::q6_k ? DType::q8_0 : DType::f16;
  if (row % block_size(d) != 0) d = DType::f16;
  return d;
}

// An f32 copy of any float or quantized tensor.
HostBuffer as_f32(const HostBuffer& b) {
  if (is_quantized(b.dtype())) return dequantize(b);
  const HostBuffer flat = b.is_contiguous() ? b : b.copy();
  HostBuffer out = HostBuffer::uninitialized(flat.shape().with_dtype(DType::f32));
  auto* to = reinterpret_cast<float*>(out.mutable_data());
  const int64_t n = flat.shape().count();
  const size_t element = size_of(flat.dtype());
  for (int64_t i = 0; i < n; ++i) to[i] = static_cast<float>(load_double(flat.dtype(), flat.data() + i * element));
  return out;
}

HostBuffer convert_to(const HostBuffer& f32, DType d) {
  if (d == DType::f32) return f32;
  if (is_quantized(d)) return kiln::quantize(f32, d);
  HostBuffer out = HostBuffer::uninitialized(f32.shape().with_dtype(d));
  const auto values = f32.span<float>();
  auto* to = reinterpret_cast<uint16_t*>(out.mutable_data());
  for (size_t i = 0; i < values.size(); ++i) to[i] = d == DType::bf16 ? f32_to_bf16(values[i]) : f32_to_f16(values[i]);
  return out;
}

// Hugging Face rows of each head [first halves..., second halves...] (RoPE
// by halves) to GGUF's pairs: row order (head, 2, hd/2) -> (head, hd/2, 2).
HostBuffer rope_rows_for_gguf(const HostBuffer& f32, int64_t heads) {
  const int64_t rows = f32.shape().dim(0), cols = f32.shape().dim(1), half = rows / heads / 2;
  HostBuffer out = HostBuffer::uninitialized(f32.shape());
  const float* from = f32.span<float>().data();
  auto* to = reinterpret_cast<float*>(out.mutable_data());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t which = 0; which < 2; ++which)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t source = (h * 2 + which) * half + i, target = (h * half + i) * 2 + which;
        std::memcpy(to + target * cols, from + source * cols, static_cast<size_t>(cols) * sizeof(float));
      }
  return out;
}

std::vector<io::GgufWriteEntry> config_entries(const Config& c, const std::string& name, QuantizeType t) {
  using io::GgufType;
  std::vector<io::GgufWriteEntry> e = {
      {"general.architecture", GgufType::string, std::string("llama")},
      {"general.name", GgufType::string, name},
      {"general.file_type", GgufType::u32, file_type(t)},
      {"llama.context_length", GgufType::u32, c.max_positions},
      {"llama.embedding_length", GgufType::u32, c.layer.hidden_size},
      {"llama.block_count", GgufType::u32, c.num_layers},
      {"llama.feed_forward_length", GgufType::u32, c.intermediate_size},
      {"llama.attention.head_count", GgufType::u32, c.layer.num_heads},
      {"llama.attention.head_count_kv", GgufType::u32, c.layer.num_kv_heads},
      {"llama.rope.dimension_count", GgufType::u32, c.layer.head_dim},
      {"llama.rope.freq_base", GgufType::f32, c.layer.rope.theta},
      {"llama.attention.layer_norm_rms_epsilon", GgufType::f32, c.layer.rms_norm_eps},
      {"llama.vocab_size", GgufType::u32, c.vocab_size},
  };
  if (c.layer.head_dim * c.layer.num_heads != c.layer.hidden_size)
    e.push_back({"llama.attention.key_length", GgufType::u32, c.layer.head_dim});
  const auto& s = c.layer.rope.scaling;
  if (s.kind == nn::RopeScaling::Kind::linear) {
    e.push_back({"llama.rope.scaling.type", GgufType::string, std::string("linear")});
    e.push_back({"llama.rope.scaling.factor", GgufType::f32, s.factor});
  } else if (s.kind != nn::RopeScaling::Kind::none) {
    fail("quantize: llama3 rope_scaling has no GGUF form kiln writes yet");
  }
  return e;
}

std::vector<io::GgufWriteEntry> tokenizer_entries(const Vocabulary& v, const Config& c) {
  using io::GgufType;
  std::vector<double> scores(v.scores.begin(), v.scores.end());
  std::vector<int64_t> types(v.types.begin(), v.types.end());
  std::vector<io::GgufWriteEntry> e = {
      {"tokenizer.ggml.model", GgufType::string, std::string("llama")},
      {"tokenizer.ggml.tokens", GgufType::array, v.pieces, GgufType::string},
      {"tokenizer.ggml.scores", GgufType::array, scores, GgufType::f32},
      {"tokenizer.ggml.token_type", GgufType::array, types, GgufType::i32},
      {"tokenizer.ggml.bos_token_id", GgufType::u32, c.bos_token_id >= 0 ? c.bos_token_id : int64_t{v.bos_id}},
      {"tokenizer.ggml.eos_token_id", GgufType::u32, !c.eos_token_ids.empty() ? c.eos_token_ids[0] : int64_t{v.eos_id}},
      {"tokenizer.ggml.unknown_token_id", GgufType::u32, int64_t{v.unk_id}},
      {"tokenizer.ggml.add_bos_token", GgufType::bool_, true},
      {"tokenizer.ggml.add_space_prefix", GgufType::bool_, v.add_space_prefix},
  };
  return e;
}

}  // namespace

Vocabulary vocabulary_from_gguf(const io::Metadata& m, const std::string& file) {
  const std::string model = m.contains("tokenizer.ggml.model") ? m.get<std::string>("tokenizer.ggml.model") : "";
  if (model != "llama")
    fail("{}: tokenizer.ggml.model is '{}'; kiln reads the SentencePiece vocabularies of model \"llama\"{}", file,
         model, model == "gpt2" ? " (byte-level BPE \"gpt2\" vocabularies are not supported yet)" : "");
  if (!m.contains("tokenizer.ggml.tokens")) fail("{}: tokenizer.ggml.tokens is missing", file);
  Vocabulary v;
  v.pieces = m.get<std::vector<std::string>>("tokenizer.ggml.tokens");
  const size_t n = v.pieces.size();
  if (m.contains("tokenizer.ggml.scores")) {
    for (double s : m.get<std::vector<double>>("tokenizer.ggml.scores")) v.scores.push_back(static_cast<float>(s));
  } else {
    v.scores.assign(n, 0.0f);
  }
  if (m.contains("tokenizer.ggml.token_type"))
    v.types = m.get<std::vector<int>>("tokenizer.ggml.token_type");
  else
    v.types.assign(n, Vocabulary::normal);
  auto id = [&](const char* key, int fallback) { return m.contains(key) ? m.get<int>(key) : fallback; };
  v.bos_id = id("tokenizer.ggml.bos_token_id", -1);
  v.eos_id = id("tokenizer.ggml.eos_token_id", -1);
  v.unk_id = id("tokenizer.ggml.unknown_token_id", 0);
  if (m.contains("tokenizer.ggml.add_space_prefix"))
    v.add_space_prefix = m.get<bool>("tokenizer.ggml.add_space_prefix");
  return v;
}

OpenedModel open_model(const std::filesystem::path& path) {
  std::error_code error;
  if (!std::filesystem::exists(path, error))
    fail("model '{}' does not exist (a Hugging Face model directory, a .gguf file or a llama2.c .bin)", path.string());
  if (is_llama2c(path)) {
    io::BufferStore store = open_llama2c(path);
    const int64_t vocab = store.metadata<int64_t>("vocab_size");
    const std::filesystem::path tokenizer = path.parent_path() / "tokenizer.bin";
    return {std::move(store), Tokenizer::from_vocabulary(read_llama2c_tokenizer(tokenizer, vocab), tokenizer.string()),
            true};
  }
  const io::BufferStore opened = io::open(path);
  if (is_gguf(opened)) {
    io::BufferStore store = from_gguf(opened, path.string());
    Tokenizer tokenizer =
        Tokenizer::from_vocabulary(vocabulary_from_gguf(opened.metadata(), path.string()), path.string());
    return {std::move(store), std::move(tokenizer), true};
  }
  if (!std::filesystem::is_directory(path, error)) fail("model directory '{}' does not exist", path.string());
  return {opened, Tokenizer::load(path / "tokenizer.model"), false};
}

void quantize(const std::filesystem::path& in, const std::filesystem::path& out, const QuantizeOptions& options) {
  const OpenedModel model = open_model(in);
  const io::BufferStore& store = model.store;
  if (!store.metadata().contains("vocab_size"))
    fail("quantize: {} has no config.json with the model's configuration (vocab_size, hidden_size, ...)", in.string());
  const Config config = Config::from(store.metadata());
  const Tokenizer& tokenizer = model.tokenizer;
  std::vector<io::GgufWriteEntry> metadata = config_entries(
      config, in.filename().string().empty() ? in.parent_path().filename().string() : in.filename().string(),
      options.type);
  for (auto& e : tokenizer_entries(tokenizer.vocabulary(), config)) metadata.push_back(std::move(e));

  // GGUF's order: the embedding, each layer, the final norm and head.
  std::vector<std::string> names;
  names.push_back("model.embed_tokens.weight");
  for (int64_t i = 0; i < config.num_layers; ++i)
    for (const auto& [gguf, hf] : kLayerNames) names.push_back(fmt::format("model.layers.{}.{}.weight", i, hf));
  names.push_back("model.norm.weight");
  if (store.contains("lm_head.weight")) names.push_back("lm_head.weight");
  std::vector<std::pair<std::string, HostBuffer>> tensors;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& hf = names[i];
    const std::string gguf = gguf_name(hf);
    HostBuffer values = as_f32(store.get(hf));
    if (values.shape().rank() == 1) {  // norms stay f32, as llama.cpp keeps them
      tensors.emplace_back(gguf, values);
    } else {
      const bool q = hf.ends_with("q_proj.weight"), k = hf.ends_with("k_proj.weight");
      if ((q || k) && !model.interleaved_rope)
        values = rope_rows_for_gguf(values, q ? config.layer.num_heads : config.layer.num_kv_heads);
      const DType d = weight_dtype(options.type, gguf, config.num_layers, values.shape().dim(1));
      tensors.emplace_back(gguf, convert_to(values, d));
    }
    if (options.progress) options.progress(i + 1, names.size(), gguf);
  }
  io::write_gguf(out, metadata, tensors);
}

}  // namespace kiln::models::llama
