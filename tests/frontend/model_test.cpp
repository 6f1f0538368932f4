// Model reflection: struct fields <-> weight names, populate() and its errors.
#include "kiln/frontend/model.h"

#include <fmt/format.h>
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

// Typos are suggested by edit distance per dotted component.
struct Gated {
  nn::Linear gtae, up;  // 'gtae': a typo in the model
};
KILN_FIELDS(Gated, gtae, up)
struct Head {
  nn::Linear lm_haed;  // a typo at the top level
};
KILN_FIELDS(Head, lm_haed)
struct Mlp {
  nn::Linear gate, up, down;
};
KILN_FIELDS(Mlp, gate, up, down)
struct Blocks {
  std::vector<Mlp> blocks;
};
KILN_FIELDS(Blocks, blocks)

std::string populate_error(auto populate_call) {
  try {
    populate_call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Model, MisspellingsAreSuggestedByEditDistance) {
  io::BufferStore gated;
  for (const char* name : {"down.weight", "gate.weight", "up.weight"}) gated.add(name, zeros({2, 2}), "test");
  EXPECT_NE(populate_error([&] {
              populate<Gated>(gated, LoadOptions{.unused = UnusedWeights::ignore});
            }).find("gtae.weight (similar: gate.weight)"),
            std::string::npos);

  io::BufferStore head;
  head.add("lm_head.weight", zeros({2, 2}), "test");
  head.add("norm.weight", zeros({2}), "test");
  const std::string head_error = populate_error([&] { populate<Head>(head); });
  EXPECT_NE(head_error.find("lm_haed.weight (similar: lm_head.weight)"), std::string::npos) << head_error;

  // The file misspells 'gate': its own name comes before other layers' gates.
  io::BufferStore blocks;
  for (int layer = 0; layer < 3; ++layer)
    for (const char* part : {"gate", "up", "down"})
      blocks.add(fmt::format("blocks.{}.{}.weight", layer, layer == 2 && part == std::string("gate") ? "gaet" : part),
                 zeros({2, 2}), "test");
  const std::string blocks_error = populate_error([&] { populate<Blocks>(blocks); });
  EXPECT_NE(blocks_error.find("blocks.2.gate.weight (similar: blocks.2.gaet.weight, "), std::string::npos)
      << blocks_error;
}

struct Layered {
  std::vector<Mlp> layer;  // the file has layers.N.*
};
KILN_FIELDS(Layered, layer)

TEST(Model, AnEmptyLayerVectorIsAnErrorNamingTheNearestPrefix) {
  io::BufferStore store;
  for (int layer = 0; layer < 2; ++layer)
    for (const char* part : {"gate", "up", "down"})
      store.add(fmt::format("layers.{}.{}.weight", layer, part), zeros({2, 2}), "test");
  EXPECT_ERROR(populate<Layered>(store),
               "1 layer vector finds no layers:\n  layer: no tensors named 'layer.0.*' "
               "(did you mean 'layers'?)");
}

TEST(Model, UnusedWeightsAreReportedOrRefused) {
  io::BufferStore store = net_store();
  store.add("layers.0.rotary_emb.inv_freq", zeros({2}), "test");
  store.add("extra.weight", zeros({2}), "test");
  ::testing::internal::CaptureStderr();
  populate<Net>(store);
  populate<Net>(store);  // the same warning is said once
  const std::string warned = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warned.find("kiln: warning: 2 weights in the store are not used by the model: extra.weight, "
                        "layers.0.rotary_emb.inv_freq"),
            std::string::npos)
      << warned;
  EXPECT_EQ(warned.find("warning", warned.find("warning") + 1), std::string::npos) << warned;

  EXPECT_ERROR(populate<Net>(store, LoadOptions{.unused = UnusedWeights::error}),
               "[populate] 2 weights in the store are not used by the model");
  EXPECT_ERROR(populate<Net>(store, LoadOptions{.unused = UnusedWeights::error, .allow_unused = {"extra"}}),
               "1 weight in the store is not used by the model: layers.0.rotary_emb.inv_freq");
  EXPECT_NO_THROW(populate<Net>(
      store, LoadOptions{.unused = UnusedWeights::error, .allow_unused = {"extra.weight", "layers.0.rotary_emb"}}));
  ::testing::internal::CaptureStderr();
  populate<Net>(store, LoadOptions{.unused = UnusedWeights::ignore});
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST(Model, DeclaredTensorsCannotBeUsedOutsideATrace) {
  Net net = populate<Net>(net_store());
  EXPECT_ERROR(net.embed.weight + net.embed.weight, "is only declared (a model weight outside compile())");
}

}  // namespace
}  // namespace kiln
