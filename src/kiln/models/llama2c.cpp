#include "kiln/models/llama2c.h"

#include <fmt/format.h>

#include <cstring>

#include "kiln/core/error.h"
#include "kiln/io/weight_source.h"

namespace kiln::models::llama {
namespace {

int32_t read_i32(std::span<const std::byte> bytes, size_t at) {
  int32_t v;
  std::memcpy(&v, bytes.data() + at, 4);
  return v;
}

}  // namespace

bool is_llama2c(const std::filesystem::path& path) {
  std::error_code error;
  return path.extension() == ".bin" && std::filesystem::is_regular_file(path, error);
}

io::BufferStore open_llama2c(const std::filesystem::path& path) { return parse_llama2c(io::map_file(path)); }

io::BufferStore parse_llama2c(io::SourcePtr source) {
  const std::string& file = source->name();
  const auto bytes = source->bytes();
  constexpr size_t kHeader = 7 * 4;
  if (bytes.size() < kHeader) fail("{}: {} bytes, too short for a llama2.c header (28 bytes)", file, bytes.size());
  const int64_t dim = read_i32(bytes, 0), hidden = read_i32(bytes, 4), layers = read_i32(bytes, 8),
                heads = read_i32(bytes, 12), kv_heads = read_i32(bytes, 16), vocab_signed = read_i32(bytes, 20),
                seq_len = read_i32(bytes, 24);
  const bool shared = vocab_signed > 0;
  const int64_t vocab = shared ? vocab_signed : -vocab_signed;
  // Bounds that keep every product below in 64 bits and reject garbage early.
  constexpr int64_t kLimit = int64_t{1} << 20;
  for (auto [name, v] : {std::pair{"dim", dim},
                         {"hidden_dim", hidden},
                         {"n_layers", layers},
                         {"n_heads", heads},
                         {"n_kv_heads", kv_heads},
                         {"vocab_size", vocab},
                         {"seq_len", seq_len}})
    if (v <= 0 || v > kLimit) fail("{}: llama2.c header field {} is {}, not in 1..{}", file, name, v, kLimit);
  if (dim % heads != 0 || heads % kv_heads != 0 || (dim / heads) % 2 != 0)
    fail("{}: dim {} / n_heads {} / n_kv_heads {} do not make whole, even heads", file, dim, heads, kv_heads);
  const int64_t hd = dim / heads, kv_dim = kv_heads * hd;
  const std::vector<std::pair<std::string, std::vector<int64_t>>> stacked = {
      {"input_layernorm.weight", {dim}},          {"self_attn.q_proj.weight", {dim, dim}},
      {"self_attn.k_proj.weight", {kv_dim, dim}}, {"self_attn.v_proj.weight", {kv_dim, dim}},
      {"self_attn.o_proj.weight", {dim, dim}},    {"post_attention_layernorm.weight", {dim}},
      {"mlp.gate_proj.weight", {hidden, dim}},    {"mlp.down_proj.weight", {dim, hidden}},
      {"mlp.up_proj.weight", {hidden, dim}}};
  auto count = [](const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    return n;
  };
  int64_t expected = vocab * dim + dim + seq_len * hd;  // embedding, final norm, both RoPE tables
  for (const auto& [name, dims] : stacked) expected += layers * count(dims);
  if (!shared) expected += vocab * dim;
  expected = static_cast<int64_t>(kHeader) + expected * 4;
  if (static_cast<int64_t>(bytes.size()) != expected)
    fail(
        "{}: {} bytes, but a llama2.c checkpoint with this header (dim {}, hidden {}, {} layers, {} heads, {} kv "
        "heads, vocab {}{}, seq_len {}) has {}",
        file, bytes.size(), dim, hidden, layers, heads, kv_heads, vocab, shared ? " shared" : "", seq_len, expected);

  io::BufferStore store;
  size_t offset = kHeader;
  auto take = [&](const std::string& name, std::vector<int64_t> dims) {
    const Shape shape(std::span<const int64_t>(dims), DType::f32);
    const size_t size = shape.byte_size();
    store.add(name, HostBuffer::borrow(shape, bytes.subspan(offset, size), source), file);
    offset += size;
  };
  take("model.embed_tokens.weight", {vocab, dim});
  for (const auto& [name, dims] : stacked)
    for (int64_t l = 0; l < layers; ++l) take(fmt::format("model.layers.{}.{}", l, name), dims);
  take("model.norm.weight", {dim});
  offset += static_cast<size_t>(seq_len * hd) * 4;  // freq_cis_real and _imag: kiln computes RoPE itself
  if (!shared) take("lm_head.weight", {vocab, dim});

  io::Metadata& c = store.metadata();
  c.set("hidden_size", dim);
  c.set("intermediate_size", hidden);
  c.set("num_hidden_layers", layers);
  c.set("num_attention_heads", heads);
  c.set("num_key_value_heads", kv_heads);
  c.set("vocab_size", vocab);
  c.set("max_position_embeddings", seq_len);
  c.set("rms_norm_eps", 1e-5);  // run.c's
  c.set("rope_theta", 10000.0);
  c.set("tie_word_embeddings", shared);
  c.set("bos_token_id", int64_t{1});
  c.set("eos_token_id", int64_t{2});
  c.set("kiln.rope_interleaved", true);
  return store;
}

Vocabulary read_llama2c_tokenizer(const std::filesystem::path& path, int64_t vocab_size) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error))
    fail("tokenizer '{}' does not exist (a llama2.c checkpoint needs its tokenizer.bin beside it)", path.string());
  return parse_llama2c_tokenizer(*io::read_file(path), vocab_size);
}

Vocabulary parse_llama2c_tokenizer(const io::WeightSource& source, int64_t vocab_size) {
  const auto bytes = source.bytes();
  const std::string& file = source.name();
  size_t at = 4;  // past max_token_length
  if (bytes.size() < at) fail("{}: too short for a llama2.c tokenizer", file);
  Vocabulary v;
  for (int64_t id = 0; id < vocab_size; ++id) {
    if (bytes.size() - at < 8) fail("{}: ends at token {} of the model's {}", file, id, vocab_size);
    float score;
    std::memcpy(&score, bytes.data() + at, 4);
    const int32_t length = read_i32(bytes, at + 4);
    at += 8;
    if (length < 0 || static_cast<size_t>(length) > bytes.size() - at)
      fail("{}: token {} has length {}, past the end of the file", file, id, length);
    std::string piece(reinterpret_cast<const char*>(bytes.data() + at), static_cast<size_t>(length));
    at += static_cast<size_t>(length);
    // Back to SentencePiece's pieces: '▁' for spaces, <s> and </s> without the newlines around them.
    if (id == 1 || id == 2) piece = id == 1 ? "<s>" : "</s>";
    std::string spm;
    for (char ch : piece) spm += ch == ' ' ? "\xe2\x96\x81" : std::string(1, ch);
    const bool is_byte = spm.size() == 6 && spm.starts_with("<0x") && spm.ends_with(">");
    v.pieces.push_back(spm);
    v.scores.push_back(score);
    v.types.push_back(id == 0              ? Vocabulary::unknown
                      : id == 1 || id == 2 ? Vocabulary::control
                      : is_byte            ? Vocabulary::byte
                                           : Vocabulary::normal);
  }
  v.bos_id = 1;
  v.eos_id = 2;
  v.unk_id = 0;
  return v;
}

}  // namespace kiln::models::llama
