#include "kiln/io/open.h"

#include "io_test.h"

namespace kiln::io {
namespace {

class Open : public IoTest {};
KILN_IO_TEST_SUITE(Open);

void expect_same_values(const HostBuffer& a, const HostBuffer& b) {
  ASSERT_EQ(a.shape(), b.shape());
  auto x = a.span<float>(), y = b.span<float>();
  EXPECT_TRUE(std::equal(x.begin(), x.end(), y.begin()));
}

// The sharded fixture and expected.safetensors hold the same tensors.
TEST_P(Open, ShardedIndexMatchesSingleFile) {
  BufferStore sharded = open_fixture("io/sharded/model.safetensors.index.json");
  BufferStore expected = open_fixture("io/sharded/expected.safetensors");
  EXPECT_EQ(sharded.names(), expected.names());
  for (const auto& name : expected.names()) expect_same_values(sharded.get(name), expected.get(name));
  EXPECT_TRUE(sharded.file_of("model.embed_tokens.weight").ends_with("model-00001-of-00002.safetensors"));
  EXPECT_TRUE(sharded.file_of("lm_head.weight").ends_with("model-00002-of-00002.safetensors"));
  EXPECT_EQ(sharded.metadata<int64_t>("total_size"), 752);
}

TEST_P(Open, DirectoryFindsIndexAndConfig) {
  BufferStore store = open_fixture("io/sharded");
  EXPECT_EQ(store.size(), 9u);
  EXPECT_EQ(store.count_layers("model.layers"), 3);
  EXPECT_EQ(store.metadata<int>("hidden_size"), 4);
  EXPECT_EQ(store.metadata<double>("rope_scaling.factor"), 8.0);
  EXPECT_EQ(store.metadata<std::string>("rope_scaling.rope_type"), "llama3");
  EXPECT_EQ(store.metadata<double>("rms_norm_eps"), 1e-5);
  EXPECT_EQ(store.metadata<bool>("tie_word_embeddings"), false);
  EXPECT_EQ(store.metadata<std::vector<int64_t>>("eos_token_id"), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(store.metadata<std::vector<std::string>>("architectures"), (std::vector<std::string>{"LlamaForCausalLM"}));
  EXPECT_TRUE(std::holds_alternative<std::monostate>(store.metadata().at("some_null")));
}

TEST_P(Open, DirectoryFindsSingleFile) {
  BufferStore store = open_fixture("io/single_dir");
  EXPECT_EQ(store.names(), (std::vector<std::string>{"a", "b.weight"}));
  EXPECT_EQ(store.metadata<int>("hidden_size"), 2);
  BufferStore without_config = open(KILN_FIXTURES "/io/single_dir", {.source = GetParam(), .load_config = false});
  EXPECT_FALSE(without_config.metadata().contains("hidden_size"));
  EXPECT_ERROR(without_config.metadata<int>("hidden_size"), "opened without its config.json");
}

TEST_P(Open, AMissingKeySaysThatNoConfigWasFound) {
  BufferStore store = open_fixture("io/all_dtypes.safetensors");  // no config.json beside it
  EXPECT_ERROR(store.metadata<int>("hidden_size"), "no metadata key 'hidden_size' (there is no config.json in '");
}

TEST_P(Open, MissingPathsAreErrors) {
  EXPECT_ERROR(open_fixture("io/does_not_exist.safetensors"), "does_not_exist.safetensors' does not exist");
  EXPECT_ERROR(open_fixture("malformed"), "expected model.safetensors");
}

}  // namespace
}  // namespace kiln::io
