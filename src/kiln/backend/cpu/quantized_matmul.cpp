#include "kiln/backend/cpu/quantized_matmul.h"

#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstring>
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

// --- the integer kernels (AVX-512 VNNI) ---------------------------------------
//
// vpdpbusd multiplies 64 unsigned weight bytes by 64 signed activation
// bytes and adds each 4 products into one of 16 int32 lanes: a 512-bit
// step covers 64 elements, lanes 0-7 one 32-element activation block and
// lanes 8-15 the next. Each lane's integer sum is scaled in f32 by its
// weight scale times its activation block's scale. Unsigned weights with an
// offset (q4_0: q - 8, q6_k: q - 32) subtract offset x the lane's
// activation sum; signed ones (q8_0) move the sign onto the activations.

#define KILN_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,f16c,fma")))

KILN_VNNI inline float half_to_float(const std::byte* p) {
  uint16_t bits;
  std::memcpy(&bits, p, 2);
  return _cvtsh_ss(bits);
}

// The weight rows stream from memory; the hardware prefetchers alone kept
// one core's q4_0 decode at about 21 tokens/s (TinyLlama shape, Zen 5), two
// lines 2 KiB ahead per step (a step reads 72 or 136 bytes) at about 24.
KILN_VNNI inline void prefetch_weights(const std::byte* p) {
  constexpr int kAhead = 2048;
  _mm_prefetch(reinterpret_cast<const char*>(p) + kAhead, _MM_HINT_T0);
  _mm_prefetch(reinterpret_cast<const char*>(p) + kAhead + 64, _MM_HINT_T0);
}

// Two 256-bit halves into one 512-bit vector: lo in lanes 0-7.
KILN_VNNI inline __m512i join(__m256i lo, __m256i hi) { return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); }

// The 32 nibbles of a q4_0 block in element order (low nibbles are elements 0-15).
KILN_VNNI inline __m256i nibbles_of_q4_0(const std::byte* qs) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(q, 4), mask), _mm_and_si128(q, mask));
}

// Four q4_0 blocks (72 bytes) per step, from three loads: the 16 nibble
// bytes of two blocks into one vector [qs0, qs0, qs1, qs1], their high
// halves shifted down in the second and fourth 128-bit lanes and masked, so
// the lanes hold elements 0-15, 16-31 of one block, then of the next, in the
// activations' order; the four f16 scales (16-bit words 0, 9, 18 and 27 of
// the blocks' first 64 bytes) spread to their lanes by one vpermw. The
// offset 8 is taken off at the end: sum over lanes of scale x the lane's
// activation offset (lane_offset = activation scale x lane sum).
KILN_VNNI inline __m512i nibbles_of_two_q4_0(const std::byte* p) {
  constexpr int kBytes = 18;
  const __m256i both =
      _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(p + kBytes + 2), reinterpret_cast<const __m128i*>(p + 2));
  const __m512i wide = _mm512_castsi256_si512(both);
  const __m512i doubled = _mm512_shuffle_i64x2(wide, wide, _MM_SHUFFLE(1, 1, 0, 0));
  const __m512i shifted = _mm512_mask_srli_epi16(doubled, 0xFF00FF00u, doubled, 4);
  return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F));
}

