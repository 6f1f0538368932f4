#include "kiln/backend/cpu/matvec.h"

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*()
// values and then warn about them at -O2.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kiln/core/dtype.h"
#include "kiln/core/error.h"

namespace kiln::cpu {
namespace {

// The fewest rows handed to a thread at once.
constexpr int64_t kRowBlock = 4;

float bf16_bits_to_f32(uint16_t bits) {
  const uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

// --- the dot products of rows [n0, n1) with x, into y (f32) ----------------

void rows_f32_scalar(const float* x, const float* w, int64_t stride, int64_t k, int64_t n0, int64_t n1, float* y) {
  for (int64_t n = n0; n < n1; ++n) {
    const float* row = w + n * stride;
    float sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += x[i] * row[i];
    y[n] = sum;
  }
}

void rows_bf16_scalar(const uint16_t* x, const uint16_t* w, int64_t stride, int64_t k, int64_t n0, int64_t n1,
                      float* y) {
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* row = w + n * stride;
    float sum = 0;
    for (int64_t i = 0; i < k; ++i) sum += bf16_bits_to_f32(x[i]) * bf16_bits_to_f32(row[i]);
    y[n] = sum;
  }
}

#define KILN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define KILN_AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))

// Each thread streams its rows one after another (one sequential stream is
// what the hardware prefetchers follow best), four accumulators deep along
// K so the loads overlap; x stays in L1.
KILN_AVX512 void rows_f32_avx512(const float* x, const float* w, int64_t stride, int64_t k, int64_t n0, int64_t n1,
                                 float* y) {
  const int64_t body4 = k / 64 * 64, body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const float* r = w + n * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i < body4; i += 64) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(x + i), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 16), _mm512_loadu_ps(x + i + 16), a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 32), _mm512_loadu_ps(x + i + 32), a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i < body; i += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(r + i), _mm512_loadu_ps(x + i), a0);
    if (tail != 0)
      a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(tail, r + body), _mm512_maskz_loadu_ps(tail, x + body), a1);
    y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

