#include "kiln/backend/cpu/quantized_matmul.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/quant.h"

namespace kiln::cpu {
namespace {

#define KILN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

KILN_AVX512 float dot_f32_avx512(const float* a, const float* b, int64_t k) {
  const int64_t body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  __m512 a0 = _mm512_setzero_ps(), a1 = a0;
  int64_t i = 0;
  for (; i + 32 <= body; i += 32) {
    a0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), a0);
    a1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), a1);
  }
  for (; i < body; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), a0);
  if (tail != 0) a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, a + body), _mm512_maskz_loadu_ps(tail, b + body), a1);
  return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

float dot_f32(const float* a, const float* b, int64_t k, MatvecIsa isa) {
  if (isa != MatvecIsa::scalar) return dot_f32_avx512(a, b, k);
  float sum = 0;
  for (int64_t i = 0; i < k; ++i) sum += a[i] * b[i];
  return sum;
}

// Per-thread f32 scratch, grown on first use and then reused.
float* thread_scratch(size_t count) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < count) scratch.resize(count);
  return scratch.data();
}

}  // namespace

int64_t quantized_row_bytes(DType dtype, int64_t k) {
  return k / block_size(dtype) * static_cast<int64_t>(size_of(dtype));
}

void quantized_rows(DType dtype, const float* x, int64_t ldx, int64_t m, const std::byte* w, int64_t row_bytes,
                    int64_t k, int64_t n0, int64_t n1, float* y, int64_t ldy, MatvecIsa isa) {
  // Each row is dequantized into L1 once and dotted with every lhs row.
  float* row = thread_scratch(static_cast<size_t>(k));
  for (int64_t n = n0; n < n1; ++n) {
    dequantize_row(dtype, w + n * row_bytes, k, row);
    for (int64_t j = 0; j < m; ++j) y[j * ldy + n] = dot_f32(x + j * ldx, row, k, isa);
  }
}

void run_quantized_matmul(const MatmulShape& s, const void* lhs, const void* rhs, void* out) {
  if (!s.quantized || s.batch != 1 || !s.epilogue.empty() || s.result != DType::f32)
    fail("[dot_general] internal: a quantized matmul takes one f32 [M, K] x [N, K] product without post-ops");
  const DType dtype = *s.quantized;
  const int64_t m = s.m, n_total = s.n, k = s.k;
  const int64_t row_bytes = quantized_row_bytes(dtype, k);
  // The lhs as sgemm takes it: rows of K contiguous elements.
  const auto* a = static_cast<const float*>(lhs);
  int64_t lda = s.lhs_strides[1];
  std::vector<float> packed_lhs;
  if (s.lhs_strides[2] != 1 && k > 1) {
    packed_lhs.resize(static_cast<size_t>(m * k));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < k; ++j)
        packed_lhs[static_cast<size_t>(i * k + j)] = a[i * s.lhs_strides[1] + j * s.lhs_strides[2]];
    a = packed_lhs.data();
    lda = k;
  }
  if (m == 1) lda = k;
  // Tiles of about 256 KiB of f32 weights: dequantized once, then used for
  // every lhs row while they sit in the thread's L2.
  const int64_t tile = std::max<int64_t>(16, (int64_t{256} << 10) / (4 * k) / 16 * 16);
  const int64_t tiles = (n_total + tile - 1) / tile;
  const auto* blocks = static_cast<const std::byte*>(rhs);
  auto* c = static_cast<float*>(out);
  dnnl_status_t failed = dnnl_success;  // errors cannot leave the parallel loop
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t n0 = t * tile, rows = std::min(tile, n_total - n0);
    float* w = thread_scratch(static_cast<size_t>(tile * k));
    for (int64_t r = 0; r < rows; ++r) dequantize_row(dtype, blocks + (n0 + r) * row_bytes, k, w + r * k);
    // Row-major C = A [M, K] x W^T, W [rows, K]; single-threaded inside the parallel loop.
    const dnnl_status_t status = dnnl_sgemm('N', 'T', m, rows, k, 1.0f, a, lda, w, k, 0.0f, c + n0, n_total);
    if (status != dnnl_success) {
#pragma omp atomic write
      failed = status;
    }
  }
  if (failed != dnnl_success) fail("[dot_general] oneDNN sgemm failed ({})", static_cast<int>(failed));
}

}  // namespace kiln::cpu