KILN_VNNI float dot_q4_0(const std::byte* w, const Q8Rows& x, int64_t j, int64_t k) {
  constexpr int64_t kBytes = 18;
  const int8_t* xq = x.values.data() + j * k;
  const float* xs = x.lane_scale.data() + j * k / 4;
  const float* xoff = x.lane_offset.data() + j * k / 4;
  const int32_t* xsum = x.lane_sum.data() + j * k / 4;
  const int64_t blocks = k / 32;
  const __m512i scale_words = _mm512_set_epi16(27, 27, 27, 27, 27, 27, 27, 27, 18, 18, 18, 18, 18, 18, 18, 18, 9, 9, 9,
                                               9, 9, 9, 9, 9, 0, 0, 0, 0, 0, 0, 0, 0);
  // Named accumulators, not arrays indexed in a loop: those GCC keeps in memory.
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 offset0 = _mm512_setzero_ps(), offset1 = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const std::byte* p = w + b * kBytes;
    const int8_t* a = xq + b * 32;
    const int64_t lane = b * 8;
    prefetch_weights(p);
    const __m512i halves = _mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(p));
    const __m512 scale0 = _mm512_cvtph_ps(_mm512_castsi512_si256(halves));
    const __m512 scale1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(halves, 1));
    const __m512i dot0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_of_two_q4_0(p), _mm512_loadu_si512(a));
    const __m512i dot1 =
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), nibbles_of_two_q4_0(p + 2 * kBytes), _mm512_loadu_si512(a + 64));
    acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot0), _mm512_mul_ps(scale0, _mm512_loadu_ps(xs + lane)), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot1), _mm512_mul_ps(scale1, _mm512_loadu_ps(xs + lane + 16)), acc1);
    offset0 = _mm512_fmadd_ps(scale0, _mm512_loadu_ps(xoff + lane), offset0);
    offset1 = _mm512_fmadd_ps(scale1, _mm512_loadu_ps(xoff + lane + 16), offset1);
  }
  float sum = _mm512_reduce_add_ps(
      _mm512_fmadd_ps(_mm512_set1_ps(-8.0f), _mm512_add_ps(offset0, offset1), _mm512_add_ps(acc0, acc1)));
  for (; b < blocks; ++b) {  // the last one to three blocks
    const std::byte* p = w + b * kBytes;
    const __m256i q = nibbles_of_q4_0(p + 2);
    const __m256i dot = _mm256_dpbusd_epi32(_mm256_setzero_si256(), q,
                                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + b * 32)));
    int32_t lanes[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), dot);
    int32_t total = 0, lane_offset = 0;
    for (int i = 0; i < 8; ++i) total += lanes[i], lane_offset += xsum[b * 8 + i];
    sum += half_to_float(p) * xs[b * 8] * static_cast<float>(total - 8 * lane_offset);
  }
  return sum;
}

// Two q8_0 blocks (68 bytes) against 64 activations, added to `acc`: the
// scales are 16-bit words 0 and 17 of the pair's first 64 bytes.
KILN_VNNI inline __m512 two_q8_0(const std::byte* p, const int8_t* x, const float* xs, __m512 acc) {
  constexpr int64_t kBytes = 34;
  // Lanes 0-7 take word 0 (the first block's scale), lanes 8-15 word 17; the upper 16 are unused.
  const __m512i scale_words = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 17, 17, 17, 17, 17, 17,
                                               17, 17, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i q = join(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 2)),
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + kBytes + 2)));
  const __m512i a = _mm512_loadu_si512(x);
  // |w| times a with w's sign: an unsigned by signed product for vpdpbusd.
  const __m512i signed_a = _mm512_mask_sub_epi8(a, _mm512_movepi8_mask(q), _mm512_setzero_si512(), a);
  const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(q), signed_a);
  const __m512i halves = _mm512_permutexvar_epi16(scale_words, _mm512_loadu_si512(p));
  const __m512 scale = _mm512_mul_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(halves)), _mm512_loadu_ps(xs));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc);
}

KILN_VNNI float dot_q8_0(const std::byte* w, const Q8Rows& x, int64_t j, int64_t k) {
  constexpr int64_t kBytes = 34;
  const int8_t* xq = x.values.data() + j * k;
  const float* xs = x.lane_scale.data() + j * k / 4;
  const int64_t blocks = k / 32;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();  // two chains of adds, in registers
  int64_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    const std::byte* p = w + b * kBytes;
    prefetch_weights(p);
    acc0 = two_q8_0(p, xq + b * 32, xs + b * 8, acc0);
    acc1 = two_q8_0(p + 2 * kBytes, xq + b * 32 + 64, xs + b * 8 + 16, acc1);
  }
  if (b + 2 <= blocks) {
    acc0 = two_q8_0(w + b * kBytes, xq + b * 32, xs + b * 8, acc0);
    b += 2;
  }
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  for (; b < blocks; ++b) {
    const std::byte* p = w + b * kBytes;
    const auto* q = reinterpret_cast<const int8_t*>(p + 2);
    int32_t total = 0;
    for (int i = 0; i < 32; ++i) total += q[i] * xq[b * 32 + i];
    sum += half_to_float(p) * xs[b * 8] * static_cast<float>(total);
  }
  return sum;
}

