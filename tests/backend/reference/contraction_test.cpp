// Reference kernels for dot_general and convolution against PyTorch/NumPy
// results in tests/fixtures/ops/reduction.safetensors
// (make_op_fixtures_reduction.py). Each data-driven test runs every case of
// its op in the fixture and fails if any tensor of those cases was not read.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "kiln/core/element.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

// dot and conv cases share the reduction fixture file.
constexpr const char* kFixture = "ops/reduction.safetensors";

ir::Graph binary_graph(ir::Op op, const Shape& lhs, const Shape& rhs, ir::Attributes attrs) {
  ir::Graph g;
  const ir::Value a = g.parameter(lhs);
  const ir::Value b = g.parameter(rhs);
  g.set_outputs({g.add(op, {a, b}, std::move(attrs))});
  ir::verify(g);
  return g;
}

// dot(|lhs|, |rhs|) in f64: the scale of the rounding error of each result element.
ir::Graph abs_dot_graph(const Shape& lhs, const Shape& rhs, ir::DotAttrs attrs) {
  ir::Graph g;
  const ir::Value a = g.add(ir::Op::abs, {g.parameter(lhs)});
  const ir::Value b = g.add(ir::Op::abs, {g.parameter(rhs)});
  attrs.result = DType::f64;
  g.set_outputs({g.add(ir::Op::dot_general, {a, b}, attrs)});
  return g;
}

// convolution(|lhs|, |rhs|) in f64, as abs_dot_graph.
ir::Graph abs_convolution_graph(const Shape& lhs, const Shape& rhs, const ir::ConvolutionAttrs& attrs) {
  ir::Graph g;
  const ir::Value a = g.add(ir::Op::convert, {g.add(ir::Op::abs, {g.parameter(lhs)})}, ir::ConvertAttrs{DType::f64});
  const ir::Value b = g.add(ir::Op::convert, {g.add(ir::Op::abs, {g.parameter(rhs)})}, ir::ConvertAttrs{DType::f64});
  g.set_outputs({g.add(ir::Op::convolution, {a, b}, attrs)});
  return g;
}

// |got - expected| <= default tolerance + relative * magnitude, elementwise.
::testing::AssertionResult within_accumulation_bound(const HostBuffer& got, const HostBuffer& expected,
                                                     const HostBuffer& magnitude, double relative,
                                                     const std::string& what) {
  if (!std::ranges::equal(got.shape().dims(), expected.shape().dims()) || got.dtype() != expected.dtype())
    return ::testing::AssertionFailure() << what << ": got " << got.shape().to_string();
  const testing::Tolerance tol = testing::default_tolerance(expected.dtype());
  const size_t size = size_of(got.dtype());
  for (int64_t i = 0; i < got.shape().count(); ++i) {
    const double g = load_double(got.dtype(), got.data() + i * static_cast<int64_t>(size));
    const double e = load_double(expected.dtype(), expected.data() + i * static_cast<int64_t>(size));
    const double m = magnitude.span<double>()[static_cast<size_t>(i)];
    if (!(std::abs(g - e) <= tol.atol + tol.rtol * std::abs(e) + relative * m))
      return ::testing::AssertionFailure()
             << what << "[" << i << "]: got " << g << ", expected " << e << " (bound " << relative * m << ")";
  }
  return ::testing::AssertionSuccess();
}

template <typename T>
HostBuffer buffer(const Shape& shape, std::vector<T> values) {
  HostBuffer b = HostBuffer::allocate(shape);
  EXPECT_EQ(static_cast<size_t>(shape.count()), values.size());
  std::memcpy(b.mutable_data(), values.data(), values.size() * sizeof(T));
  return b;
}

class RefContraction : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefContraction);

// Plain, batched (leading, middle, two permuted batch axes), several and
// permuted contracting axes, vector dot, outer products, an empty contracting
// axis and a 1000-term dot in f32/f64; mixed precision bf16 -> f32/bf16,
// f16 -> f32/f16; integers i8 -> i32, i8 -> i8 and i32, i64 (wrapping),
// u8 -> u32. Default tolerances: the fixture rounds float64 results once.
TEST_P(RefContraction, DotGeneralMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  testing::GraphBatch batch;
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("dot", "expected")) {
    const HostBuffer expected = fixture.get(prefix + "expected");
    const ir::DotAttrs attrs{fixture.axes(prefix + "lhs_batch"), fixture.axes(prefix + "rhs_batch"),
                             fixture.axes(prefix + "lhs_contracting"), fixture.axes(prefix + "rhs_contracting"),
                             expected.dtype()};
    const HostBuffer &lhs = fixture.get(prefix + "lhs"), &rhs = fixture.get(prefix + "rhs");
    const ir::Graph graph = binary_graph(ir::Op::dot_general, lhs.shape(), rhs.shape(), attrs);
    if (GetParam() == "reference" || !is_float(expected.dtype())) {
      batch.add(graph, {lhs, rhs},
                [=](const std::vector<HostBuffer>& out) { EXPECT_TRUE(testing::all_close(out[0], expected, prefix)); });
    } else {
      // Optimized backends accumulate float dots in f32 (the IR allows it),
      // the reference in f64: the bound is K * 2^-24 * sum |a||b| per element,
      // with sum |a||b| computed by the reference.
      int64_t k = 1;
      for (int64_t a : attrs.lhs_contracting) k *= lhs.shape().dim(static_cast<int>(a));
      const HostBuffer magnitude =
          testing::evaluate(Platform::reference(), abs_dot_graph(lhs.shape(), rhs.shape(), attrs), {lhs, rhs})[0];
      batch.add(graph, {lhs, rhs}, [=](const std::vector<HostBuffer>& out) {
        EXPECT_TRUE(within_accumulation_bound(out[0], expected, magnitude, static_cast<double>(k) * 0x1p-24, prefix));
      });
    }
    ++count;
  }
  batch.run(platform());
  EXPECT_GE(count, 20);
  EXPECT_TRUE(fixture.all_read_under("dot."));
}

