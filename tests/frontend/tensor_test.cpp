// The tracing API: shapes and tags of traced graphs, and its errors.
// Numerical checks of traced functions are in tensor_numeric_test.cpp.
#include "kiln/frontend/tensor.h"

#include <gtest/gtest.h>

#include <functional>

#include "kiln/frontend/trace.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

// Shape of the single output of the graph traced from `fn`.
template <typename F, typename... S>
Shape traced_shape(F fn, const S&... shapes) {
  ir::Graph g = trace(fn, shapes...);
  return g.shape(g.outputs().at(0));
}

const Shape bsd({{"b", 2}, {"s", 3}, {"d", 4}});

TEST(Tensor, TraceRecordsParametersInOrder) {
  ir::Graph g = trace([](Tensor x, Tensor y) { return x + y; }, Shape({{"a", 2}}), Shape({{"a", 2}}));
  ASSERT_EQ(g.parameters().size(), 2u);
  EXPECT_EQ(g.node(g.parameters()[0]).op, ir::Op::parameter);
  EXPECT_EQ(g.outputs().size(), 1u);
  EXPECT_EQ(g.node(g.outputs()[0].node).op, ir::Op::add);
}

TEST(Tensor, BroadcastAlignsByTags) {
  // bias {d} broadcasts over b and s; tags decide where, not positions.
  EXPECT_EQ(traced_shape([](Tensor x, Tensor b) { return x + b; }, bsd, Shape({{"d", 4}})), bsd);
  EXPECT_EQ(traced_shape([](Tensor x, Tensor b) { return x * b; }, bsd, Shape({{"s", 3}, {"b", 2}})), bsd);
  // The operand holding every tag of the other decides the order.
  EXPECT_EQ(traced_shape([](Tensor b, Tensor x) { return b * x; }, Shape({{"d", 4}}), bsd), bsd);
  // New axes on the right operand are appended.
  EXPECT_EQ(traced_shape([](Tensor x, Tensor y) { return x - y; }, Shape({{"b", 2}}), Shape({{"k", 5}})),
            Shape({{"b", 2}, {"k", 5}}));
  // Untagged operands broadcast numpy-style; scalars broadcast to anything.
  EXPECT_EQ(traced_shape([](Tensor x, Tensor y) { return x + y; }, Shape({3, 4}), Shape({4})), Shape({3, 4}));
  EXPECT_EQ(traced_shape([](Tensor x) { return x * 2.0 + 1.0; }, bsd), bsd);
}

TEST(Tensor, BroadcastErrors) {
  EXPECT_ERROR(trace([](Tensor x, Tensor y) { return x + y; }, bsd, Shape({{"d", 5}})),
               "[add] axis 'd' has 4 on the left and 5 on the right: lhs {b=2,s=3,d=4} f32, rhs {d=5} f32");
  EXPECT_ERROR(trace([](Tensor x, Tensor y) { return x + y; }, bsd, Shape({{"d", 4}}, DType::bf16)),
               "[add] operands have different dtypes (f32 and bf16); convert one explicitly");
  EXPECT_ERROR(trace([](Tensor x, Tensor y) { return x + y; }, Shape({3, 4}), Shape({5})),
               "[add] axis 1 from the right has 4 on the left and 5 on the right");
}

TEST(Tensor, DotContractsByTagAndBatchesSharedTags) {
  EXPECT_EQ(traced_shape([](Tensor x, Tensor w) { return x.dot(w, "d"); }, bsd, Shape({{"d", 4}, {"o", 6}})),
            Shape({{"b", 2}, {"s", 3}, {"o", 6}}));
  // q {b,h,s,hd} . k {b,h,t,hd} over hd: batch b,h.
  const Shape q({{"b", 2}, {"h", 4}, {"s", 5}, {"hd", 8}});
  const Shape k({{"b", 2}, {"h", 4}, {"t", 7}, {"hd", 8}});
  EXPECT_EQ(traced_shape([](Tensor a, Tensor b) { return a.dot(b, "hd"); }, q, k),
            Shape({{"b", 2}, {"h", 4}, {"s", 5}, {"t", 7}}));
  // Mixed precision: bf16 inputs, f32 result.
  EXPECT_EQ(traced_shape([](Tensor a, Tensor b) { return a.dot(b, {"d"}, DType::f32); },
                         Shape({{"b", 2}, {"d", 4}}, DType::bf16), Shape({{"d", 4}}, DType::bf16)),
            Shape({{"b", 2}}, DType::f32));
}

TEST(Tensor, DotErrors) {
  EXPECT_ERROR(trace([](Tensor x, Tensor w) { return x.dot(w, "d"); }, Shape({{"b", 4}, {"d", 512}}),
                     Shape({{"d", 256}, {"o", 64}})),
               "[dot] contracting axis 'd' has 512 on the left and 256 on the right: lhs {b=4,d=512} f32, rhs "
               "{d=256,o=64} f32");
  EXPECT_ERROR(trace([](Tensor x, Tensor w) { return x.dot(w, "k"); }, bsd, Shape({{"d", 4}})),
               "[dot] no axis 'k' on the left: lhs {b=2,s=3,d=4} f32, rhs {d=4} f32");
}

