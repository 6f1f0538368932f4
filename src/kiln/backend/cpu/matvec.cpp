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

#include "kiln/backend/cpu/half.h"
#include "kiln/backend/cpu/quantized_matmul.h"
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
// f16: vcvtph2ps widens 16 halves exactly (AVX-512F).
KILN_AVX512 inline __m512 load_f16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
KILN_AVX512 inline __m512 load_f16(__mmask16 mask, const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, p));
}
template <bool F16>
KILN_AVX512 inline __m512 load_half(const uint16_t* p) {
  return F16 ? load_f16(p) : load_widened(p);
}
template <bool F16>
KILN_AVX512 inline __m512 load_half(__mmask16 mask, const uint16_t* p) {
  return F16 ? load_f16(mask, p) : load_widened(mask, p);
}
KILN_AVX512_BF16 inline __m512bh load_bf16(const uint16_t* p) { return (__m512bh)_mm512_loadu_si512(p); }
KILN_AVX512_BF16 inline __m512bh load_bf16(__mmask32 mask, const uint16_t* p) {
  return (__m512bh)_mm512_maskz_loadu_epi16(mask, p);
}

// 16-bit weights against x in f32: bf16 (without avx512_bf16) or f16 rows,
// widened 16 elements at a time.
template <bool F16>
KILN_AVX512 void rows_half_avx512(const float* x, const uint16_t* w, int64_t stride, int64_t k, int64_t n0, int64_t n1,
                                  float* y) {
  const int64_t body4 = k / 64 * 64, body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* r = w + n * stride;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i < body4; i += 64) {
      a0 = _mm512_fmadd_ps(load_half<F16>(r + i), _mm512_loadu_ps(x + i), a0);
      a1 = _mm512_fmadd_ps(load_half<F16>(r + i + 16), _mm512_loadu_ps(x + i + 16), a1);
      a2 = _mm512_fmadd_ps(load_half<F16>(r + i + 32), _mm512_loadu_ps(x + i + 32), a2);
      a3 = _mm512_fmadd_ps(load_half<F16>(r + i + 48), _mm512_loadu_ps(x + i + 48), a3);
    }
    for (; i < body; i += 16) a0 = _mm512_fmadd_ps(load_half<F16>(r + i), _mm512_loadu_ps(x + i), a0);
    if (tail != 0) a1 = _mm512_fmadd_ps(load_half<F16>(tail, r + body), _mm512_maskz_loadu_ps(tail, x + body), a1);
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

// --- two to eight lhs rows: each weight row is loaded once and used for
// every lhs row (x rows `ldx` apart, sums into y rows `ldy` apart); the M
// accumulators give the loads their overlap, and M x rows stay in L1.
// With M dot products per weight line the loop has too many instructions
// for the out-of-order window to keep enough weight loads in flight (8 rows
// streamed the weights at 12 GB/s where one row reached 40; prefetching
// kPrefetchBytes ahead brought 8 rows to about 24).

constexpr int64_t kPrefetchBytes = 4096;
inline void prefetch_ahead(const void* p) { _mm_prefetch(static_cast<const char*>(p) + kPrefetchBytes, _MM_HINT_T0); }

template <int M>
void rows_scalar_m(const void* xv, int64_t ldx, const void* wv, DType dtype, int64_t stride, int64_t k, int64_t n0,
                   int64_t n1, float* y, int64_t ldy) {
  const auto* x32 = static_cast<const float*>(xv);
  const auto* w32 = static_cast<const float*>(wv);
  const auto* x16 = static_cast<const uint16_t*>(xv);
  const auto* w16 = static_cast<const uint16_t*>(wv);
  for (int64_t n = n0; n < n1; ++n)
    for (int j = 0; j < M; ++j) {
      float sum = 0;
      if (dtype == DType::f32)
        for (int64_t i = 0; i < k; ++i) sum += x32[j * ldx + i] * w32[n * stride + i];
      else if (dtype == DType::f16)  // x widened to f32
        for (int64_t i = 0; i < k; ++i) sum += x32[j * ldx + i] * f16_to_f32(w16[n * stride + i]);
      else
        for (int64_t i = 0; i < k; ++i)
          sum += bf16_bits_to_f32(x16[j * ldx + i]) * bf16_bits_to_f32(w16[n * stride + i]);
      y[j * ldy + n] = sum;
    }
}