// 1-D, 2-D and 3-D; strides, symmetric, asymmetric and negative padding,
// rhs dilation, groups and depthwise, lhs dilation (= conv_transpose1d/2d,
// and with groups and cropping), an empty batch, a kernel larger than the
// input; f32, f64, bf16, f16, i32 and i8 (wrapping).
TEST_P(RefContraction, ConvolutionMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  testing::GraphBatch batch;
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("conv", "expected")) {
    const ir::ConvolutionAttrs attrs{fixture.axes(prefix + "strides"), fixture.axes(prefix + "pad_lo"),
                                     fixture.axes(prefix + "pad_hi"),  fixture.axes(prefix + "lhs_dil"),
                                     fixture.axes(prefix + "rhs_dil"), fixture.scalar(prefix + "groups")};
    const HostBuffer &lhs = fixture.get(prefix + "lhs"), &rhs = fixture.get(prefix + "rhs");
    const HostBuffer expected = fixture.get(prefix + "expected");
    const ir::Graph graph = binary_graph(ir::Op::convolution, lhs.shape(), rhs.shape(), attrs);
    if (GetParam() == "reference" || !is_float(expected.dtype())) {
      batch.add(graph, {lhs, rhs},
                [=](const std::vector<HostBuffer>& out) { EXPECT_TRUE(testing::all_close(out[0], expected, prefix)); });
    } else {
      // oneDNN accumulates in f32: the bound is K * 2^-24 * sum |a||b| per
      // element as for dots, K the features per group times the window.
      int64_t k = rhs.shape().dim(1);
      for (int i = 2; i < rhs.shape().rank(); ++i) k *= rhs.shape().dim(i);
      const HostBuffer magnitude = testing::evaluate(
          Platform::reference(), abs_convolution_graph(lhs.shape(), rhs.shape(), attrs), {lhs, rhs})[0];
      batch.add(graph, {lhs, rhs}, [=](const std::vector<HostBuffer>& out) {
        EXPECT_TRUE(within_accumulation_bound(out[0], expected, magnitude, static_cast<double>(k) * 0x1p-24, prefix));
      });
    }
    ++count;
  }
  batch.run(platform());
  EXPECT_GE(count, 20);
  EXPECT_TRUE(fixture.all_read_under("conv."));
}

// Contraction results keep the IR's tags: batch, then lhs free, then rhs free.
TEST_P(RefContraction, DotLayoutAndTags) {
  // lhs[b, i, k] = b*100 + i*10 + k, rhs[k, b, j] = 1 if k == j else 0
  // (an identity per batch), so result[b, i, j] = lhs[b, i, j].
  std::vector<float> lhs_values, rhs_values;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 4; ++k) lhs_values.push_back(static_cast<float>(b * 100 + i * 10 + k));
  for (int k = 0; k < 4; ++k)
    for (int b = 0; b < 2; ++b)
      for (int j = 0; j < 4; ++j) rhs_values.push_back(k == j ? 1.0f : 0.0f);
  const HostBuffer lhs = buffer(Shape({{"b", 2}, {"s", 3}, {"d", 4}}, DType::f32), lhs_values);
  const HostBuffer rhs = buffer(Shape({{"d", 4}, {"b", 2}, {"o", 4}}, DType::f32), rhs_values);
  const HostBuffer out = testing::evaluate(
      platform(),
      binary_graph(ir::Op::dot_general, lhs.shape(), rhs.shape(), ir::DotAttrs{{0}, {1}, {2}, {0}, DType::f32}),
      {lhs, rhs})[0];
  EXPECT_EQ(out.shape().to_string(), "{b=2,s=3,o=4} f32");
  EXPECT_TRUE(testing::all_close(out, lhs.reshape(Shape({2, 3, 4}, DType::f32))));
}

TEST_P(RefContraction, Errors) {
  ir::Graph g;
  const ir::Value lhs = g.parameter(Shape({{"b", 4}, {"d", 512}}, DType::f32));
  const ir::Value rhs = g.parameter(Shape({{"d", 256}, {"o", 64}}, DType::f32));
  const ir::DotAttrs dot{{}, {}, {1}, {0}, DType::f32};
  EXPECT_ERROR(g.add(ir::Op::dot_general, {lhs, rhs}, dot), "[dot_general] contracting axis");
  EXPECT_ERROR(g.add(ir::Op::dot_general, {lhs, rhs}, dot), "lhs {b=4,d=512} f32, rhs {d=256,o=64} f32");

  const ir::Value image = g.parameter(Shape({1, 4, 5, 5}, DType::f32));
  const ir::Value kernel = g.parameter(Shape({6, 2, 3, 3}, DType::f32));
  const ir::ConvolutionAttrs conv{{1, 1}, {0, 0}, {0, 0}, {1, 1}, {1, 1}, 3};  // 3 does not divide 4 features
  EXPECT_ERROR(g.add(ir::Op::convolution, {image, kernel}, conv), "[convolution]");
  const ir::ConvolutionAttrs wrong_per_group{{1, 1}, {0, 0}, {0, 0}, {1, 1}, {1, 1}, 1};  // needs rhs [O, 4, ...]
  EXPECT_ERROR(g.add(ir::Op::convolution, {image, kernel}, wrong_per_group), "[convolution]");
}

}  // namespace
}  // namespace kiln