// The 6-bit scales and minimums of a q4_k block (quant.cpp's layout),
// eight bytes each, computed on three 32-bit words at once: bytes 0-3 hold
// scales 0-3 and the top bits of scales 4-7, bytes 4-7 minimums 0-3 and
// the top bits of minimums 4-7, bytes 8-11 the low nibbles of scales and
// minimums 4-7. (Byte by byte with branches this was a third of the kernel.)
inline void q4_k_scales(const uint8_t* q, uint8_t* scale, uint8_t* min) {
  uint32_t a, b, c;
  std::memcpy(&a, q, 4);
  std::memcpy(&b, q + 4, 4);
  std::memcpy(&c, q + 8, 4);
  constexpr uint32_t low6 = 0x3f3f3f3f, low4 = 0x0f0f0f0f, low2 = 0x03030303;
  const uint32_t words[4] = {a & low6, (c & low4) | (((a >> 6) & low2) << 4), b & low6,
                             ((c >> 4) & low4) | (((b >> 6) & low2) << 4)};
  std::memcpy(scale, words, 8);
  std::memcpy(min, words + 2, 8);
}

KILN_VNNI float dot_q4_k(const std::byte* w, const Q8Rows& x, int64_t j, int64_t k) {
  constexpr int64_t kBytes = 144;
  const int8_t* xq = x.values.data() + j * k;
  const float* xs = x.lane_scale.data() + j * k / 4;
  const float* block_sum = x.block_sum.data() + j * k / 32;
  const __m256i mask = _mm256_set1_epi8(0x0F);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
  __m256 minimums = _mm256_setzero_ps();  // a vector: a scalar sum here was a chain of dependent adds
  for (int64_t s = 0; s < k / 256; ++s) {
    const std::byte* p = w + s * kBytes;
    const float d = half_to_float(p), dmin = half_to_float(p + 2);
    uint8_t sc[8], mn[8];
    q4_k_scales(reinterpret_cast<const uint8_t*>(p + 4), sc, mn);
    int64_t packed_mins;
    std::memcpy(&packed_mins, mn, 8);
    const __m256 mins = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(packed_mins)));
    minimums = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_set1_ps(dmin), mins), _mm256_loadu_ps(block_sum + s * 8), minimums);
    // The eight sub-block scales times d at once; each chunk's pair is permuted out of them.
    int64_t packed_scales;
    std::memcpy(&packed_scales, sc, 8);
    const __m512 scales = _mm512_castps256_ps512(
        _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_cvtsi64_si128(packed_scales)))));
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 16 + 32 * c));
      const __m512i v = join(_mm256_and_si256(q, mask), _mm256_and_si256(_mm256_srli_epi16(q, 4), mask));
      const int64_t e = s * 256 + 64 * c;
      const __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v, _mm512_loadu_si512(xq + e));
      const __m512i pair = _mm512_set_epi32(2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1, 2 * c + 1,
                                            2 * c + 1, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c, 2 * c);
      const __m512 scale = _mm512_mul_ps(_mm512_permutexvar_ps(pair, scales), _mm512_loadu_ps(xs + e / 4));
      acc[c % 2] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[c % 2]);  // two chains, not one
    }
  }
  const __m128 m4 = _mm_add_ps(_mm256_castps256_ps128(minimums), _mm256_extractf128_ps(minimums, 1));
  const __m128 m2 = _mm_add_ps(m4, _mm_movehl_ps(m4, m4));
  return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - _mm_cvtss_f32(_mm_add_ss(m2, _mm_shuffle_ps(m2, m2, 1)));
}

