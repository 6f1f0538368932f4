// CSE, algebraic simplification and constant folding: each shrinks the
// graph the way it says, keeps the outputs' shapes (tags included) and
// computes the same values (checked on the reference interpreter).
#include <gtest/gtest.h>

#include "kiln/backend/reference/interpreter.h"
#include "kiln/frontend/callback.h"
#include "kiln/passes/cse.h"
#include "kiln/passes/dce.h"
#include "kiln/passes/fold.h"
#include "kiln/passes/simplify.h"
#include "support/compare.h"

namespace kiln::passes {
namespace {

int count(const ir::Graph& g, ir::Op op) {
  int n = 0;
  for (const ir::Node& node : g.nodes()) n += node.op == op;
  return n;
}

HostBuffer ramp(const Shape& s) {
  HostBuffer b = HostBuffer::allocate(s);
  auto v = b.mutable_span<float>();
  for (size_t i = 0; i < v.size(); ++i) v[i] = 0.25f * static_cast<float>(i) - 1.0f;
  return b;
}

// Same values and output shapes before and after.
void expect_same(const ir::Graph& before, const ir::Graph& after, const std::vector<HostBuffer>& inputs) {
  ir::verify(after);
  ASSERT_EQ(before.outputs().size(), after.outputs().size());
  for (size_t o = 0; o < before.outputs().size(); ++o)
    EXPECT_EQ(before.shape(before.outputs()[o]), after.shape(after.outputs()[o]));
  const auto a = reference::evaluate(before, inputs), b = reference::evaluate(after, inputs);
  for (size_t o = 0; o < a.size(); ++o) EXPECT_TRUE(testing::all_close(b[o], a[o], testing::Tolerance{0, 0}));
}

TEST(Cse, MergesEqualNodesButNotCallbacks) {
  struct Tap {
    void call(std::span<const HostBuffer>, std::span<HostBuffer>) {}
  };
  const ir::Graph g = trace(
      [](Tensor x) {
        Tensor a = x.exp() * 2.0, b = x.exp() * 2.0;  // one exp, one mul, one constant after CSE
        Tensor t1 = callback<Tap>({x}, {x.shape()})[0], t2 = callback<Tap>({x}, {x.shape()})[0];
        return std::make_tuple(a + b, t1 + t2);
      },
      Shape({{"n", 4}}));
  const ir::Graph out = eliminate_common_subexpressions(g);
  EXPECT_EQ(count(g, ir::Op::exp), 2);
  EXPECT_EQ(count(out, ir::Op::exp), 1);
  EXPECT_EQ(count(out, ir::Op::mul), 1);
  EXPECT_EQ(count(out, ir::Op::custom_call), 2);
  ir::verify(out);
}

TEST(Simplify, FoldsMovementChainsAndIdentities) {
  const Shape s({{"a", 2}, {"b", 3}, {"c", 4}});
  const ir::Graph g = trace(
      [](Tensor x) {
        Tensor y = x.transpose({"c", "a", "b"}).transpose({"a", "b", "c"});           // identity
        Tensor z = y.convert(DType::f32) * 1.0;                                       // identities
        Tensor r = z.merge({"b", "c"}, "bc").split_axis("bc", {{"b", 3}, {"c", 4}});  // identity in dims
        return r.with_tags({"x", "y", "z"});                                          // tags only
      },
      s);
  const ir::Graph out = eliminate_dead_code(simplify(g));  // what the chains left behind is dead
  EXPECT_EQ(count(out, ir::Op::transpose), 0) << print(out);
  EXPECT_EQ(count(out, ir::Op::convert), 0) << print(out);
  EXPECT_EQ(count(out, ir::Op::mul), 0) << print(out);
  EXPECT_LE(count(out, ir::Op::reshape), 1) << print(out);  // at most the tag-only one at the output
  expect_same(g, out, {ramp(s)});
}

TEST(Fold, EvaluatesConstantSubgraphsWithinTheSizeLimit) {
  const ir::Graph g = trace(
      [](Tensor x) {
        Tensor scale = (scalar(2.0, DType::f32) * 3.0).exp();  // all constant: folds to one value
        return x * scale;
      },
      Shape({{"n", 4}}));
  const ir::Graph out = fold_constants(g, reference::evaluate_node);
  EXPECT_EQ(count(out, ir::Op::exp), 0) << print(out);
  expect_same(g, out, {ramp(Shape({{"n", 4}}))});
  // A large result stays a computation.
  const ir::Graph big =
      trace([](Tensor x) { return x + scalar(1.0, DType::f32).broadcast(x.shape()).exp(); }, Shape({{"n", 4096}}));
  EXPECT_EQ(count(fold_constants(big, reference::evaluate_node), ir::Op::exp), 1);
}

}  // namespace
}  // namespace kiln::passes
