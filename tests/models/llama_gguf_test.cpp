// The shipped model as GGUF: `kiln quantize` to f32 gives PyTorch's logits
// and greedy tokens (tests/fixtures/make_llama_fixtures.py); the quantized
// files (q8_0, q4_0, q4_k_m) give the logits PyTorch computes on the same
// files' weights dequantized by gguf-py (tests/fixtures/make_gguf_llama_fixtures.py);
// the tokenizer read from GGUF metadata that gguf-py wrote gives Python
// SentencePiece's ids on the same vocabulary without normalization, as
// llama.cpp tokenizes GGUF vocabularies (llama-tokenize agreed on all of
// them: tests/fixtures/make_gguf_tokenizer_fixture.py); and
// the errors for GGUF files that are not LLaMA models.
#include "kiln/models/llama_gguf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "../io/io_test.h"
#include "kiln/io/gguf.h"
#include "kiln/io/open.h"
#include "kiln/models/generate.h"
#include "support/compare.h"
#include "support/expect_error.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
using io::run_command;
const fs::path kModel = fs::path(KILN_FIXTURES) / ".." / ".." / "models" / "kjv-llama";

const io::BufferStore& expected() { return testing::fixture("llama/kjv_expected.safetensors"); }
const io::BufferStore& expected_gguf() { return testing::fixture("llama/gguf_expected.safetensors"); }

std::vector<int> ids_of(const io::BufferStore& store, const std::string& name) {
  auto s = store.get(name).span<int32_t>();
  return {s.begin(), s.end()};
}

// The shipped model written by `kiln quantize` as `type` (once per type).
fs::path quantized(const std::string& type) {
  const fs::path out = fs::path(::testing::TempDir()) / ("kiln_kjv_" + type + ".gguf");
  static std::set<std::string> done;
  if (done.insert(type).second) {
    llama::QuantizeOptions options;
    options.type = llama::quantize_type_from_name(type);
    llama::quantize(kModel, out, options);
  }
  return out;
}

TEST(LlamaGguf, F32GgufGivesPyTorchsLogitsAndGreedyTokens) {
  Generator g(Platform::cpu(), quantized("f32"), DType::f32);
  GenerateOptions options;
  options.max_new_tokens = 64;
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  for (int i = 0; i < 3; ++i) {
    const std::string p = "prompt" + std::to_string(i);
    const std::string prompt = expected().metadata<std::string>(p);
    EXPECT_EQ(g.tokenizer().encode(prompt), ids_of(expected(), p + ".ids")) << prompt;
    const HostBuffer want = expected().get(p + ".logits");
    const HostBuffer logits = g.prompt_logits(ids_of(expected(), p + ".ids"));
    EXPECT_TRUE(testing::all_close(logits.reshape(want.shape()), want, testing::Tolerance{1e-4, 1e-4}, p));
    EXPECT_EQ(g.generate_ids(ids_of(expected(), p + ".ids"), options).tokens, ids_of(expected(), p + ".greedy")) << p;
  }
}

// kiln runs a quantized file's weights as they are (the blocks, in the
// decode kernels and the prefill tiles); PyTorch runs the same weights
// dequantized. The fixture was made from the bytes `kiln quantize` wrote
// then, so the file must be the same.
TEST(LlamaGguf, QuantizedGgufsGivePyTorchsLogitsOnTheirDequantizedWeights) {
  for (const std::string type : {"q8_0", "q4_0", "q4_k_m"}) {
    const fs::path file = quantized(type);
    const auto sum = run_command("sha256sum '" + file.string() + "'");
    ASSERT_EQ(sum.output.substr(0, 64), expected_gguf().metadata<std::string>(type + ".sha256"))
        << type << ": kiln quantize writes other bytes than when tests/fixtures/make_gguf_llama_fixtures.py ran; "
        << "rerun it if the quantizer changed on purpose";
    Generator g(Platform::cpu(), file, DType::f32);
    GenerateOptions options;
    options.sampling.temperature = 0;
    options.stop_at_eos = false;
    for (int i = 0; i < 3; ++i) {
      const std::string p = type + ".prompt" + std::to_string(i);
      const HostBuffer want = expected_gguf().get(p + ".logits");
      const HostBuffer logits = g.prompt_logits(ids_of(expected_gguf(), p + ".ids"));
      EXPECT_TRUE(testing::all_close(logits.reshape(want.shape()), want, testing::Tolerance{1e-4, 1e-4}, p));
      const std::vector<int> greedy = ids_of(expected_gguf(), p + ".greedy");
      options.max_new_tokens = static_cast<int64_t>(greedy.size());
      EXPECT_EQ(g.generate_ids(ids_of(expected_gguf(), p + ".ids"), options).tokens, greedy) << p;
    }
  }
}

