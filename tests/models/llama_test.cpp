// The shipped model (models/kjv-llama) against the independent PyTorch
// implementation (tests/fixtures/make_llama_fixtures.py): tokenization,
// logits at every prompt position, 64 greedy tokens (the prompt in padded
// and in exact chunks), bf16; and the errors
// for bad model directories and prompts.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kiln/models/generate.h"
#include "support/compare.h"
#include "support/expect_error.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
const fs::path kModel = fs::path(KILN_FIXTURES) / ".." / ".." / "models" / "kjv-llama";

const io::BufferStore& expected() { return testing::fixture("llama/kjv_expected.safetensors"); }

std::vector<int> ids_of(const std::string& name) {
  auto s = expected().get(name).span<int32_t>();
  return {s.begin(), s.end()};
}

Generator& generator(DType dtype) {
  static Generator f32(Platform::cpu(), kModel, DType::f32);
  static Generator bf16(Platform::cpu(), kModel, DType::bf16);
  return dtype == DType::f32 ? f32 : bf16;
}

TEST(LlamaParity, TokenizerMatchesPythonSentencePiece) {
  const Tokenizer& tokenizer = generator(DType::f32).tokenizer();
  for (int i = 0; i < 3; ++i) {
    const std::string prompt = expected().metadata<std::string>("prompt" + std::to_string(i));
    EXPECT_EQ(tokenizer.encode(prompt), ids_of("prompt" + std::to_string(i) + ".ids")) << prompt;
    // Decoding skips BOS and gives the text back.
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(prompt)), prompt);
  }
}

TEST(LlamaParity, LogitsAtEveryPositionMatchPyTorchF32) {
  for (int i = 0; i < 3; ++i) {
    const std::string p = "prompt" + std::to_string(i);
    const HostBuffer logits = generator(DType::f32).prompt_logits(ids_of(p + ".ids"));
    const HostBuffer want = expected().get(p + ".logits");
    // {b=1, s, voc} vs [s, voc]; f32 throughout, summation order differs.
    EXPECT_TRUE(testing::all_close(logits.reshape(want.shape()), want, testing::Tolerance{1e-4, 1e-4}, p));
  }
}

TEST(LlamaParity, GreedyGenerationMatchesPyTorchExactly) {
  GenerateOptions options;
  options.max_new_tokens = 64;
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  for (int i = 0; i < 3; ++i) {
    const std::string p = "prompt" + std::to_string(i);
    const GenerateResult result = generator(DType::f32).generate_ids(ids_of(p + ".ids"), options);
    EXPECT_EQ(result.tokens, ids_of(p + ".greedy")) << p;
  }
}

TEST(LlamaParity, Bf16StaysCloseToPyTorch) {
  const HostBuffer logits = generator(DType::bf16).prompt_logits(ids_of("prompt0.ids"));
  const HostBuffer bf16_torch = expected().get("prompt0.logits_bf16");
  const HostBuffer f32_torch = expected().get("prompt0.logits");
  // Logits are returned in f32 but computed with bf16 weights and
  // activations: each layer adds relative errors of a few 2^-8.
  EXPECT_TRUE(
      testing::all_close(logits.reshape(f32_torch.shape()), f32_torch, testing::Tolerance{0.05, 0.25}, "vs f32"));
  EXPECT_TRUE(
      testing::all_close(logits.reshape(bf16_torch.shape()), bf16_torch, testing::Tolerance{0.05, 0.25}, "vs bf16"));
  // The most likely next token agrees at the last position.
  const int64_t voc = f32_torch.shape().dim(1), last = f32_torch.shape().dim(0) - 1;
  auto argmax = [&](const float* row) { return std::max_element(row, row + voc) - row; };
  EXPECT_EQ(argmax(logits.span<float>().data() + last * voc), argmax(f32_torch.span<float>().data() + last * voc));
}

TEST(LlamaParity, SamplingIsReproducibleBySeed) {
  GenerateOptions options;
  options.max_new_tokens = 12;
  options.sampling = {0.8, 20, 0.9};
  options.seed = 42;
  const auto a = generator(DType::f32).generate("And God said", options);
  const auto b = generator(DType::f32).generate("And God said", options);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.text, b.text);
  options.seed = 43;
  EXPECT_NE(generator(DType::f32).generate("And God said", options).tokens, a.tokens);
}

// A copy of the model directory with config.json edited by `edit`.
fs::path model_with_config(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("kiln_llama_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  for (const char* file : {"model.safetensors", "tokenizer.model"}) fs::copy_file(kModel / file, dir / file);
  std::ifstream in(kModel / "config.json");
  nlohmann::json config = nlohmann::json::parse(in);
  edit(config);
  std::ofstream(dir / "config.json") << config.dump(2);
  return dir;
}

// The 9-token prompts run as one 32-token chunk padded at its end; in a
// 12-position context that padding does not fit, so the prompt goes in
// exact chunks (8, then 1) and the context's last 3 positions are generated.
// Both give PyTorch's greedy tokens.
TEST(LlamaParity, APromptWhosePaddedChunkDoesNotFitTheContextGoesInExactChunks) {
  const fs::path dir = model_with_config("context12", [](nlohmann::json& c) { c["max_position_embeddings"] = 12; });
  Generator short_context(Platform::cpu(), dir, DType::f32);
  GenerateOptions options;
  options.max_new_tokens = 64;  // capped at the 3 positions left
  options.sampling.temperature = 0;
  options.stop_at_eos = false;
  const std::vector<int> prompt = ids_of("prompt1.ids"), greedy = ids_of("prompt1.greedy");
  ASSERT_EQ(prompt.size(), 9u);
  EXPECT_EQ(short_context.generate_ids(prompt, options).tokens, std::vector<int>(greedy.begin(), greedy.begin() + 3));
}

TEST(LlamaErrors, MissingConfigKey) {
  const fs::path dir = model_with_config("no_heads", [](nlohmann::json& c) { c.erase("num_attention_heads"); });
  EXPECT_ERROR(Generator(Platform::cpu(), dir, DType::f32), "config.json: 'num_attention_heads' is missing");
}

TEST(LlamaErrors, ConfigThatDoesNotMatchTheWeights) {
  const fs::path dir = model_with_config("wide", [](nlohmann::json& c) { c["intermediate_size"] = 999; });
  EXPECT_ERROR(Generator(Platform::cpu(), dir, DType::f32),
               "config.json does not match the weights: 'model.layers.0.mlp.gate_proj.weight' is [512,192] but the "
               "config implies [999,192]");
  const fs::path layers = model_with_config("layers", [](nlohmann::json& c) { c["num_hidden_layers"] = 5; });
  EXPECT_ERROR(Generator(Platform::cpu(), layers, DType::f32), "num_hidden_layers is 5 but the weights have 4 layers");
}

TEST(LlamaErrors, MissingTokenizer) {
  const fs::path dir = model_with_config("no_tokenizer", [](nlohmann::json&) {});
  fs::remove(dir / "tokenizer.model");
  EXPECT_ERROR(Generator(Platform::cpu(), dir, DType::f32), "tokenizer.model' does not exist");
}

TEST(LlamaErrors, PromptLongerThanTheContext) {
  const fs::path dir = model_with_config("short", [](nlohmann::json& c) { c["max_position_embeddings"] = 8; });
  Generator g(Platform::cpu(), dir, DType::f32);
  EXPECT_ERROR(g.generate("In the beginning God created the heaven and the earth.", {}),
               "but the model's context (max_position_embeddings) is 8");
}

}  // namespace
}  // namespace kiln::models