template <int M>
KILN_AVX512 void rows_f32_avx512_m(const float* x, int64_t ldx, const float* w, int64_t stride, int64_t k, int64_t n0,
                                   int64_t n1, float* y, int64_t ldy) {
  const int64_t body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const float* r = w + n * stride;
    __m512 acc[M];
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < body; i += 16) {
      prefetch_ahead(r + i);
      const __m512 wi = _mm512_loadu_ps(r + i);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_fmadd_ps(wi, _mm512_loadu_ps(x + j * ldx + i), acc[j]);
    }
    if (tail != 0) {
      const __m512 wi = _mm512_maskz_loadu_ps(tail, r + body);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_fmadd_ps(wi, _mm512_maskz_loadu_ps(tail, x + j * ldx + body), acc[j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) y[j * ldy + n] = _mm512_reduce_add_ps(acc[j]);
  }
}

template <int M, bool F16>
KILN_AVX512 void rows_half_avx512_m(const float* x, int64_t ldx, const uint16_t* w, int64_t stride, int64_t k,
                                    int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t body = k / 16 * 16;
  const __mmask16 tail = static_cast<__mmask16>((1u << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* r = w + n * stride;
    __m512 acc[M];
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < body; i += 16) {
      if (i % 32 == 0) prefetch_ahead(r + i);  // 16 halves are half a line
      const __m512 wi = load_half<F16>(r + i);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_fmadd_ps(wi, _mm512_loadu_ps(x + j * ldx + i), acc[j]);
    }
    if (tail != 0) {
      const __m512 wi = load_half<F16>(tail, r + body);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_fmadd_ps(wi, _mm512_maskz_loadu_ps(tail, x + j * ldx + body), acc[j]);
    }
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) y[j * ldy + n] = _mm512_reduce_add_ps(acc[j]);
  }
}

template <int M>
KILN_AVX512_BF16 void rows_bf16_dp_m(const uint16_t* x, int64_t ldx, const uint16_t* w, int64_t stride, int64_t k,
                                     int64_t n0, int64_t n1, float* y, int64_t ldy) {
  const int64_t body = k / 32 * 32;
  const __mmask32 tail = static_cast<__mmask32>((uint64_t{1} << (k - body)) - 1);
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* r = w + n * stride;
    __m512 acc[M];
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) acc[j] = _mm512_setzero_ps();
    for (int64_t i = 0; i < body; i += 32) {
      prefetch_ahead(r + i);
      const __m512bh wi = load_bf16(r + i);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], wi, load_bf16(x + j * ldx + i));
    }
    if (tail != 0) {
      const __m512bh wi = load_bf16(tail, r + body);
#pragma GCC unroll 8
      for (int j = 0; j < M; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], wi, load_bf16(tail, x + j * ldx + body));
    }
#pragma GCC unroll 8
    for (int j = 0; j < M; ++j) y[j * ldy + n] = _mm512_reduce_add_ps(acc[j]);
  }
}

using Isa = MatvecIsa;