// bf16 without avx512_bf16: widen 16 elements at a time (a bf16 is the top
// half of an f32) against x already widened to f32.
// (Lambdas do not inherit a function's target, so the loads are functions.)
KILN_AVX512 inline __m512 load_widened(const uint16_t* p) {
  const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
}
KILN_AVX512 inline __m512 load_widened(__mmask16 mask, const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(mask, p)), 16));
}
KILN_AVX512_BF16 inline __m512bh load_bf16(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
KILN_AVX512_BF16 inline __m512bh load_bf16(__mmask32 mask, const uint16_t* p) {
  return (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
}

KILN_AVX512 void rows_bf16_avx512(const float* x, const uint16_t* w, int64_t stride, int64_t k, int64_t n0, int64_t n1,
                                  float* y) {
  const int64_t body4 = k / 64 * 64, body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* r = w + n * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i < body4; i += 64) {
      a0 = _mm512_fmadd_ps(load_widened(r + i), _mm512_loadu_ps(x + i), a0);
      a1 = _mm512_fmadd_ps(load_widened(r + i + 16), _mm512_loadu_ps(x + i + 16), a1);
      a2 = _mm512_fmadd_ps(load_widened(r + i + 32), _mm512_loadu_ps(x + i + 32), a2);
      a3 = _mm512_fmadd_ps(load_widened(r + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i < body; i += 16) a0 = _mm512_fmadd_ps(load_widened(r + i), _mm512_loadu_ps(x + i), a0);
    if (tail != 0) a1 = _mm512_fmadd_ps(load_widened(tail, r + body), _mm512_maskz_loadu_ps(tail, x + body), a1);
    y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

// bf16 with avx512_bf16: vdpbf16ps multiplies 32 pairs (exactly, in f32)
// and adds them pairwise into 16 f32 lanes.
KILN_AVX512_BF16 void rows_bf16_dp(const uint16_t* x, const uint16_t* w, int64_t stride, int64_t k, int64_t n0,
                                   int64_t n1, float* y) {
  const int64_t body4 = k / 128 * 128, body = k / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* r = w + n * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i < body4; i += 128) {
      a0 = _mm512_dpbf16_ps(a0, load_bf16(r + i), load_bf16(x + i));
      a1 = _mm512_dpbf16_ps(a1, load_bf16(r + i + 32), load_bf16(x + i + 32));
      a2 = _mm512_dpbf16_ps(a2, load_bf16(r + i + 64), load_bf16(x + i + 64));
      a3 = _mm512_dpbf16_ps(a3, load_bf16(r + i + 96), load_bf16(x + i + 96));
    }
    for (; i < body; i += 32) a0 = _mm512_dpbf16_ps(a0, load_bf16(r + i), load_bf16(x + i));
    if (tail != 0) a1 = _mm512_dpbf16_ps(a1, load_bf16(tail, r + body), load_bf16(tail, x + body));
    y[n] = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

using Isa = MatvecIsa;

// --- the epilogue, in f32, then the store ----------------------------------

// One post-op at a time over the chunk's sums y[n0, n1), so each loop is a
// plain array loop the compiler vectorizes (the exp ones aside).
void apply_epilogue(float* y, int64_t n0, int64_t n1, const std::vector<PostOp>& epilogue, const void* const* extra) {
  size_t next = 0;
  for (const PostOp& op : epilogue) {
    const bool binary = op.kind == PostOp::Kind::add || op.kind == PostOp::Kind::sub || op.kind == PostOp::Kind::mul;
    const void* other = binary ? extra[next++] : nullptr;
    const auto* other_f32 = static_cast<const float*>(other);
    const auto* other_bf16 = static_cast<const uint16_t*>(other);
    const bool bf16 = binary && op.dtype == DType::bf16;
    auto operand = [&](int64_t n) { return bf16 ? bf16_bits_to_f32(other_bf16[n]) : other_f32[n]; };
    switch (op.kind) {
      case PostOp::Kind::add:
        for (int64_t n = n0; n < n1; ++n) y[n] += operand(n);
        break;
      case PostOp::Kind::sub:
        for (int64_t n = n0; n < n1; ++n) y[n] -= operand(n);
        break;
      case PostOp::Kind::mul:
        for (int64_t n = n0; n < n1; ++n) y[n] *= operand(n);
        break;
      case PostOp::Kind::swish:
        for (int64_t n = n0; n < n1; ++n) y[n] = y[n] / (1.0f + std::exp(-y[n]));
        break;
      case PostOp::Kind::logistic:
        for (int64_t n = n0; n < n1; ++n) y[n] = 1.0f / (1.0f + std::exp(-y[n]));
        break;
      case PostOp::Kind::tanh:
        for (int64_t n = n0; n < n1; ++n) y[n] = std::tanh(y[n]);
        break;
      case PostOp::Kind::relu:
        for (int64_t n = n0; n < n1; ++n) y[n] = std::max(y[n], 0.0f);
        break;
    }
  }
}

}  // namespace

MatvecIsa best_matvec_isa() {
  static const Isa isa = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
      return __builtin_cpu_supports("avx512bf16") ? Isa::avx512_bf16 : Isa::avx512;
    return Isa::scalar;
  }();
  return isa;
}

bool is_matvec(const MatmulShape& s) {
  const bool dtypes = (s.operand == DType::f32 || s.operand == DType::bf16) && s.compute == s.operand &&
                      (s.result == DType::f32 || s.result == DType::bf16);
  return dtypes && s.batch == 1 && s.m == 1 && s.k >= 1 && s.n >= 1 && (s.k == 1 || s.lhs_strides[2] == 1) &&
         (s.k == 1 || s.rhs_strides[1] == 1) && s.rhs_strides[2] >= s.k;
}

void run_matvec(const MatmulShape& s, const void* lhs, const void* rhs, void* out, const void* const* extra,
                MatvecIsa isa) {
  if (isa > best_matvec_isa()) fail("[dot_general] this CPU cannot run the matrix-vector kernel asked for");
  const int64_t k = s.k, n_total = s.n, stride = s.rhs_strides[2];
  // f32 sums land here first (the epilogue and a bf16 store read them).
  thread_local std::vector<float> sums;
  thread_local std::vector<float> wide_x;
  float* y = s.result == DType::f32 && s.epilogue.empty() ? static_cast<float*>(out) : nullptr;
  if (y == nullptr) {
    if (sums.size() < static_cast<size_t>(n_total)) sums.resize(static_cast<size_t>(n_total));
    y = sums.data();
  }
  const bool widen_x = s.operand == DType::bf16 && isa == Isa::avx512;
  if (widen_x) {
    if (wide_x.size() < static_cast<size_t>(k)) wide_x.resize(static_cast<size_t>(k));
    const auto* x = static_cast<const uint16_t*>(lhs);
    for (int64_t i = 0; i < k; ++i) wide_x[static_cast<size_t>(i)] = bf16_bits_to_f32(x[i]);
  }
  const float* x_f32 = widen_x ? wide_x.data() : nullptr;

  // The rows go out in guided chunks, at least about 64 KiB of weights each,
  // taken in order by whichever thread is free: the first chunks are long
  // sequential streams (each new stream costs the prefetchers a ramp-up: 64
  // KiB chunks alone streamed ~7% slower), the last ones short, so a thread
  // slowed by another process on its core does not hold up the rest (a
  // static split waited for it at the end of every product).
  const int64_t row_bytes = k * static_cast<int64_t>(size_of(s.operand));
  const int64_t chunk = std::max<int64_t>(kRowBlock, (int64_t{64} << 10) / std::max<int64_t>(row_bytes, 1));
  const int64_t chunks = (n_total + chunk - 1) / chunk;
#pragma omp parallel for schedule(guided, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t n0 = c * chunk, n1 = std::min(n_total, n0 + chunk);
    if (s.operand == DType::f32) {
      const auto* x = static_cast<const float*>(lhs);
      const auto* w = static_cast<const float*>(rhs);
      if (isa == Isa::scalar)
        rows_f32_scalar(x, w, stride, k, n0, n1, y);
      else
        rows_f32_avx512(x, w, stride, k, n0, n1, y);
    } else {
      const auto* x = static_cast<const uint16_t*>(lhs);
      const auto* w = static_cast<const uint16_t*>(rhs);
      if (isa == Isa::avx512_bf16)
        rows_bf16_dp(x, w, stride, k, n0, n1, y);
      else if (isa == Isa::avx512)
        rows_bf16_avx512(x_f32, w, stride, k, n0, n1, y);
      else
        rows_bf16_scalar(x, w, stride, k, n0, n1, y);
    }
    if (y != out) {
      apply_epilogue(y, n0, n1, s.epilogue, extra);
      if (s.result == DType::f32)
        std::memcpy(static_cast<float*>(out) + n0, y + n0, static_cast<size_t>(n1 - n0) * sizeof(float));
      else
        for (int64_t n = n0; n < n1; ++n) static_cast<uint16_t*>(out)[n] = f32_to_bf16(y[n]);
    }
  }
}

}  // namespace kiln::cpu
