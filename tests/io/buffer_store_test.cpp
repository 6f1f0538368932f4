#include "kiln/io/buffer_store.h"

#include "io_test.h"

namespace kiln::io {
namespace {

class Store : public IoTest {};
KILN_IO_TEST_SUITE(Store);

TEST_P(Store, GetIsZeroCopy) {
  BufferStore store = open_fixture("io/sharded/expected.safetensors");
  const HostBuffer& a = store.get("model.norm.weight");
  EXPECT_TRUE(a.is_borrowed());
  EXPECT_EQ(a.data(), store.get("model.norm.weight").data());
  BufferStore copy = store;  // copies share the data
  EXPECT_EQ(copy.get("model.norm.weight").data(), a.data());
}

TEST_P(Store, CountLayersAndViews) {
  BufferStore store = open_fixture("io/sharded/expected.safetensors");
  EXPECT_EQ(store.count_layers("model.layers"), 3);
  EXPECT_EQ(store.count_layers("model.missing"), 0);
  BufferStore model = store.view("model");
  EXPECT_TRUE(model.contains("embed_tokens.weight"));
  EXPECT_FALSE(model.contains("lm_head.weight"));
  EXPECT_EQ(model.count_layers("layers"), 3);
  BufferStore layer1 = store.view("model.layers.1");
  EXPECT_EQ(layer1.names(), (std::vector<std::string>{"mlp.up_proj.weight", "self_attn.q_proj.weight"}));
  EXPECT_EQ(layer1.get("mlp.up_proj.weight").data(), store.get("model.layers.1.mlp.up_proj.weight").data());
}

TEST_P(Store, CountLayersRejectsGaps) {
  BufferStore store;
  HostBuffer x = HostBuffer::allocate(Shape({1}));
  store.add("h.0.w", x, "f");
  store.add("h.2.w", x, "f");
  store.add("h.10x.w", x, "f");  // not a layer number
  EXPECT_ERROR(store.count_layers("h"), "layers run up to 2 but layer 1 is missing");
}

TEST_P(Store, DuplicateNamesAcrossFiles) {
  BufferStore store;
  HostBuffer x = HostBuffer::allocate(Shape({1}));
  store.add("w", x, "a.safetensors");
  EXPECT_ERROR(store.add("w", x, "b.safetensors"), "tensor 'w' is in both 'a.safetensors' and 'b.safetensors'");
}

TEST_P(Store, MissingNamesSuggestSimilarKeys) {
  BufferStore store = open_fixture("io/sharded/expected.safetensors");
  // Wrong parameter suffix.
  EXPECT_ERROR(store.get("model.norm.bias"), "similar names: model.norm.weight");
  // Missing prefix.
  EXPECT_ERROR(store.get("layers.0.mlp.up_proj.weight"), "similar names: model.layers.0.mlp.up_proj.weight");
  // A typo in one component: the same layer's tensors come first.
  try {
    store.get("model.layers.2.self_attn.k_proj.weight");
    ADD_FAILURE();
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("no tensor named 'model.layers.2.self_attn.k_proj.weight'"), std::string::npos);
    EXPECT_NE(message.find("similar names: model.layers.2.self_attn.q_proj.weight"), std::string::npos) << message;
  }
  // Nothing similar at all.
  EXPECT_ERROR(store.get("zzz"), "no tensor named 'zzz' in the store (9 tensors)");
}

TEST_P(Store, TypedMetadata) {
  BufferStore store = open_fixture("io/sharded");
  EXPECT_EQ(store.metadata<int>("num_hidden_layers"), 3);
  EXPECT_EQ(store.metadata<float>("rope_theta"), 10000.0f);
  EXPECT_ERROR(store.metadata<int>("rope_theta"), "metadata 'rope_theta' is float 10000.0, not int");
  EXPECT_ERROR(store.metadata<std::string>("hidden_size"), "metadata 'hidden_size' is int 4, not string");
  EXPECT_ERROR(store.metadata<int>("no_such_key"), "no metadata key 'no_such_key'");
}

}  // namespace
}  // namespace kiln::io