// Rows [n0, n1) of the weight against the m lhs rows; `x` is the lhs as
// the kernel of `isa` reads it (f16, and bf16 for plain AVX-512, widened to
// f32).
template <int M>
void rows_of(Isa isa, DType dtype, const void* x, int64_t ldx, const void* w, int64_t stride, int64_t k, int64_t n0,
             int64_t n1, float* y, int64_t ldy) {
  const auto* x32 = static_cast<const float*>(x);
  const auto* x16 = static_cast<const uint16_t*>(x);
  const auto* w16 = static_cast<const uint16_t*>(w);
  if (isa == Isa::scalar) return rows_scalar_m<M>(x, ldx, w, dtype, stride, k, n0, n1, y, ldy);
  if (dtype == DType::f32) {
    if constexpr (M == 1) return rows_f32_avx512(x32, static_cast<const float*>(w), stride, k, n0, n1, y);
    return rows_f32_avx512_m<M>(x32, ldx, static_cast<const float*>(w), stride, k, n0, n1, y, ldy);
  }
  if (dtype == DType::f16) {
    if constexpr (M == 1) return rows_half_avx512<true>(x32, w16, stride, k, n0, n1, y);
    return rows_half_avx512_m<M, true>(x32, ldx, w16, stride, k, n0, n1, y, ldy);
  }
  if (isa == Isa::avx512) {
    if constexpr (M == 1) return rows_half_avx512<false>(x32, w16, stride, k, n0, n1, y);
    return rows_half_avx512_m<M, false>(x32, ldx, w16, stride, k, n0, n1, y, ldy);
  }
  if constexpr (M == 1) return rows_bf16_dp(x16, w16, stride, k, n0, n1, y);
  return rows_bf16_dp_m<M>(x16, ldx, w16, stride, k, n0, n1, y, ldy);
}

using RowsFn = void (*)(Isa, DType, const void*, int64_t, const void*, int64_t, int64_t, int64_t, int64_t, float*,
                        int64_t);
constexpr RowsFn kRowsOf[kMaxMatvecRows] = {rows_of<1>, rows_of<2>, rows_of<3>, rows_of<4>,
                                            rows_of<5>, rows_of<6>, rows_of<7>, rows_of<8>};

// --- the epilogue, in f32, then the store ----------------------------------