TEST(LlamaGguf, TokenizerFromGgufMetadataMatchesPythonSentencePiece) {
  const io::BufferStore store = io::open(KILN_FIXTURES "/gguf/kjv_tokenizer.gguf");
  const Tokenizer tokenizer = Tokenizer::from_vocabulary(
      llama::vocabulary_from_gguf(store.metadata(), "kjv_tokenizer.gguf"), "kjv_tokenizer.gguf");
  std::ifstream in(KILN_FIXTURES "/gguf/kjv_tokenizer_ids.json");
  const nlohmann::json cases = nlohmann::json::parse(in);
  ASSERT_GE(cases.size(), 10u);
  // GGUF has no normalizer field: the shipped tokenizer.model's NFKC and
  // whitespace folding are not part of the GGUF vocabulary.
  int normalized_differently = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const auto ids = c["ids_no_normalization"].get<std::vector<int>>();
    EXPECT_EQ(tokenizer.encode(text), ids) << "'" << text << "'";
    normalized_differently += ids != c["ids"].get<std::vector<int>>() ? 1 : 0;
    if (ids == c["ids"].get<std::vector<int>>())
      EXPECT_EQ(tokenizer.decode(ids), c["decoded"].get<std::string>()) << text;
  }
  EXPECT_LT(normalized_differently, static_cast<int>(cases.size()) / 2);
}

// A GGUF holding `metadata` and one small tensor per name.
fs::path gguf_with(const std::string& name, const std::vector<io::GgufWriteEntry>& metadata,
                   const std::vector<std::string>& tensors = {"token_embd.weight"}) {
  const fs::path path = fs::path(::testing::TempDir()) / ("kiln_llama_gguf_" + name + ".gguf");
  std::vector<std::pair<std::string, HostBuffer>> t;
  for (const auto& n : tensors) t.emplace_back(n, HostBuffer::allocate(Shape({4, 32})));
  io::write_gguf(path, metadata, t);
  return path;
}

TEST(LlamaGgufErrors, NotALlamaFileMissingKeysAndUnknownTensorsAreNamed) {
  using io::GgufType;
  const io::GgufWriteEntry llama{"general.architecture", GgufType::string, std::string("llama")};
  EXPECT_ERROR(
      Generator(Platform::cpu(), gguf_with("gpt", {{"general.architecture", GgufType::string, std::string("gpt2")}}),
                DType::f32),
      "general.architecture is 'gpt2'");
  const std::vector<io::GgufWriteEntry> tokenizer = {
      llama,
      {"tokenizer.ggml.model", GgufType::string, std::string("llama")},
      {"tokenizer.ggml.tokens", GgufType::array, std::vector<std::string>{"<unk>", "<s>", "</s>", "a"},
       GgufType::string},
      {"tokenizer.ggml.token_type", GgufType::array, std::vector<int64_t>{2, 3, 3, 1}, GgufType::i32}};
  EXPECT_ERROR(Generator(Platform::cpu(), gguf_with("no_keys", tokenizer), DType::f32),
               "GGUF metadata key 'llama.embedding_length' is missing");
  std::vector<io::GgufWriteEntry> full = tokenizer;
  for (const char* key :
       {"llama.embedding_length", "llama.feed_forward_length", "llama.block_count", "llama.attention.head_count"})
    full.push_back({key, GgufType::u32, int64_t{32}});
  full.push_back({"llama.attention.layer_norm_rms_epsilon", GgufType::f32, 1e-5});
  EXPECT_ERROR(Generator(Platform::cpu(), gguf_with("odd_tensor", full, {"token_embd.weight", "blk.0.attn_qkv.weight"}),
                         DType::f32),
               "tensor 'blk.0.attn_qkv.weight' is not one a LLaMA GGUF has");
  std::vector<io::GgufWriteEntry> bpe = full;
  bpe[1].value = std::string("gpt2");
  EXPECT_ERROR(Generator(Platform::cpu(), gguf_with("bpe", bpe), DType::f32),
               "\"gpt2\" vocabularies are not supported");
}

TEST(LlamaGgufErrors, QuantizedWeightsNeedF32Activations) {
  EXPECT_ERROR(Generator(Platform::cpu(), quantized("q8_0"), DType::bf16), "with f32 activations (--dtype f32)");
}

TEST(KilnQuantize, WritesWithAProgressBarAndRefusesUnknownTypes) {
  const fs::path out = fs::path(::testing::TempDir()) / "kiln_cli_q4_0.gguf";
  const auto ok = run_command(std::string(KILN_CLI) + " quantize '" + kModel.string() + "' '" + out.string() +
                              "' --type q4_0 2>&1");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("quantizing 100% (39/39 tensors)"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("wrote"), std::string::npos) << ok.output;
  const io::BufferStore store = io::open(out);
  EXPECT_EQ(store.get("blk.0.attn_q.weight").dtype(), DType::q4_0);
  EXPECT_EQ(store.get("output.weight").dtype(), DType::q8_0);  // q6_k's 256-element blocks do not divide 192
  EXPECT_EQ(store.get("blk.0.attn_norm.weight").dtype(), DType::f32);
  EXPECT_EQ(store.metadata<std::string>("general.architecture"), "llama");
  EXPECT_EQ(store.metadata<int64_t>("llama.attention.head_count_kv"), 2);
  const auto bad = run_command(std::string(KILN_CLI) + " quantize '" + kModel.string() + "' '" + out.string() +
                               "' --type q3_k 2>&1");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("type 'q3_k' is not one of f32, f16, bf16, q8_0, q4_0, q4_k_m, q6_k"), std::string::npos)
      << bad.output;
}

}  // namespace
}  // namespace kiln::models
