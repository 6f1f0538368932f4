// The llama family's other configuration paths, against PyTorch
// (tests/fixtures/make_nn_fixtures.py): tied embeddings (no lm_head.weight)
// and llama3 RoPE scaling, read from a Hugging Face config.json.
#include <gtest/gtest.h>

#include "kiln/io/open.h"
#include "kiln/models/llama.h"
#include "kiln/runtime/compile.h"
#include "support/compare.h"

namespace kiln::models::llama {
namespace {

TEST(LlamaConfig, TiedEmbeddingsAndLlama3RopeMatchPyTorch) {
  const io::BufferStore store = io::open(KILN_FIXTURES "/nn/tiny_tied_llama");
  const CausalLM model = populate<CausalLM>(store);
  check_shapes(model);
  EXPECT_FALSE(model.lm_head.has_value());
  EXPECT_TRUE(model.config.tie_word_embeddings);
  EXPECT_EQ(model.config.layer.rope.scaling.kind, nn::RopeScaling::Kind::llama3);
  EXPECT_EQ(model.config.layer.rope.scaling.original_max_position, 8);
  EXPECT_EQ(model.config.layer.num_kv_heads, 1);

  const io::BufferStore& expected = testing::fixture("nn/tiny_tied_llama_expected.safetensors");
  const HostBuffer tokens = expected.get("tokens").with_tags({"b", "s"});
  const Platform platform = Platform::cpu();
  const Shape cache = model.cache_shape(1, 16, DType::f32);
  auto exe = compile(platform, &CausalLM::forward, model, tokens.shape(), cache, cache, Shape(DType::i32));
  auto run = exe.prepare(load<CausalLM>(platform, store));
  auto [logits, k, v] = run(Buffer::from(platform, tokens), Buffer::from(platform, HostBuffer::allocate(cache)),
                            Buffer::from(platform, HostBuffer::allocate(cache)),
                            Buffer::from(platform, HostBuffer::allocate(Shape(DType::i32))));
  EXPECT_EQ(logits.shape().to_string(), "{b=1,s=12,voc=40} f32");
  EXPECT_TRUE(testing::all_close(logits.to_host(), expected.get("logits"), testing::Tolerance{1e-4, 1e-4}));
}

}  // namespace
}  // namespace kiln::models::llama