// One post-op at a time over the sums y[n0, n1) of result row `row` (the
// result and the extra inputs are {m, n} row-major, per-column extras {n}),
// so each loop is a plain array loop the compiler vectorizes (the exp ones
// aside).
void apply_epilogue(float* y, int64_t n0, int64_t n1, int64_t row, int64_t n_total, const std::vector<PostOp>& epilogue,
                    const void* const* extra) {
  size_t next = 0;
  for (const PostOp& op : epilogue) {
    const bool binary = op.binary();
    const int64_t offset = binary && !op.per_column ? row * n_total : 0;
    const auto* other_f32 = binary ? static_cast<const float*>(extra[next]) + offset : nullptr;
    const auto* other_bf16 = binary ? static_cast<const uint16_t*>(extra[next]) + offset : nullptr;
    next += binary ? 1 : 0;
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
  // f16 is computed in f32 (as matmul_shape() says), the others as stored;
  // a quantized rhs against an f32 lhs (quantized_matmul.h).
  const bool dtypes = (s.operand == DType::f32 || s.operand == DType::bf16 || s.operand == DType::f16) &&
                      s.compute == (s.operand == DType::f16 ? DType::f32 : s.operand) &&
                      (s.result == DType::f32 || s.result == DType::bf16 || s.result == DType::f16);
  return dtypes && s.batch == 1 && s.m >= 1 && s.m <= kMaxMatvecRows && s.k >= 1 && s.n >= 1 &&
         (s.k == 1 || s.lhs_strides[2] == 1) && (s.k == 1 || s.rhs_strides[1] == 1) && s.rhs_strides[2] >= s.k;
}

void run_matvec(const MatmulShape& s, const void* lhs, const void* rhs, void* out, const void* const* extra,
                MatvecIsa isa) {
  if (isa > best_matvec_isa()) fail("[dot_general] this CPU cannot run the matrix-vector kernel asked for");
  const int64_t m = s.m, k = s.k, n_total = s.n, stride = s.rhs_strides[2];
  // f32 sums land here first (the epilogue and a bf16 store read them).
  thread_local std::vector<float> sums;
  thread_local std::vector<float> wide_x;
  float* y = s.result == DType::f32 && s.epilogue.empty() ? static_cast<float*>(out) : nullptr;
  if (y == nullptr) {
    if (sums.size() < static_cast<size_t>(m * n_total)) sums.resize(static_cast<size_t>(m * n_total));
    y = sums.data();
  }
  const void* x = lhs;
  int64_t ldx = m == 1 ? k : s.lhs_strides[1];
  const bool f16 = s.operand == DType::f16;
  if ((s.operand == DType::bf16 && isa == Isa::avx512) || f16) {  // widened once here, not per weight row
    if (wide_x.size() < static_cast<size_t>(m * k)) wide_x.resize(static_cast<size_t>(m * k));
    const auto* narrow = static_cast<const uint16_t*>(lhs);
    if (f16) {
      widen_f16(narrow, {m * ldx, ldx, 1}, {1, m, k}, wide_x.data());
    } else {
      for (int64_t j = 0; j < m; ++j)
        for (int64_t i = 0; i < k; ++i) wide_x[static_cast<size_t>(j * k + i)] = bf16_bits_to_f32(narrow[j * ldx + i]);
    }
    x = wide_x.data();
    ldx = k;
  }
  const RowsFn rows = kRowsOf[m - 1];
  const std::optional<DType> quantized = s.quantized;
  thread_local Q8Rows q8;  // the lhs as 8-bit blocks, once per call
  const bool integer = quantized && has_integer_kernel(*quantized, isa);
  if (integer) quantize_lhs(static_cast<const float*>(x), ldx, m, k, q8);
  const Q8Rows* lhs_q8 = integer ? &q8 : nullptr;  // this thread's: inside the parallel loop `q8` is another's

  // The rows go out in guided chunks, at least about 64 KiB of weights each,
  // taken in order by whichever thread is free: the first chunks are long
  // sequential streams (each new stream costs the prefetchers a ramp-up: 64
  // KiB chunks alone streamed ~7% slower), the last ones short, so a thread
  // slowed by another process on its core does not hold up the rest (a
  // static split waited for it at the end of every product).
  const int64_t row_bytes =
      quantized ? quantized_row_bytes(*quantized, stride) : k * static_cast<int64_t>(size_of(s.operand));
  const int64_t chunk = std::max<int64_t>(kRowBlock, (int64_t{64} << 10) / std::max<int64_t>(row_bytes, 1));
  const int64_t chunks = (n_total + chunk - 1) / chunk;
#pragma omp parallel for schedule(guided, 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t n0 = c * chunk, n1 = std::min(n_total, n0 + chunk);
    if (quantized)
      quantized_rows(*quantized, static_cast<const float*>(x), ldx, lhs_q8, m, static_cast<const std::byte*>(rhs),
                     row_bytes, k, n0, n1, y, n_total, isa);
    else
      rows(isa, s.operand, x, ldx, rhs, stride, k, n0, n1, y, n_total);
    if (y == out) continue;
    for (int64_t j = 0; j < m; ++j) {
      float* row = y + j * n_total;
      apply_epilogue(row, n0, n1, j, n_total, s.epilogue, extra);
      if (s.result == DType::f32)
        std::memcpy(static_cast<float*>(out) + j * n_total + n0, row + n0,
                    static_cast<size_t>(n1 - n0) * sizeof(float));
      else if (s.result == DType::bf16)
        for (int64_t n = n0; n < n1; ++n) static_cast<uint16_t*>(out)[j * n_total + n] = f32_to_bf16(row[n]);
      else
        for (int64_t n = n0; n < n1; ++n) static_cast<uint16_t*>(out)[j * n_total + n] = f32_to_f16(row[n]);
    }
  }
}

}  // namespace kiln::cpu
