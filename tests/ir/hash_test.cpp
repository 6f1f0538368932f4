// The canonical graph hash: equal for equal graphs built separately,
// different when anything that changes the computation differs.
#include "kiln/ir/hash.h"

#include <gtest/gtest.h>

#include "kiln/frontend/callback.h"
#include "kiln/frontend/trace.h"

namespace kiln {
namespace {

ir::Graph scaled(double factor, const Shape& shape = Shape({{"n", 4}})) {
  return trace([&](Tensor x) { return (x * factor).exp(); }, shape);
}

TEST(GraphHash, SameGraphSameHash) {
  EXPECT_EQ(ir::hash(scaled(2.0)), ir::hash(scaled(2.0)));
  EXPECT_EQ(ir::hash(scaled(2.0)).hex().size(), 32u);
}

TEST(GraphHash, ConstantsShapesTagsAndDtypesCount) {
  const Hash128 base = ir::hash(scaled(2.0));
  EXPECT_NE(base, ir::hash(scaled(3.0)));                                  // constant bytes
  EXPECT_NE(base, ir::hash(scaled(2.0, Shape({{"n", 5}}))));               // dims
  EXPECT_NE(base, ir::hash(scaled(2.0, Shape({{"m", 4}}))));               // tags
  EXPECT_NE(base, ir::hash(scaled(2.0, Shape({{"n", 4}}, DType::bf16))));  // dtypes
}

struct Tap {
  static kiln::CallbackConfig config() { return {.has_side_effect = true, .aliases = {0}}; }
  void call(std::span<const HostBuffer>, std::span<HostBuffer>) {}
};

TEST(GraphHash, CallbacksCountByName) {
  auto with = [](std::string name) {
    return trace([&](Tensor x) { return callback<Tap>({x}, {x.shape()}, name)[0]; }, Shape({{"n", 2}}));
  };
  EXPECT_EQ(ir::hash(with("a")), ir::hash(with("a")));
  EXPECT_NE(ir::hash(with("a")), ir::hash(with("b")));
}

TEST(Hasher, StringsAreLengthPrefixedAndBytesChunkingDoesNotMatter) {
  Hasher ab_c, a_bc;
  ab_c.string("ab"), ab_c.string("c");
  a_bc.string("a"), a_bc.string("bc");
  EXPECT_NE(ab_c.finish(), a_bc.finish());
  const std::string text = "the quick brown fox jumps over the lazy dog";
  Hasher whole, pieces;
  whole.bytes(text.data(), text.size());
  pieces.bytes(text.data(), 3);
  pieces.bytes(text.data() + 3, 20);
  pieces.bytes(text.data() + 23, text.size() - 23);
  EXPECT_EQ(whole.finish(), pieces.finish());
  EXPECT_EQ(whole.finish(), hash_bytes(text));
  EXPECT_NE(hash_bytes(text), hash_bytes(text.substr(1)));
}

}  // namespace
}  // namespace kiln
