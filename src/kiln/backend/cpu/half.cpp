#include "kiln/backend/cpu/half.h"

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*()
// values and then warn about them at -O2.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kiln/backend/cpu/matvec.h"
#include "kiln/core/dtype.h"

namespace kiln::cpu {
namespace {

#define KILN_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))

KILN_AVX512 void widen_row_avx512(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  if (i < n) {
    const auto mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    _mm512_mask_storeu_ps(dst + i, mask, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(mask, src + i)));
  }
}

KILN_AVX512 void narrow_avx512(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

bool has_avx512() { return best_matvec_isa() >= MatvecIsa::avx512; }

}  // namespace

void widen_f16(const uint16_t* src, const std::array<int64_t, 3>& strides, const std::array<int64_t, 3>& sizes,
               float* dst) {
  const int64_t rows = sizes[0] * sizes[1], cols = sizes[2];
  const bool vector = has_avx512() && strides[2] == 1;
#pragma omp parallel for schedule(static) if (rows * cols > (int64_t{1} << 15))
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* from = src + (r / sizes[1]) * strides[0] + (r % sizes[1]) * strides[1];
    float* to = dst + r * cols;
    if (vector) {
      widen_row_avx512(from, to, cols);
    } else {
      for (int64_t c = 0; c < cols; ++c) to[c] = f16_to_f32(from[c * strides[2]]);
    }
  }
}

void narrow_to_f16(const float* src, uint16_t* dst, int64_t count) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  const bool vector = has_avx512();
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk, n = std::min(kChunk, count - begin);
    if (vector) {
      narrow_avx512(src + begin, dst + begin, n);
    } else {
      for (int64_t i = 0; i < n; ++i) dst[begin + i] = f32_to_f16(src[begin + i]);
    }
  }
}

}  // namespace kiln::cpu
