// Functions traced with the Tensor API, run on the reference backend and
// compared with PyTorch (tests/fixtures/make_frontend_fixtures.py).
#include <gtest/gtest.h>

#include "kiln/backend/reference/interpreter.h"
#include "kiln/frontend/trace.h"
#include "support/compare.h"

namespace kiln {
namespace {

const io::BufferStore& fx() { return testing::fixture("frontend/compositions.safetensors"); }

// x {b=2, s=3, d=5} from the fixture.
HostBuffer x() { return fx().get("x").with_tags({"b", "s", "d"}); }

template <typename F>
HostBuffer run1(F fn, const HostBuffer& input) {
  ir::Graph g = trace(fn, input.shape());
  return reference::evaluate(g, {input}).at(0);
}

template <typename F>
HostBuffer run2(F fn, const HostBuffer& a, const HostBuffer& b) {
  ir::Graph g = trace(fn, a.shape(), b.shape());
  return reference::evaluate(g, {a, b}).at(0);
}

// Composite functions round at every step in f32, so allow a few ulps more
// than a single correctly rounded op.
const testing::Tolerance kComposite{1e-5, 1e-6};

TEST(TensorNumeric, Activations) {
  EXPECT_TRUE(
      testing::all_close(run1([](Tensor t) { return t.softmax("d"); }, x()), fx().get("softmax_d"), kComposite));
  EXPECT_TRUE(
      testing::all_close(run1([](Tensor t) { return t.softmax("s"); }, x()), fx().get("softmax_s"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.gelu(); }, x()), fx().get("gelu_erf"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.gelu(GeluApproximation::tanh); }, x()),
                                 fx().get("gelu_tanh"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.silu(); }, x()), fx().get("silu"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.relu(); }, x()), fx().get("relu"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.sigmoid(); }, x()), fx().get("sigmoid"), kComposite));
}

TEST(TensorNumeric, Reductions) {
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.mean("s"); }, x()), fx().get("mean_s"), kComposite));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.max("d"); }, x()), fx().get("max_d")));
  EXPECT_TRUE(testing::all_close(run1([](Tensor t) { return t.argmax("d"); }, x()), fx().get("argmax_d")));
  auto layer_norm = [](Tensor t) {
    const Tensor centered = t - t.mean("d");
    return centered * ((centered * centered).mean("d") + 1e-5).rsqrt();
  };
  EXPECT_TRUE(testing::all_close(run1(layer_norm, x()), fx().get("layer_norm_d"), kComposite));
}

TEST(TensorNumeric, BroadcastByTags) {
  ir::Graph g = trace([](Tensor t, Tensor bias, Tensor scale) { return (t + bias) * scale; }, x().shape(),
                      fx().get("bias").with_tags({"d"}).shape(), fx().get("scale").with_tags({"s"}).shape());
  auto out = reference::evaluate(g, {x(), fx().get("bias").with_tags({"d"}), fx().get("scale").with_tags({"s"})});
  EXPECT_TRUE(testing::all_close(out.at(0), fx().get("x_plus_bias_times_scale"), kComposite));
}

TEST(TensorNumeric, AttentionScoresByTags) {
  HostBuffer q = fx().get("q").with_tags({"b", "h", "s", "hd"});
  HostBuffer k = fx().get("k").with_tags({"b", "h", "t", "hd"});
  HostBuffer scores = run2([](Tensor a, Tensor b) { return a.dot(b, "hd"); }, q, k);
  EXPECT_EQ(scores.shape().to_string(), "{b=2,h=2,s=3,t=4} f32");
  EXPECT_TRUE(testing::all_close(scores, fx().get("scores"), kComposite));
}

TEST(TensorNumeric, SplitTransposeMerge) {
  HostBuffer y = fx().get("y").with_tags({"b", "s", "d"});
  HostBuffer heads = run1(
      [](Tensor t) {
        return t.split_axis("d", {{"h", 2}, {"hd", auto_dim}}).transpose({"b", "h", "s", "hd"});
      },
      y);
  EXPECT_TRUE(testing::all_close(heads, fx().get("y_heads")));
  HostBuffer back = run1(
      [](Tensor t) {
        return t.split_axis("d", {{"h", 2}, {"hd", auto_dim}})
            .transpose({"b", "h", "s", "hd"})
            .merge({"h", "hd"}, "d")
            .transpose({"b", "s", "d"});
      },
      y);
  EXPECT_TRUE(testing::all_close(back, fx().get("y")));
}

TEST(TensorNumeric, EmbeddingGatherClampsIds) {
  HostBuffer table = fx().get("table").with_tags({"voc", "d"});
  HostBuffer ids = fx().get("ids").with_tags({"b", "s"});
  HostBuffer embedded = run2([](Tensor t, Tensor i) { return t.gather("voc", i); }, table, ids);
  EXPECT_EQ(embedded.shape().to_string(), "{b=2,s=3,d=3} f32");
  EXPECT_TRUE(testing::all_close(embedded, fx().get("embedded")));
}

}  // namespace
}  // namespace kiln
