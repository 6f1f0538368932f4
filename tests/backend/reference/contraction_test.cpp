// Reference kernels for dot_general and convolution against PyTorch/NumPy
// results in tests/fixtures/ops/reduction.safetensors
// (make_op_fixtures_reduction.py). Each data-driven test runs every case of
// its op in the fixture and fails if any tensor of those cases was not read.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "kiln/backend/reference/interpreter.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

// dot and conv cases share the reduction fixture file.
constexpr const char* kFixture = "ops/reduction.safetensors";

HostBuffer run(ir::Op op, const HostBuffer& lhs, const HostBuffer& rhs, ir::Attributes attrs) {
  ir::Graph g;
  const ir::Value a = g.parameter(lhs.shape());
  const ir::Value b = g.parameter(rhs.shape());
  g.set_outputs({g.add(op, {a, b}, std::move(attrs))});
  ir::verify(g);
  return reference::evaluate(g, std::vector<HostBuffer>{lhs, rhs})[0];
}

template <typename T>
HostBuffer buffer(const Shape& shape, std::vector<T> values) {
  HostBuffer b = HostBuffer::allocate(shape);
  EXPECT_EQ(static_cast<size_t>(shape.count()), values.size());
  std::memcpy(b.mutable_data(), values.data(), values.size() * sizeof(T));
  return b;
}

// Plain, batched (leading, middle, two permuted batch axes), several and
// permuted contracting axes, vector dot, outer products, an empty contracting
// axis and a 1000-term dot in f32/f64; mixed precision bf16 -> f32/bf16,
// f16 -> f32/f16; integers i8 -> i32, i8 -> i8 and i32, i64 (wrapping),
// u8 -> u32. Default tolerances: the fixture rounds float64 results once.
TEST(RefContraction, DotGeneralMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("dot", "expected")) {
    SCOPED_TRACE(prefix);
    const HostBuffer& expected = fixture.get(prefix + "expected");
    const ir::DotAttrs attrs{fixture.axes(prefix + "lhs_batch"), fixture.axes(prefix + "rhs_batch"),
                             fixture.axes(prefix + "lhs_contracting"), fixture.axes(prefix + "rhs_contracting"),
                             expected.dtype()};
    EXPECT_TRUE(testing::all_close(
        run(ir::Op::dot_general, fixture.get(prefix + "lhs"), fixture.get(prefix + "rhs"), attrs), expected, prefix));
    ++count;
  }
  EXPECT_GE(count, 20);
  EXPECT_TRUE(fixture.all_read_under("dot."));
}

// 1-D, 2-D and 3-D; strides, symmetric, asymmetric and negative padding,
// rhs dilation, groups and depthwise, lhs dilation (= conv_transpose1d/2d,
// and with groups and cropping), an empty batch, a kernel larger than the
// input; f32, f64, bf16, f16, i32 and i8 (wrapping).
TEST(RefContraction, ConvolutionMatchesTorch) {
  testing::TrackedFixture fixture(kFixture);
  int count = 0;
  for (const std::string& prefix : fixture.case_prefixes("conv", "expected")) {
    SCOPED_TRACE(prefix);
    const ir::ConvolutionAttrs attrs{fixture.axes(prefix + "strides"), fixture.axes(prefix + "pad_lo"),
                                     fixture.axes(prefix + "pad_hi"),  fixture.axes(prefix + "lhs_dil"),
                                     fixture.axes(prefix + "rhs_dil"), fixture.scalar(prefix + "groups")};
    EXPECT_TRUE(
        testing::all_close(run(ir::Op::convolution, fixture.get(prefix + "lhs"), fixture.get(prefix + "rhs"), attrs),
                           fixture.get(prefix + "expected"), prefix));
    ++count;
  }
  EXPECT_GE(count, 20);
  EXPECT_TRUE(fixture.all_read_under("conv."));
}

// Contraction results keep the IR's tags: batch, then lhs free, then rhs free.
TEST(RefContraction, DotLayoutAndTags) {
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
  const HostBuffer out = run(ir::Op::dot_general, lhs, rhs, ir::DotAttrs{{0}, {1}, {2}, {0}, DType::f32});
  EXPECT_EQ(out.shape().to_string(), "{b=2,s=3,o=4} f32");
  EXPECT_TRUE(testing::all_close(out, lhs.reshape(Shape({2, 3, 4}, DType::f32))));
}

TEST(RefContraction, Errors) {
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