KILN_VNNI float dot_q6_k(const std::byte* w, const Q8Rows& x, int64_t j, int64_t k) {
  constexpr int64_t kBytes = 210;
  const int8_t* xq = x.values.data() + j * k;
  const float* xs = x.lane_scale.data() + j * k / 4;
  const int32_t* xsum = x.lane_sum.data() + j * k / 4;
  const __m512i low4 = _mm512_set1_epi8(0x0F), low2 = _mm512_set1_epi8(0x03);
  // Per 16-bit lane shift counts: 0 / 2 for the first 64 elements' high bits, 4 / 6 for the next.
  const __m512i shift01 = join(_mm256_setzero_si256(), _mm256_set1_epi16(2));
  const __m512i shift23 = join(_mm256_set1_epi16(4), _mm256_set1_epi16(6));
  // Each of 4 scales repeated over the 4 lanes of its 16 elements.
  const __m128i repeat4 = _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};  // two chains of adds, not one
  for (int64_t s = 0; s < k / 256; ++s) {
    const std::byte* p = w + s * kBytes;
    const float d = half_to_float(p + 208);
    // Unrolled, so that chunk[] and acc[] stay in registers (GCC keeps
    // arrays indexed by a loop variable in memory otherwise).
#pragma GCC unroll 2
    for (int half = 0; half < 2; ++half) {
      const __m512i ql = _mm512_loadu_si512(p + 64 * half);
      const __m512i qh =
          _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 128 + 32 * half)));
      const __m512i chunk[2] = {
          _mm512_or_si512(_mm512_and_si512(ql, low4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, shift01), low2), 4)),
          _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low4),
                          _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(qh, shift23), low2), 4))};
#pragma GCC unroll 2
      for (int c = 0; c < 2; ++c) {
        const int64_t e = s * 256 + 128 * half + 64 * c;
        __m512i dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), chunk[c], _mm512_loadu_si512(xq + e));
        dot = _mm512_sub_epi32(dot, _mm512_slli_epi32(_mm512_loadu_si512(xsum + e / 4), 5));
        int32_t four;
        std::memcpy(&four, p + 192 + 8 * half + 4 * c, 4);
        const __m512 sc = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_shuffle_epi8(_mm_cvtsi32_si128(four), repeat4)));
        const __m512 scale = _mm512_mul_ps(_mm512_mul_ps(sc, _mm512_set1_ps(d)), _mm512_loadu_ps(xs + e / 4));
        acc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[c]);
      }
    }
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1]));
}

// --- dequantization of prefill tiles (AVX-512) --------------------------------
// The same operations in the same order as quant.cpp's reference, 16
// elements at a time, so the tiles hold exactly the reference values.

KILN_VNNI inline __m512 widen_u8(__m128i bytes) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes)); }
KILN_VNNI inline __m512i widen_u8_to_i32(const std::byte* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

KILN_VNNI void tile_row_q4_0(const std::byte* b, int64_t k, float* y) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m512i eight = _mm512_set1_epi32(8);
  for (int64_t i = 0; i < k / 32; ++i, b += 18, y += 32) {
    const __m512 d = _mm512_set1_ps(half_to_float(b));
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2));
    const __m512i lo = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(q, mask)), eight);
    const __m512i hi = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_and_si128(_mm_srli_epi16(q, 4), mask)), eight);
    _mm512_storeu_ps(y, _mm512_mul_ps(_mm512_cvtepi32_ps(lo), d));
    _mm512_storeu_ps(y + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(hi), d));
  }
}

KILN_VNNI void tile_row_q8_0(const std::byte* b, int64_t k, float* y) {
  for (int64_t i = 0; i < k / 32; ++i, b += 34, y += 32) {
    const __m512 d = _mm512_set1_ps(half_to_float(b));
    for (int h = 0; h < 2; ++h) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 + 16 * h));
      _mm512_storeu_ps(y + 16 * h, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), d));
    }
  }
}

