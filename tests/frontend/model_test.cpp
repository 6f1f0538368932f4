// Model reflection: struct fields <-> weight names, populate() and its errors.
#include "kiln/frontend/model.h"

#include <gtest/gtest.h>

#include "kiln/nn/layers.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

struct Block {
  nn::Linear proj;
  std::optional<Tensor> gate;  // absent in some checkpoints
  int width = 0;               // configuration, not a weight
};
struct Net {
  nn::Embedding embed;
  std::vector<Block> layers;
  std::array<Tensor, 2> heads;
  std::optional<nn::LayerNorm> final_norm;
  int64_t layer_count = 0;
  std::string name;

  void init(const io::BufferStore& store) {
    layer_count = store.count_layers("layers");
    name = store.metadata().contains("name") ? store.metadata<std::string>("name") : "unnamed";
  }
};
KILN_FIELDS(Block, proj, gate, width)
KILN_FIELDS(Net, embed, layers, heads, final_norm, layer_count, name)

HostBuffer zeros(std::initializer_list<int64_t> dims) { return HostBuffer::allocate(Shape(dims)); }

io::BufferStore net_store(const std::string& prefix = "") {
  io::BufferStore store;
  auto add = [&](const std::string& name, HostBuffer b) { store.add(prefix + name, std::move(b), "test"); };
  add("embed.weight", zeros({10, 4}));
  add("layers.0.proj.weight", zeros({4, 4}));
  add("layers.0.proj.bias", zeros({4}));
  add("layers.0.gate", zeros({4}));
  add("layers.1.proj.weight", zeros({4, 4}));  // no bias, no gate
  add("layers.2.proj.weight", zeros({4, 4}));
  add("heads.0", zeros({4, 2}));
  add("heads.1", zeros({4, 3}));
  store.metadata().set("name", std::string("tiny"));
  return store;
}

std::vector<std::string> tensor_names(Net& net) {
  std::vector<std::string> names;
  for_each_tensor(net, "", [&](const std::string& name, Tensor&) { names.push_back(name); });
  return names;
}

TEST(Model, PopulateWalksNestedVectorArrayOptional) {
  Net net = populate<Net>(net_store());
  EXPECT_EQ(net.layers.size(), 3u);
  EXPECT_EQ(net.layer_count, 3);
  EXPECT_EQ(net.name, "tiny");
  EXPECT_TRUE(net.layers[0].proj.bias.has_value());
  EXPECT_FALSE(net.layers[1].proj.bias.has_value());
  EXPECT_TRUE(net.layers[0].gate.has_value());
  EXPECT_FALSE(net.layers[2].gate.has_value());
  EXPECT_FALSE(net.final_norm.has_value());
  EXPECT_EQ(net.heads[1].shape(), Shape({4, 3}));
  EXPECT_EQ(net.layers[2].proj.weight.shape(), Shape({4, 4}));
  EXPECT_TRUE(net.embed.weight.is_declared_only());
  EXPECT_EQ(tensor_names(net),
            (std::vector<std::string>{"embed.weight", "layers.0.proj.weight", "layers.0.proj.bias", "layers.0.gate",
                                      "layers.1.proj.weight", "layers.2.proj.weight", "heads.0", "heads.1"}));
}

TEST(Model, PrefixIsStripped) {
  Net net = populate<Net>(net_store("model."), "model");
  EXPECT_EQ(net.layers.size(), 3u);
  EXPECT_EQ(net.embed.weight.shape(), Shape({10, 4}));
}

TEST(Model, EveryMissingWeightIsListedWithSuggestions) {
  io::BufferStore store;
  store.add("embed.weights", zeros({10, 4}), "test");  // typo'd name
  store.add("heads.0", zeros({4, 2}), "test");
  try {
    populate<Net>(store);
    FAIL() << "populate accepted a store without embed.weight and heads.1";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("2 weights are missing"), std::string::npos) << message;
    EXPECT_NE(message.find("embed.weight (similar: embed.weights)"), std::string::npos) << message;
    EXPECT_NE(message.find("heads.1 (similar: heads.0)"), std::string::npos) << message;
  }
}

TEST(Model, DeclaredTensorsCannotBeUsedOutsideATrace) {
  Net net = populate<Net>(net_store());
  EXPECT_ERROR(net.embed.weight + net.embed.weight, "is only declared (a model weight outside compile())");
}

}  // namespace
}  // namespace kiln
