// Reference kernels for reduce and reduce_window against PyTorch/NumPy results
// in tests/fixtures/ops/reduction.safetensors (make_op_fixtures_reduction.py).
// Each data-driven test runs every case of its op in the fixture and fails if
// any tensor of those cases was not read; RefReductionFixture checks that
// every tensor of the file belongs to an op that is tested (dot and conv in
// contraction_test.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/io/buffer_store.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

constexpr const char* kFixture = "ops/reduction.safetensors";

// "reduce.sum.f32.a1." -> "sum".
std::string field(const std::string& name, int index) {
  size_t begin = 0;
  for (int i = 0; i < index; ++i) begin = name.find('.', begin) + 1;
  return name.substr(begin, name.find('.', begin) - begin);
}

ir::ReduceKind kind_of(const std::string& text) {
  using ir::ReduceKind;
  if (text == "sum") return ReduceKind::sum;
  if (text == "prod") return ReduceKind::prod;
  if (text == "max") return ReduceKind::max;
  if (text == "min") return ReduceKind::min;
  if (text == "and") return ReduceKind::and_;
  if (text == "or") return ReduceKind::or_;
  if (text == "argmax") return ReduceKind::argmax;
  if (text == "argmin") return ReduceKind::argmin;
  ADD_FAILURE() << "unknown reduce kind " << text;
  return ReduceKind::sum;
}

ir::Graph reduce_graph(const Shape& x, const ir::ReduceAttrs& attrs) {
  ir::Graph g;
  const ir::Value p = g.parameter(x);
  const ir::Value r = g.add(ir::Op::reduce, {p}, attrs);
  g.set_outputs(g.results(r.node));
  ir::verify(g);
  return g;
}

std::vector<HostBuffer> run_reduce(const Platform& platform, const HostBuffer& x, const ir::ReduceAttrs& attrs) {
  return testing::evaluate(platform, reduce_graph(x.shape(), attrs), {x});
}

ir::Graph window_graph(const Shape& x, const ir::ReduceWindowAttrs& attrs) {
  ir::Graph g;
  const ir::Value p = g.parameter(x);
  g.set_outputs({g.add(ir::Op::reduce_window, {p}, attrs)});
  ir::verify(g);
  return g;
}

template <typename T>
HostBuffer buffer(const Shape& shape, std::vector<T> values) {
  HostBuffer b = HostBuffer::allocate(shape);
  EXPECT_EQ(static_cast<size_t>(shape.count()), values.size());
  std::memcpy(b.mutable_data(), values.data(), values.size() * sizeof(T));
  return b;
}

class RefReduction : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefReduction);

TEST(RefReductionFixture, EveryTensorBelongsToATestedOp) {
  for (const std::string& name : testing::fixture(kFixture).names())
    EXPECT_TRUE(name.starts_with("reduce.") || name.starts_with("reduce_window.") || name.starts_with("dot.") ||
                name.starts_with("conv."))
        << name;
}

// ops x dtypes: sum, prod, max, min, argmax, argmin over f32, f64, bf16, f16,
// i8, u8, i32, i64; and, or over ints and bool; max, min over bool. Axis sets
// none / one / several / all, rank 0, empty dims, ties, NaN/Inf, wrapping
// integer sums and products, long f32 and bf16 sums, an i32 index dtype.
// Default tolerances: the fixture rounds float64 results once, as we do.
TEST_P(RefReduction, ReduceMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  testing::GraphBatch batch;
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("reduce", "expected")) {
    const HostBuffer& x = fixture.get(prefix + "x");
    ir::ReduceAttrs attrs{kind_of(field(prefix, 1)), fixture.axes(prefix + "axes")};
    const bool arg = attrs.kind == ir::ReduceKind::argmax || attrs.kind == ir::ReduceKind::argmin;
    ASSERT_EQ(arg, fixture.contains(prefix + "indices")) << prefix;
    if (arg) attrs.index_dtype = fixture.get(prefix + "indices").dtype();
    const HostBuffer expected = fixture.get(prefix + "expected");
    const HostBuffer indices = arg ? fixture.get(prefix + "indices") : HostBuffer();
    auto check = [=](const std::string& what) {
      return [=](const std::vector<HostBuffer>& out) {
        ASSERT_EQ(out.size(), arg ? 2u : 1u) << what;
        EXPECT_TRUE(testing::all_close(out[0], expected, what));
        if (arg) {
          EXPECT_TRUE(testing::all_close(out[1], indices, what + " indices"));
        }
      };
    };
    batch.add(reduce_graph(x.shape(), attrs), {x}, check(prefix));
    // The order the axes are listed in does not matter (argmax indices count
    // row-major over the reduced axes in ascending order).
    if (attrs.axes.size() > 1) {
      std::reverse(attrs.axes.begin(), attrs.axes.end());
      batch.add(reduce_graph(x.shape(), attrs), {x}, check(prefix + " reversed axes"));
    }
    ++count;
  }
  batch.run(platform());
  EXPECT_GE(count, 300);
  EXPECT_TRUE(fixture.all_read_under("reduce."));
}

