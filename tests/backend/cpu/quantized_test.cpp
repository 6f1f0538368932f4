// Dots with block-quantized weights on the cpu backend (quantized_matmul.h)
// against the reference interpreter ("dequantize, then dot in f32", itself
// checked against gguf-py in tests/core/quant_test.cpp): every type, the
// decode kernels (1 to 8 lhs rows, each instruction set) and the prefill
// tiles (more rows, N not a multiple of a tile), through compile; and the
// embedding path (gather of rows, then dequantize).
#include <gtest/gtest.h>

#include <random>

#include "kiln/backend/cpu/quantized_matmul.h"
#include "kiln/core/quant.h"
#include "kiln/runtime/compile.h"
#include "support/compare.h"

namespace kiln::cpu {
namespace {

constexpr DType kTypes[] = {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1,
                            DType::q8_0, DType::q4_k, DType::q5_k, DType::q6_k};

HostBuffer random_f32(const Shape& shape, uint32_t seed, float scale = 1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, scale);
  std::vector<float> v(static_cast<size_t>(shape.count()));
  for (float& x : v) x = normal(rng);
  return HostBuffer::from_values(shape, v);
}

// Sums of K = 512 products of unit normals: f32 summation order differs
// from the reference's double sums by a few ulps of the partial sums.
const testing::Tolerance kTolerance{1e-4, 2e-4};

TEST(QuantizedMatmul, DecodeRowsMatchTheReferenceForEveryTypeAndIsa) {
  constexpr int64_t k = 512, n = 37;
  for (const DType d : kTypes) {
    const HostBuffer w = quantize(random_f32(Shape({n, k}), 1), d);
    const HostBuffer w_f32 = dequantize(w);
    for (int64_t m : {1, 3, 8}) {
      const HostBuffer x = random_f32(Shape({m, k}), 2);
      std::vector<double> want(static_cast<size_t>(m * n));
      for (int64_t j = 0; j < m; ++j)
        for (int64_t c = 0; c < n; ++c) {
          double sum = 0;
          for (int64_t i = 0; i < k; ++i)
            sum += double{x.span<float>()[static_cast<size_t>(j * k + i)]} *
                   w_f32.span<float>()[static_cast<size_t>(c * k + i)];
          want[static_cast<size_t>(j * n + c)] = sum;
        }
      for (MatvecIsa isa : {MatvecIsa::scalar, MatvecIsa::avx512, MatvecIsa::avx512_bf16}) {
        if (isa > best_matvec_isa()) continue;
        std::vector<float> y(static_cast<size_t>(m * n), -1.0f);
        quantized_rows(d, x.span<float>().data(), k, m, w.data(), quantized_row_bytes(d, k), k, 0, n, y.data(), n, isa);
        for (size_t i = 0; i < y.size(); ++i)
          ASSERT_NEAR(y[i], want[i], 1e-4 + 1e-4 * std::abs(want[i]))
              << name(d) << " m=" << m << " isa " << static_cast<int>(isa) << " at " << i;
      }
    }
  }
}

// x{s, k} . W{n, k} through compile, on the cpu backend and the reference.
TEST(QuantizedMatmul, CompiledDotsMatchTheReference) {
  for (const DType d : kTypes)
    for (int64_t rows : {1, 5, 8, 9, 70}) {  // decode kernels up to 8, prefill tiles beyond
      const int64_t k = 256, n = 300;        // n: several prefill tiles and a partial one
      const HostBuffer w = quantize(random_f32(Shape({{"n", n}, {"k", k}}), 3), d);
      const HostBuffer x = random_f32(Shape({{"s", rows}, {"k", k}}), 4);
      auto fn = [](Tensor a, Tensor b) { return a.dot(b, "k"); };
      auto run = [&](const Platform& p) {
        auto exe = compile_fn(p, fn, x.shape(), w.shape());
        return exe(Buffer::from(p, x), Buffer::from(p, w)).to_host();
      };
      EXPECT_TRUE(testing::all_close(run(Platform::cpu()), run(Platform::reference()), kTolerance))
          << name(d) << " rows " << rows;
    }
}

// The shapes a LLaMA layer gives: a residual add after the product (not a
// post-op of a quantized matmul, a kernel of its own), SwiGLU on two
// quantized products, an embedding gathered from a quantized table.
TEST(QuantizedMatmul, LayerShapedGraphsMatchTheReference) {
  const DType d = DType::q4_k;
  const Shape table({{"voc", 40}, {"d", 256}}, d), w({{"o", 64}, {"d", 256}}, d);
  for (int64_t s : {1, 12}) {
    auto fn = [](Tensor tokens, Tensor embed, Tensor gate, Tensor up) {
      const Tensor x = embed.gather("voc", tokens).convert(DType::f32);  // {s, d}
      const Tensor h = x.dot(gate, "d").silu() * x.dot(up, "d");         // {s, o}
      return h + x.slice("d", 0, 64).rename({{"d", "o"}});
    };
    std::vector<int32_t> picked;
    for (int64_t i = 0; i < s; ++i) picked.push_back(static_cast<int32_t>((i * 7) % 40));
    const HostBuffer tokens = HostBuffer::from_values(Shape({{"s", s}}, DType::i32), picked);
    const HostBuffer embed = quantize(random_f32(table.with_dtype(DType::f32), 5), d);
    const HostBuffer gate = quantize(random_f32(w.with_dtype(DType::f32), 6, 0.1f), d);
    const HostBuffer up = quantize(random_f32(w.with_dtype(DType::f32), 7, 0.1f), d);
    auto run = [&](const Platform& p) {
      auto exe = compile_fn(p, fn, tokens.shape(), table, w, w);
      return exe(Buffer::from(p, tokens), Buffer::from(p, embed), Buffer::from(p, gate), Buffer::from(p, up)).to_host();
    };
    EXPECT_TRUE(testing::all_close(run(Platform::cpu()), run(Platform::reference()), kTolerance)) << "s " << s;
  }
}

}  // namespace
}  // namespace kiln::cpu
