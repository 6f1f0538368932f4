// llama2.c checkpoints (tests/fixtures/make_llama2c_fixture.py wrote two
// small random models in the legacy export format and the shipped
// vocabulary as tokenizer.bin, with the logits and greedy tokens of the
// independent PyTorch implementation on the same weights): kiln reads them
// zero copy, generates PyTorch's tokens, and refuses damaged files.
#include "kiln/models/llama2c.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "kiln/models/generate.h"
#include "support/compare.h"
#include "support/expect_error.h"

namespace kiln::models {
namespace {

namespace fs = std::filesystem;
const fs::path kDir = fs::path(KILN_FIXTURES) / "llama2c";

const io::BufferStore& expected() { return testing::fixture("llama2c/expected.safetensors"); }

std::vector<int> ids_of(const std::string& name) {
  auto s = expected().get(name).span<int32_t>();
  return {s.begin(), s.end()};
}

TEST(Llama2c, CheckpointsGivePyTorchsLogitsAndGreedyTokens) {
  for (const auto& [model, file] : {std::pair{"tied", "tiny.bin"}, {"untied", "tiny_untied.bin"}}) {
    Generator g(Platform::cpu(), kDir / file, DType::f32);
    GenerateOptions options;
    options.sampling.temperature = 0;
    options.stop_at_eos = false;
    for (int i = 0; i < 2; ++i) {
      const std::string p = std::string(model) + std::to_string(i);
      const std::string prompt = expected().metadata<std::string>("prompt" + std::to_string(i));
      EXPECT_EQ(g.tokenizer().encode(prompt), ids_of(p + ".ids")) << prompt;
      const HostBuffer want = expected().get(p + ".logits");
      const HostBuffer logits = g.prompt_logits(ids_of(p + ".ids"));
      EXPECT_TRUE(testing::all_close(logits.reshape(want.shape()), want, testing::Tolerance{1e-4, 1e-4}, p));
      const std::vector<int> greedy = ids_of(p + ".greedy");
      options.max_new_tokens = static_cast<int64_t>(greedy.size());
      EXPECT_EQ(g.generate_ids(ids_of(p + ".ids"), options).tokens, greedy) << p;
    }
  }
}

TEST(Llama2c, WeightsAreViewsOfTheMappedFile) {
  const io::BufferStore store = llama::open_llama2c(kDir / "tiny.bin");
  EXPECT_EQ(store.get("model.layers.1.self_attn.k_proj.weight").shape(), Shape({32, 64}));
  EXPECT_FALSE(store.contains("lm_head.weight"));  // shared with the embedding
  EXPECT_TRUE(store.metadata<bool>("tie_word_embeddings"));
  EXPECT_TRUE(llama::open_llama2c(kDir / "tiny_untied.bin").contains("lm_head.weight"));
}

// A copy of tiny.bin with `edit` applied to its bytes.
fs::path damaged(const std::string& name, const std::function<void(std::string&)>& edit) {
  std::ifstream in(kDir / "tiny.bin", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  edit(bytes);
  const fs::path dir = fs::path(::testing::TempDir()) / ("kiln_llama2c_" + name);
  fs::create_directories(dir);
  std::ofstream(dir / "model.bin", std::ios::binary) << bytes;
  fs::copy_file(kDir / "tokenizer.bin", dir / "tokenizer.bin", fs::copy_options::overwrite_existing);
  return dir / "model.bin";
}

TEST(Llama2cErrors, DamagedFilesAreClearErrors) {
  auto set_i32 = [](std::string& b, size_t at, int32_t v) { std::memcpy(b.data() + at, &v, 4); };
  EXPECT_ERROR(Generator(Platform::cpu(), damaged("short", [](std::string& b) { b.resize(20); }), DType::f32),
               "too short for a llama2.c header");
  EXPECT_ERROR(
      Generator(Platform::cpu(), damaged("truncated", [](std::string& b) { b.resize(b.size() - 4); }), DType::f32),
      "but a llama2.c checkpoint with this header");
  EXPECT_ERROR(
      Generator(Platform::cpu(), damaged("zero_heads", [&](std::string& b) { set_i32(b, 12, 0); }), DType::f32),
      "n_heads is 0");
  EXPECT_ERROR(
      Generator(Platform::cpu(), damaged("huge_dim", [&](std::string& b) { set_i32(b, 0, 1 << 30); }), DType::f32),
      "dim is 1073741824");
  const fs::path no_tokenizer = damaged("no_tokenizer", [](std::string&) {});
  fs::remove(no_tokenizer.parent_path() / "tokenizer.bin");
  EXPECT_ERROR(Generator(Platform::cpu(), no_tokenizer, DType::f32), "needs its tokenizer.bin beside it");
  const fs::path cut = damaged("cut_tokenizer", [](std::string&) {});
  fs::resize_file(cut.parent_path() / "tokenizer.bin", 1000);
  EXPECT_ERROR(Generator(Platform::cpu(), cut, DType::f32), "tokenizer.bin");
}

}  // namespace
}  // namespace kiln::models
