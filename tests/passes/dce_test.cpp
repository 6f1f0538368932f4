#include "kiln/passes/dce.h"

#include <gtest/gtest.h>

#include "kiln/frontend/callback.h"

namespace kiln::passes {
namespace {

struct Effect {
  static CallbackConfig config() { return {.has_side_effect = true}; }
  void call(std::span<const HostBuffer>, std::span<HostBuffer>) {}
};

TEST(DeadCodeElimination, RemovesUnusedPureNodesKeepsParametersAndSideEffects) {
  ir::Graph g = trace(
      [](Tensor x, Tensor unused) {
        (void)(x.exp() * 2.0);  // dead
        callback<Effect>({x}, {Shape(DType::i32)});
        return x + 1.0;
      },
      Shape({{"n", 2}}), Shape({{"n", 2}}));
  const ir::Graph out = eliminate_dead_code(g);
  EXPECT_LT(out.nodes().size(), g.nodes().size());
  EXPECT_EQ(out.parameters().size(), 2u);
  int callbacks = 0, exps = 0;
  for (const ir::Node& n : out.nodes()) {
    callbacks += n.op == ir::Op::custom_call;
    exps += n.op == ir::Op::exp;
  }
  EXPECT_EQ(callbacks, 1);
  EXPECT_EQ(exps, 0);
  EXPECT_EQ(print(out),
            "%0 = parameter() {name=\"argument 0\"} : {n=2} f32\n"
            "%1 = parameter() {name=\"argument 1\"} : {n=2} f32\n"
            "%2 = custom_call(%0) {target=\"kiln.host_callback\", callback=\"kiln::passes::(anonymous "
            "namespace)::Effect\", type=\"kiln::passes::(anonymous namespace)::Effect\", aliases=[], "
            "has_side_effect} : {} i32\n"
            "%3 = constant() {value=[1]} : {} f32\n"
            "%4 = broadcast_in_dim(%3) {dims=[]} : {n=2} f32\n"
            "%5 = add(%0, %4) : {n=2} f32\n"
            "return %5\n");
}

}  // namespace
}  // namespace kiln::passes
