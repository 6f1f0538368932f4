// The decode matrix-vector kernels (backend/cpu/matvec.h), each instruction
// set this CPU runs, against sums in double precision of the same products:
// 1 to 8 lhs rows, f32, bf16 and f16 weights, K with and without a vector
// tail, N not a multiple of the row block, rows with padding, every epilogue
// (with per-row and per-column extra inputs), f32, bf16 and f16 results.
// The whole program path (a decode-shaped dot with a residual add and SwiGLU
// through compile, and a prompt-shaped one on packed f16 weights) is checked
// against the reference interpreter too.
#include "kiln/backend/cpu/matvec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "kiln/core/dtype.h"
#include "kiln/frontend/trace.h"
#include "kiln/runtime/compile.h"
#include "support/compare.h"

namespace kiln::cpu {
namespace {

struct Case {
  int64_t k, n, stride;
  DType dtype, result;
  std::vector<PostOp> epilogue;
  int64_t m = 1, ldx = 0;  // lhs rows, `ldx` apart (0: k)
};

double load(const std::vector<uint16_t>& half, const std::vector<float>& f32, DType dtype, int64_t i) {
  const auto at = static_cast<size_t>(i);
  return dtype == DType::bf16 ? bf16_to_f32(half[at]) : dtype == DType::f16 ? f16_to_f32(half[at]) : f32[at];
}

uint16_t to_half(DType dtype, float v) { return dtype == DType::f16 ? f32_to_f16(v) : f32_to_bf16(v); }

void check(const Case& c, MatvecIsa isa) {
  std::mt19937 rng(static_cast<uint32_t>(c.k * 131 + c.n + c.m));
  std::normal_distribution<float> normal;
  const int64_t ldx = c.ldx > 0 ? c.ldx : c.k;
  const auto elements = static_cast<size_t>(c.n * c.stride);
  std::vector<float> x32(static_cast<size_t>(c.m * ldx)), w32(elements);
  std::vector<uint16_t> x16(x32.size()), w16(elements);
  for (size_t i = 0; i < x32.size(); ++i) x16[i] = to_half(c.dtype, x32[i] = normal(rng));
  for (size_t i = 0; i < elements; ++i) w16[i] = to_half(c.dtype, w32[i] = normal(rng));
  // Extra inputs of the binary post-ops: f32, one per output ({m, n}), or
  // one per column ({n}).
  std::vector<std::vector<float>> extras;
  std::vector<const void*> extra_ptrs;
  for (const PostOp& op : c.epilogue)
    if (op.binary()) {
      extras.emplace_back(static_cast<size_t>(op.per_column ? c.n : c.m * c.n));
      for (float& v : extras.back()) v = normal(rng);
    }
  for (const auto& e : extras) extra_ptrs.push_back(e.data());

  MatmulShape s;
  s.m = c.m, s.n = c.n, s.k = c.k;
  s.lhs_strides = {c.m * ldx, ldx, 1};
  s.rhs_strides = {c.n * c.stride, 1, c.stride};
  s.operand = c.dtype;
  s.compute = c.dtype == DType::f16 ? DType::f32 : c.dtype;
  s.result = c.result;
  s.epilogue = c.epilogue;
  ASSERT_TRUE(is_matvec(s));
  const auto outputs = static_cast<size_t>(c.m * c.n);
  std::vector<float> out32(outputs);
  std::vector<uint16_t> out16(outputs);
  const bool half = c.dtype != DType::f32;
  run_matvec(s, half ? static_cast<const void*>(x16.data()) : x32.data(),
             half ? static_cast<const void*>(w16.data()) : w32.data(),
             c.result != DType::f32 ? static_cast<void*>(out16.data()) : out32.data(), extra_ptrs.data(), isa);

  for (int64_t j = 0; j < c.m; ++j)
    for (int64_t n = 0; n < c.n; ++n) {
      double sum = 0, magnitude = 0;
      for (int64_t i = 0; i < c.k; ++i) {
        const double p = load(x16, x32, c.dtype, j * ldx + i) * load(w16, w32, c.dtype, n * c.stride + i);
        sum += p;
        magnitude += std::abs(p);
      }
      double v = sum, slack = magnitude * static_cast<double>(c.k) * 0x1p-24;  // f32 summation, any order
      size_t e = 0;
      for (const PostOp& op : c.epilogue) {
        const double y = op.binary() ? extras[e++][static_cast<size_t>(op.per_column ? n : j * c.n + n)] : 0;
        switch (op.kind) {
          case PostOp::Kind::add:
            v += y;
            break;
          case PostOp::Kind::sub:
            v -= y;
            break;
          case PostOp::Kind::mul:
            v *= y, slack *= std::abs(y);
            break;
          case PostOp::Kind::swish:
            v = v / (1 + std::exp(-v));
            slack *= 1.1;
            break;
          case PostOp::Kind::logistic:
            v = 1 / (1 + std::exp(-v));
            break;
          case PostOp::Kind::tanh:
            v = std::tanh(v);
            break;
          case PostOp::Kind::relu:
            v = std::max(v, 0.0);
            break;
        }
      }
      const auto at = static_cast<size_t>(j * c.n + n);
      const double got = c.result == DType::f32 ? out32[at] : load(out16, out32, c.result, j * c.n + n);
      const double rounding = c.result == DType::bf16 ? 0x1p-8 : c.result == DType::f16 ? 0x1p-11 : 1e-6;
      const double tolerance = slack + 1e-6 + std::abs(v) * rounding;
      ASSERT_NEAR(got, v, tolerance) << "row " << j << ", column " << n << " of m=" << c.m << " k=" << c.k
                                     << " n=" << c.n << " isa " << static_cast<int>(isa);
    }
}

TEST(Matvec, EveryKernelMatchesDoublePrecisionSums) {
  using K = PostOp::Kind;
  const std::vector<Case> cases = {
      {64, 16, 64, DType::f32, DType::f32, {}},
      {37, 13, 37, DType::f32, DType::f32, {}},   // vector tail, row remainder
      {100, 9, 128, DType::f32, DType::f32, {}},  // padded rows
      {64, 16, 64, DType::bf16, DType::bf16, {}},
      {1000, 23, 1000, DType::bf16, DType::f32, {}},
      {33, 7, 40, DType::bf16, DType::bf16, {{K::add, DType::f32}}},
      {96, 12, 96, DType::bf16, DType::bf16, {{K::swish}, {K::mul, DType::f32}}},  // SwiGLU
      {50, 5, 50, DType::f32, DType::f32, {{K::sub, DType::f32}, {K::tanh}, {K::relu}, {K::logistic}}},
      // several lhs rows (a short prompt chunk), padded ones among them
      {64, 16, 64, DType::f32, DType::f32, {}, 2},
      {37, 13, 40, DType::f32, DType::bf16, {{K::add, DType::f32}}, 3, 45},
      {1000, 23, 1000, DType::bf16, DType::f32, {}, 8},
      {33, 7, 40, DType::bf16, DType::bf16, {{K::add, DType::f32, true}, {K::mul, DType::f32}}, 5, 36},
      {96, 12, 96, DType::bf16, DType::bf16, {{K::swish}, {K::mul, DType::f32}}, 8},
      {50, 5, 50, DType::f32, DType::f32, {{K::sub, DType::f32}, {K::tanh}, {K::relu}, {K::logistic}}, 7},
      {17, 9, 17, DType::bf16, DType::f32, {}, 4},
      {70, 11, 70, DType::f32, DType::f32, {{K::add, DType::f32, true}}, 6},
      // f16 weights and activations, summed in f32
      {64, 16, 64, DType::f16, DType::f16, {}},
      {1000, 23, 1000, DType::f16, DType::f32, {}},
      {37, 13, 40, DType::f16, DType::f16, {}, 3, 45},
      {96, 12, 96, DType::f16, DType::f32, {{K::swish}, {K::mul, DType::f32}}, 8},
      {17, 9, 17, DType::f16, DType::f16, {}, 5},
  };
  for (MatvecIsa isa : {MatvecIsa::scalar, MatvecIsa::avx512, MatvecIsa::avx512_bf16}) {
    if (isa > best_matvec_isa()) continue;
    for (const Case& c : cases) check(c, isa);
  }
}

TEST(Matvec, NotForBatchesManyRowsOrPackedLayouts) {
  MatmulShape s;
  s.m = 1, s.n = 8, s.k = 16;
  s.lhs_strides = {16, 16, 1};
  s.rhs_strides = {128, 1, 16};
  EXPECT_TRUE(is_matvec(s));
  MatmulShape eight_rows = s;
  eight_rows.m = 8;
  EXPECT_TRUE(is_matvec(eight_rows));
  MatmulShape nine_rows = s;
  nine_rows.m = 9;  // compute-bound from here on: oneDNN on packed weights
  EXPECT_FALSE(is_matvec(nine_rows));
  MatmulShape batched = s;
  batched.batch = 2;
  EXPECT_FALSE(is_matvec(batched));
  MatmulShape k_strided = s;
  k_strided.rhs_strides = {128, 8, 1};  // [K, N] row-major: N is contiguous, not K
  EXPECT_FALSE(is_matvec(k_strided));
  MatmulShape widened = s;
  widened.operand = DType::bf16;  // computed in f32: oneDNN's packed path
  EXPECT_FALSE(is_matvec(widened));
}

// A decode step's shape through compile: x{d} . W{out, d} + residual, and
// SwiGLU's gate/up pair, on the cpu backend against the reference.
TEST(Matvec, DecodeShapedDotsThroughCompile) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    const Shape x({{"b", 1}, {"s", 1}, {"d", 70}}, dtype), w({{"o", 45}, {"d", 70}}, dtype),
        r({{"b", 1}, {"s", 1}, {"o", 45}}, dtype);
    auto fn = [](Tensor a, Tensor gate, Tensor up, Tensor residual) {
      return (a.dot(gate, "d").silu() * a.dot(up, "d")) + residual;
    };
    const auto cpu = compile_fn(Platform::cpu(), fn, x, w, w, r);
    const auto reference = compile_fn(Platform::reference(), fn, x, w, w, r);
    std::vector<Buffer> cpu_args, reference_args;
    std::mt19937 rng(7);
    std::normal_distribution<float> normal;
    for (const Shape& shape : {x, w, w, r}) {
      HostBuffer h = HostBuffer::allocate(shape.with_dtype(DType::f32));
      for (float& v : h.mutable_span<float>()) v = normal(rng);
      HostBuffer typed = dtype == DType::f32 ? h : HostBuffer::allocate(shape);
      if (dtype != DType::f32) {
        auto dst = typed.mutable_span<uint16_t>();
        auto src = h.span<float>();
        for (size_t i = 0; i < dst.size(); ++i) dst[i] = to_half(dtype, src[i]);
      }
      cpu_args.push_back(Buffer::from(Platform::cpu(), typed));
      reference_args.push_back(Buffer::from(Platform::reference(), typed));
    }
    const HostBuffer got = cpu(cpu_args[0], cpu_args[1], cpu_args[2], cpu_args[3]).to_host();
    const HostBuffer want =
        reference(reference_args[0], reference_args[1], reference_args[2], reference_args[3]).to_host();
    // bf16: the epilogue rounds once where the reference rounds each op;
    // f16 (no epilogue fusion: its values stay kernels) rounds as it does.
    const testing::Tolerance tolerance = dtype == DType::bf16  ? testing::Tolerance{0.05, 0.1}
                                         : dtype == DType::f16 ? testing::Tolerance{0.02, 0.02}
                                                               : testing::Tolerance{1e-4, 1e-4};
    EXPECT_TRUE(testing::all_close(got, want, tolerance, std::string(name(dtype))));
  }
}

}  // namespace
}  // namespace kiln::cpu