// max/min pooling (torch max_pool1d/2d, padding ignored on all-negative
// inputs), sum pooling (avg_pool x window, zero padding counted), window and
// base dilation, asymmetric and negative padding, prod, rank 0, an empty
// result; f32, f64, bf16, f16, i8 (wrapping), u8, i32, i64.
TEST_P(RefReduction, ReduceWindowMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  testing::GraphBatch batch;
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("reduce_window", "expected")) {
    const HostBuffer& x = fixture.get(prefix + "x");
    const ir::ReduceWindowAttrs attrs{kind_of(field(prefix, 1)),        fixture.axes(prefix + "window"),
                                      fixture.axes(prefix + "strides"), fixture.axes(prefix + "pad_lo"),
                                      fixture.axes(prefix + "pad_hi"),  fixture.axes(prefix + "base_dil"),
                                      fixture.axes(prefix + "win_dil")};
    const HostBuffer expected = fixture.get(prefix + "expected");
    batch.add(window_graph(x.shape(), attrs), {x},
              [=](const std::vector<HostBuffer>& out) { EXPECT_TRUE(testing::all_close(out[0], expected, prefix)); });
    ++count;
  }
  batch.run(platform());
  EXPECT_GE(count, 25);
  EXPECT_TRUE(fixture.all_read_under("reduce_window."));
}

// u64 is ordered as unsigned (values above 2^63 are the largest) and sums
// wrap modulo 2^64; torch has no u64, so the values are worked out by hand.
TEST_P(RefReduction, UnsignedSixtyFourBit) {
  const uint64_t big = (uint64_t{1} << 63) + 5;
  const HostBuffer x = buffer<uint64_t>(Shape({4}, DType::u64), {1, big, 7, ~uint64_t{0}});
  auto value = [](const HostBuffer& b) { return b.span<uint64_t>()[0]; };
  EXPECT_EQ(value(run_reduce(platform(), x, {ir::ReduceKind::max, {0}})[0]), ~uint64_t{0});
  EXPECT_EQ(value(run_reduce(platform(), x, {ir::ReduceKind::min, {0}})[0]), 1u);
  EXPECT_EQ(value(run_reduce(platform(), x, {ir::ReduceKind::sum, {0}})[0]), big + 7);  // 1 + big + 7 + (2^64 - 1)
  const auto arg = run_reduce(platform(), x.slice(0, 0, 3).copy(), {ir::ReduceKind::argmax, {0}});
  EXPECT_EQ(value(arg[0]), big);
  EXPECT_EQ(arg[1].span<int64_t>()[0], 1);
}

// StableHLO max/min on floats follow IEEE maximum/minimum: +0 > -0.
TEST_P(RefReduction, SignedZeros) {
  const HostBuffer x = buffer<float>(Shape({2, 2}, DType::f32), {-0.0f, 0.0f, 0.0f, -0.0f});
  const HostBuffer max = run_reduce(platform(), x, {ir::ReduceKind::max, {1}})[0];
  const HostBuffer min = run_reduce(platform(), x, {ir::ReduceKind::min, {1}})[0];
  for (float v : max.span<float>()) EXPECT_FALSE(std::signbit(v));
  for (float v : min.span<float>()) EXPECT_TRUE(std::signbit(v));
}

// Results carry the IR's tags.
TEST_P(RefReduction, KeepsTags) {
  const HostBuffer x = buffer<float>(Shape({{"b", 2}, {"s", 3}}, DType::f32), {1, 2, 3, 4, 5, 6});
  const HostBuffer sum = run_reduce(platform(), x, {ir::ReduceKind::sum, {1}})[0];
  EXPECT_EQ(sum.shape().to_string(), "{b=2} f32");
  EXPECT_EQ(sum.span<float>()[0], 6.0f);
  EXPECT_EQ(sum.span<float>()[1], 15.0f);
}

TEST_P(RefReduction, Errors) {
  ir::Graph g;
  const ir::Value x = g.parameter(Shape({{"b", 4}, {"d", 8}}, DType::f32));
  EXPECT_ERROR(g.add(ir::Op::reduce, {x}, ir::ReduceAttrs{ir::ReduceKind::sum, {2}}), "[reduce]");
  EXPECT_ERROR(g.add(ir::Op::reduce, {x}, ir::ReduceAttrs{ir::ReduceKind::sum, {2}}), "{b=4,d=8} f32");
  EXPECT_ERROR(g.add(ir::Op::reduce, {x}, ir::ReduceAttrs{ir::ReduceKind::and_, {0}}), "[reduce]");
  const ir::Value empty = g.parameter(Shape({0, 3}, DType::f32));
  EXPECT_ERROR(g.add(ir::Op::reduce, {empty}, ir::ReduceAttrs{ir::ReduceKind::argmax, {0}}), "[reduce]");
  EXPECT_ERROR(g.add(ir::Op::reduce_window, {x},
                     ir::ReduceWindowAttrs{ir::ReduceKind::argmax, {1, 1}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, {1, 1}}),
               "[reduce_window]");
}

}  // namespace
}  // namespace kiln
