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

// Sums of K = 256 products of unit normals: f32 summation order differs
// from the reference's double sums by a few ulps of the partial sums...
const testing::Tolerance kTolerance{1e-4, 2e-4};
// ...and where the decode kernels quantize the activations to 8 bits per
// 32-block (the integer kernels), each sum moves by about
// sqrt(K) x |w| x step / sqrt(12), step = max|x| / 127 of a block: about
// 0.05 for these sums of ~16.
const testing::Tolerance kIntegerTolerance{2e-2, 0.3};

// The prefill tiles hold the reference's values exactly.
TEST(QuantizedMatmul, TileRowsAreTheReferenceDequantization) {
  for (const DType d : kTypes) {
    const int64_t k = 1024;
    const HostBuffer w = quantize(random_f32(Shape({3, k}), 9, 3.0f), d);
    std::vector<float> fast(static_cast<size_t>(k)), reference(static_cast<size_t>(k));
    for (int64_t r = 0; r < 3; ++r) {
      const std::byte* row = w.data() + r * quantized_row_bytes(d, k);
      dequantize_tile_row(d, row, k, fast.data());
      dequantize_row(d, row, k, reference.data());
      for (int64_t i = 0; i < k; ++i)
        ASSERT_EQ(fast[static_cast<size_t>(i)], reference[static_cast<size_t>(i)])
            << name(d) << " row " << r << " at " << i;
    }
  }
}

// Sums in double of x[j, :] . W[c, :] for the given x values (f32 or the
// 8-bit activations the integer kernels see, dequantized).
std::vector<double> double_sums(const std::vector<double>& x, const HostBuffer& w_f32, int64_t m, int64_t n,
                                int64_t k) {
  std::vector<double> out(static_cast<size_t>(m * n));
  for (int64_t j = 0; j < m; ++j)
    for (int64_t c = 0; c < n; ++c) {
      double sum = 0;
      for (int64_t i = 0; i < k; ++i)
        sum += x[static_cast<size_t>(j * k + i)] * w_f32.span<float>()[static_cast<size_t>(c * k + i)];
      out[static_cast<size_t>(j * n + c)] = sum;
    }
  return out;
}

// The exact path (each row dequantized) gives the f32 sums; the integer
// kernels give the sums of the weights against the activations as
// quantize_lhs() rounded them, whose rounding stays within half a step of
// each block's scale.
TEST(QuantizedMatmul, DecodeRowsMatchDoubleSumsForEveryTypeAndIsa) {
  constexpr int64_t n = 37;
  int integer_checked = 0;
  // 17 and 19 32-blocks: the kernels step 4 blocks at a time, then 2, then 1.
  for (const int64_t k : {512 + 32, 512 + 96})
    for (const DType d : kTypes) {
      const int64_t kd = k / block_size(d) * block_size(d);  // the k-quants take whole 256-blocks
      const HostBuffer w = quantize(random_f32(Shape({n, kd}), 1), d);
      const HostBuffer w_f32 = dequantize(w);
      for (int64_t m : {1, 3, 8}) {
        const HostBuffer x = random_f32(Shape({m, kd}), 2);
        const auto xs = x.span<float>();
        const std::vector<double> exact = double_sums({xs.begin(), xs.end()}, w_f32, m, n, kd);
        Q8Rows q8;
        std::vector<double> rounded;
        if (has_integer_kernel(d, best_matvec_isa())) {
          quantize_lhs(xs.data(), kd, m, kd, q8);
          for (int64_t i = 0; i < m * kd; ++i) {
            const double step = q8.lane_scale[static_cast<size_t>(i / 4)];
            rounded.push_back(q8.values[static_cast<size_t>(i)] * step);
            ASSERT_LE(std::abs(rounded.back() - xs[static_cast<size_t>(i)]), 0.5 * step + 1e-7) << i;
          }
        }
        const std::vector<double> integer =
            rounded.empty() ? std::vector<double>{} : double_sums(rounded, w_f32, m, n, kd);
        for (MatvecIsa isa : {MatvecIsa::scalar, MatvecIsa::avx512, MatvecIsa::avx512_bf16}) {
          if (isa > best_matvec_isa()) continue;
          const bool uses_integers = has_integer_kernel(d, isa);
          const std::vector<double>& want = uses_integers ? integer : exact;
          std::vector<float> y(static_cast<size_t>(m * n), -1.0f);
          quantized_rows(d, xs.data(), kd, uses_integers ? &q8 : nullptr, m, w.data(), quantized_row_bytes(d, kd), kd,
                         0, n, y.data(), n, isa);
          for (size_t i = 0; i < y.size(); ++i)
            ASSERT_NEAR(y[i], want[i], 1e-4 + 1e-4 * std::abs(want[i]))
                << name(d) << " m=" << m << " isa " << static_cast<int>(isa) << (uses_integers ? " (integer)" : "")
                << " at " << i;
          integer_checked += uses_integers ? 1 : 0;
        }
      }
    }
  if (integer_checked == 0) GTEST_SKIP() << "this CPU has no avx512_vnni: only the exact kernels were checked";
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
      const bool integer = rows <= kMaxMatvecRows && has_integer_kernel(d, best_matvec_isa());
      EXPECT_TRUE(testing::all_close(run(Platform::cpu()), run(Platform::reference()),
                                     integer ? kIntegerTolerance : kTolerance))
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
    const bool integer = s <= kMaxMatvecRows && has_integer_kernel(d, best_matvec_isa());
    EXPECT_TRUE(
        testing::all_close(run(Platform::cpu()), run(Platform::reference()), integer ? kIntegerTolerance : kTolerance))
        << "s " << s;
  }
}

}  // namespace
}  // namespace kiln::cpu