TEST(Tensor, SplitMergeTranspose) {
  const Shape x({{"b", 2}, {"s", 3}, {"d", 8}});
  EXPECT_EQ(traced_shape(
                [](Tensor t) {
                  return t.split_axis("d", {{"h", 2}, {"hd", auto_dim}});
                },
                x),
            Shape({{"b", 2}, {"s", 3}, {"h", 2}, {"hd", 4}}));
  EXPECT_EQ(traced_shape(
                [](Tensor t) {
                  return t.split_axis("d", {{"h", 2}, {"hd", auto_dim}}).transpose({"b", "h", "s", "hd"});
                },
                x),
            Shape({{"b", 2}, {"h", 2}, {"s", 3}, {"hd", 4}}));
  // merge moves the named axes together in the order given.
  EXPECT_EQ(traced_shape(
                [](Tensor t) {
                  return t.merge({"h", "hd"}, "d");
                },
                Shape({{"b", 2}, {"h", 2}, {"s", 3}, {"hd", 4}})),
            Shape({{"b", 2}, {"d", 8}, {"s", 3}}));
  EXPECT_ERROR(trace(
                   [](Tensor t) {
                     return t.split_axis("d", {{"h", 3}, {"hd", auto_dim}});
                   },
                   x),
               "[split_axis] parts do not multiply to the size 8 of axis 'd'");
  EXPECT_ERROR(trace(
                   [](Tensor t) {
                     return t.transpose({"b", "s"});
                   },
                   x),
               "[transpose] names 2 axes but the tensor has 3");
}

TEST(Tensor, ReductionsAndTags) {
  EXPECT_EQ(traced_shape([](Tensor t) { return t.sum("s"); }, bsd), Shape({{"b", 2}, {"d", 4}}));
  EXPECT_EQ(traced_shape([](Tensor t) { return t.softmax("d"); }, bsd), bsd);
  EXPECT_EQ(traced_shape([](Tensor t) { return t.argmax("d"); }, bsd), Shape({{"b", 2}, {"s", 3}}, DType::i64));
  EXPECT_EQ(traced_shape([](Tensor t) { return t.rename({{"d", "k"}}); }, bsd), Shape({{"b", 2}, {"s", 3}, {"k", 4}}));
  EXPECT_EQ(traced_shape(
                [](Tensor t) {
                  return t.with_tags({"x", "y", "z"});
                },
                Shape({2, 3, 4})),
            Shape({{"x", 2}, {"y", 3}, {"z", 4}}));
  EXPECT_ERROR(trace([](Tensor t) { return t.sum("q"); }, bsd), "[sum] no axis tagged 'q' in shape {b=2,s=3,d=4} f32");
}

// A missing tag is reported by the op the user called, not by a helper it uses.
TEST(Tensor, TagErrorsNameTheOp) {
  const std::vector<std::pair<std::string, std::function<Tensor(Tensor)>>> cases = {
      {"softmax", [](Tensor t) { return t.softmax("k"); }},
      {"mean", [](Tensor t) { return t.mean("k"); }},
      {"max", [](Tensor t) { return t.max("k"); }},
      {"argmax", [](Tensor t) { return t.argmax("k"); }},
      {"cumsum", [](Tensor t) { return t.cumsum("k"); }},
      {"sort", [](Tensor t) { return t.sort("k"); }},
      {"top_k", [](Tensor t) { return t.top_k(1, "k").first; }},
      {"slice", [](Tensor t) { return t.slice("k", 0, 1); }},
      {"merge",
       [](Tensor t) {
         return t.merge({"s", "k"}, "m");
       }},
      {"split_axis",
       [](Tensor t) {
         return t.split_axis("k", {{"a", 1}});
       }},
      {"squeeze", [](Tensor t) { return t.squeeze("k"); }},
      {"transpose",
       [](Tensor t) {
         return t.transpose({"d", "k", "b"});
       }},
      {"rename",
       [](Tensor t) {
         return t.rename({{"k", "x"}});
       }},
      {"reverse", [](Tensor t) { return t.reverse("k"); }},
      {"pad", [](Tensor t) { return t.pad("k", 1, 1, 0.0); }},
      {"concatenate",
       [](Tensor t) {
         return concatenate(std::vector<Tensor>{t, t}, "k");
       }},
  };
  for (const auto& [op, fn] : cases)
    EXPECT_ERROR(trace([&](Tensor t) { return fn(t); }, bsd),
                 "[" + op + "] no axis tagged 'k' in shape {b=2,s=3,d=4} f32");
}

TEST(Tensor, GatherSliceUpdateConcatenate) {
  EXPECT_EQ(traced_shape([](Tensor table, Tensor ids) { return table.gather("voc", ids); },
                         Shape({{"voc", 10}, {"d", 4}}), Shape({{"b", 2}, {"s", 3}}, DType::i32)),
            Shape({{"b", 2}, {"s", 3}, {"d", 4}}));
  EXPECT_EQ(traced_shape([](Tensor t) { return t.slice("s", 1, 3); }, bsd), Shape({{"b", 2}, {"s", 2}, {"d", 4}}));
  // A KV-cache style update: the new entry's axes are aligned by tag.
  EXPECT_EQ(traced_shape(
                [](Tensor cache, Tensor entry, Tensor pos) {
                  return cache.dynamic_update_slice({{"s", pos}}, entry);
                },
                bsd, Shape({{"d", 4}, {"s", 1}, {"b", 2}}), Shape(DType::i32)),
            bsd);
  EXPECT_EQ(traced_shape(
                [](Tensor a, Tensor b) {
                  return concatenate({a, b}, "s");
                },
                bsd, Shape({{"s", 5}, {"b", 2}, {"d", 4}})),
            Shape({{"b", 2}, {"s", 8}, {"d", 4}}));
}

TEST(Tensor, LeavesNeedATrace) {
  EXPECT_ERROR(scalar(1.0, DType::f32), "only be created inside kiln::trace()");
  EXPECT_ERROR(Tensor().shape(), "this Tensor is empty");
}

}  // namespace
}  // namespace kiln