KILN_VNNI void tile_row_q4_k(const std::byte* b, int64_t k, float* y) {
  const __m128i mask = _mm_set1_epi8(0x0F);
  for (int64_t s = 0; s < k / 256; ++s, b += 144) {
    const float d = half_to_float(b), dmin = half_to_float(b + 2);
    uint8_t sc[8], mn[8];
    q4_k_scales(reinterpret_cast<const uint8_t*>(b + 4), sc, mn);
    for (int c = 0; c < 4; ++c, y += 64) {
      const __m512 d1 = _mm512_set1_ps(d * sc[2 * c]), m1 = _mm512_set1_ps(dmin * mn[2 * c]);
      const __m512 d2 = _mm512_set1_ps(d * sc[2 * c + 1]), m2 = _mm512_set1_ps(dmin * mn[2 * c + 1]);
      for (int h = 0; h < 2; ++h) {
        const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 + 32 * c + 16 * h));
        _mm512_storeu_ps(y + 16 * h, _mm512_sub_ps(_mm512_mul_ps(d1, widen_u8(_mm_and_si128(q, mask))), m1));
        _mm512_storeu_ps(y + 32 + 16 * h,
                         _mm512_sub_ps(_mm512_mul_ps(d2, widen_u8(_mm_and_si128(_mm_srli_epi16(q, 4), mask))), m2));
      }
    }
  }
}

KILN_VNNI void tile_row_q6_k(const std::byte* b, int64_t k, float* y) {
  const __m512i low4 = _mm512_set1_epi32(0x0F), low2 = _mm512_set1_epi32(3), offset = _mm512_set1_epi32(32);
  for (int64_t s = 0; s < k / 256; ++s, b += 210) {
    const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_to_float(b + 208);
    for (int half = 0; half < 2; ++half, y += 128) {
      const std::byte* ql = b + 64 * half;
      const std::byte* qh = b + 128 + 32 * half;
      for (int l = 0; l < 32; l += 16) {
        const __m512i a = widen_u8_to_i32(ql + l), c = widen_u8_to_i32(ql + l + 32), h = widen_u8_to_i32(qh + l);
        const __m512i q[4] = {
            _mm512_or_si512(_mm512_and_si512(a, low4), _mm512_slli_epi32(_mm512_and_si512(h, low2), 4)),
            _mm512_or_si512(_mm512_and_si512(c, low4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 2), low2), 4)),
            _mm512_or_si512(_mm512_srli_epi32(a, 4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 4), low2), 4)),
            _mm512_or_si512(_mm512_srli_epi32(c, 4),
                            _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(h, 6), low2), 4))};
        const int is = 8 * half + l / 16;
        for (int part = 0; part < 4; ++part) {
          const __m512 scale = _mm512_set1_ps(d * static_cast<float>(sc[is + 2 * part]));
          _mm512_storeu_ps(y + l + 32 * part,
                           _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_sub_epi32(q[part], offset))));
        }
      }
    }
  }
}

using IntegerDot = float (*)(const std::byte*, const Q8Rows&, int64_t, int64_t);
using TileRow = void (*)(const std::byte*, int64_t, float*);

// The AVX-512 VNNI kernels of a type: its decode dot and its tile row
// (none for the types without them).
struct VnniKernels {
  IntegerDot dot = nullptr;
  TileRow tile_row = nullptr;
};

VnniKernels vnni_kernels(DType dtype) {
  switch (dtype) {
    case DType::q4_0:
      return {dot_q4_0, tile_row_q4_0};
    case DType::q8_0:
      return {dot_q8_0, tile_row_q8_0};
    case DType::q4_k:
      return {dot_q4_k, tile_row_q4_k};
    case DType::q6_k:
      return {dot_q6_k, tile_row_q6_k};
    default:
      return {};
  }
}

bool cpu_has_vnni() {
  static const bool vnni = [] {
    __builtin_cpu_init();
    // Every AVX-512 CPU has F16C and FMA too (clang cannot ask for f16c here).
    return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512dq");
  }();
  return vnni;
}

KILN_VNNI void quantize_lhs_vnni(const float* x, int64_t ldx, int64_t m, int64_t k, Q8Rows& r) {
  const __m512i ones = _mm512_set1_epi8(1);
  for (int64_t j = 0; j < m; ++j)
    for (int64_t b = 0; b < k / 32; ++b) {
      const float* v = x + j * ldx + b * 32;
      const __m512 lo = _mm512_loadu_ps(v), hi = _mm512_loadu_ps(v + 16);
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
      const float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
      const __m512 inverse = _mm512_set1_ps(id);
      const __m128i q_lo = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(lo, inverse)));
      const __m128i q_hi = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(_mm512_mul_ps(hi, inverse)));
      const __m256i q = _mm256_set_m128i(q_hi, q_lo);
      int8_t* out = r.values.data() + j * k + b * 32;
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), q);
      const __m256i sums = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm512_castsi512_si256(ones), q);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(r.lane_sum.data() + j * k / 4 + b * 8), sums);
      _mm256_storeu_ps(r.lane_scale.data() + j * k / 4 + b * 8, _mm256_set1_ps(d));
      _mm256_storeu_ps(r.lane_offset.data() + j * k / 4 + b * 8,
                       _mm256_mul_ps(_mm256_cvtepi32_ps(sums), _mm256_set1_ps(d)));
      int32_t lanes[8];
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), sums);
      int32_t total = 0;
      for (int i = 0; i < 8; ++i) total += lanes[i];
      r.block_sum[static_cast<size_t>(j * k / 32 + b)] = d * static_cast<float>(total);
    }
}

}  // namespace

void dequantize_tile_row(DType dtype, const std::byte* blocks, int64_t k, float* out) {
  const TileRow fast = cpu_has_vnni() ? vnni_kernels(dtype).tile_row : nullptr;
  if (fast != nullptr)
    fast(blocks, k, out);
  else
    dequantize_row(dtype, blocks, k, out);
}

bool has_integer_kernel(DType dtype, MatvecIsa isa) {
  return isa != MatvecIsa::scalar && cpu_has_vnni() && vnni_kernels(dtype).dot != nullptr;
}

void quantize_lhs(const float* x, int64_t ldx, int64_t m, int64_t k, Q8Rows& r) {
  if (k % 32 != 0 || !cpu_has_vnni()) fail("[dot_general] internal: quantize_lhs needs VNNI and whole 32-blocks");
  r.m = m, r.k = k;
  r.values.resize(static_cast<size_t>(m * k));
  r.lane_scale.resize(static_cast<size_t>(m * k / 4));
  r.lane_sum.resize(static_cast<size_t>(m * k / 4));
  r.lane_offset.resize(static_cast<size_t>(m * k / 4));
  r.block_sum.resize(static_cast<size_t>(m * k / 32));
  quantize_lhs_vnni(x, ldx, m, k, r);
}

namespace {}  // namespace

int64_t quantized_row_bytes(DType dtype, int64_t k) {
  return k / block_size(dtype) * static_cast<int64_t>(size_of(dtype));
}

void quantized_rows(DType dtype, const float* x, int64_t ldx, const Q8Rows* q8, int64_t m, const std::byte* w,
                    int64_t row_bytes, int64_t k, int64_t n0, int64_t n1, float* y, int64_t ldy, MatvecIsa isa) {
  if (q8 != nullptr && has_integer_kernel(dtype, isa)) {
    const IntegerDot dot = vnni_kernels(dtype).dot;
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t j = 0; j < m; ++j) y[j * ldy + n] = dot(w + n * row_bytes, *q8, j, k);
    return;
  }
  // Each row is dequantized into L1 once and dotted with every lhs row.
  float* row = thread_scratch(static_cast<size_t>(k));
  for (int64_t n = n0; n < n1; ++n) {
    dequantize_tile_row(dtype, w + n * row_bytes, k, row);
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
  // Tiles of about 1 MiB of f32 weights: dequantized once, then used for
  // every lhs row while they sit in the thread's L2 (256 KiB tiles were 25%
  // slower at 64 rows: sgemm packs the lhs again for every tile).
  const int64_t tile = std::max<int64_t>(16, (int64_t{1} << 20) / (4 * k) / 16 * 16);
  const int64_t tiles = (n_total + tile - 1) / tile;
  const auto* blocks = static_cast<const std::byte*>(rhs);
  auto* c = static_cast<float*>(out);
  dnnl_status_t failed = dnnl_success;  // errors cannot leave the parallel loop
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t t = 0; t < tiles; ++t) {
    const int64_t n0 = t * tile, rows = std::min(tile, n_total - n0);
    float* w = thread_scratch(static_cast<size_t>(tile * k));
    for (int64_t r = 0; r < rows; ++r) dequantize_tile_row(dtype, blocks + (n0 + r) * row_bytes, k, w + r * k);
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
