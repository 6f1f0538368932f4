#include "kiln/core/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kiln/core/element.h"
#include "kiln/core/error.h"

namespace kiln {
namespace {

// Block layouts (ggml-common.h), little-endian.
constexpr int kQK = 32;    // elements of the 32-element types
constexpr int kQKK = 256;  // elements of a k-quant super-block

uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}
float load_f16(const std::byte* p) { return f16_to_f32(load_u16(p)); }
void store_f16(std::byte* p, float value) {
  const uint16_t bits = f32_to_f16(value);
  std::memcpy(p, &bits, 2);
}
const uint8_t* bytes_of(const std::byte* p) { return reinterpret_cast<const uint8_t*>(p); }
uint8_t* bytes_of(std::byte* p) { return reinterpret_cast<uint8_t*>(p); }

// The 6-bit scale and minimum of sub-block j of a q4_k / q5_k block.
void scale_min_k4(int j, const uint8_t* q, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = q[j] & 63;
    min = q[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// --- dequantization, one block at a time ------------------------------------

void dequantize_q4_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  const uint8_t* qs = bytes_of(b + 2);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((qs[j] & 0x0F) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) - 8) * d;
  }
}

void dequantize_q4_1(const std::byte* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  const uint8_t* qs = bytes_of(b + 4);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(qs[j] & 0x0F) * d + m;
    y[j + kQK / 2] = static_cast<float>(qs[j] >> 4) * d + m;
  }
}

void dequantize_q5_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  const uint8_t* qs = bytes_of(b + 6);
  for (int j = 0; j < kQK / 2; ++j) {
    const int high0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int high1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(((qs[j] & 0x0F) | high0) - 16) * d;
    y[j + kQK / 2] = static_cast<float>(((qs[j] >> 4) | high1) - 16) * d;
  }
}

void dequantize_q5_1(const std::byte* b, float* y) {
  const float d = load_f16(b), m = load_f16(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  const uint8_t* qs = bytes_of(b + 8);
  for (int j = 0; j < kQK / 2; ++j) {
    const int high0 = static_cast<int>(((qh >> j) << 4) & 0x10);
    const int high1 = static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>((qs[j] & 0x0F) | high0) * d + m;
    y[j + kQK / 2] = static_cast<float>((qs[j] >> 4) | high1) * d + m;
  }
}

void dequantize_q8_0(const std::byte* b, float* y) {
  const float d = load_f16(b);
  const auto* qs = reinterpret_cast<const int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(qs[j]) * d;
}

void dequantize_q4_k(const std::byte* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = bytes_of(b + 4);
  const uint8_t* q = bytes_of(b + 16);
  for (int chunk = 0; chunk < 4; ++chunk, q += 32, y += 64) {
    uint8_t sc, m;
    scale_min_k4(2 * chunk, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(2 * chunk + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
  }
}

void dequantize_q5_k(const std::byte* b, float* y) {
  const float d = load_f16(b), dmin = load_f16(b + 2);
  const uint8_t* scales = bytes_of(b + 4);
  const uint8_t* qh = bytes_of(b + 16);
  const uint8_t* ql = bytes_of(b + 48);
  for (int chunk = 0; chunk < 4; ++chunk, ql += 32, y += 64) {
    uint8_t sc, m;
    scale_min_k4(2 * chunk, scales, sc, m);
    const float d1 = d * sc, m1 = dmin * m;
    scale_min_k4(2 * chunk + 1, scales, sc, m);
    const float d2 = d * sc, m2 = dmin * m;
    const auto low_bit = static_cast<uint8_t>(1u << (2 * chunk)), high_bit = static_cast<uint8_t>(2u << (2 * chunk));
    for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & low_bit) ? 16 : 0)) - m1;
    for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & high_bit) ? 16 : 0)) - m2;
  }
}

void dequantize_q6_k(const std::byte* b, float* y) {
  const uint8_t* ql = bytes_of(b);
  const uint8_t* qh = bytes_of(b + 128);
  const auto* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = load_f16(b + 208);
  for (int half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
      y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
      y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
      y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
    }
  }
}

// --- quantization, one block at a time --------------------------------------

// The element of largest magnitude (its sign kept), as the reference quantizers use it.
float signed_absmax(const float* x, int n) {
  float amax = 0, max = 0;
  for (int j = 0; j < n; ++j)
    if (std::fabs(x[j]) > amax) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  return max;
}

void quantize_q4_0(const float* x, std::byte* b) {
  const float d = signed_absmax(x, kQK) / -8, id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(b, d);
  uint8_t* qs = bytes_of(b + 2);
  for (int j = 0; j < kQK / 2; ++j) {
    const auto q0 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>(x[j] * id + 8.5f)));
    const auto q1 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

void min_max(const float* x, int n, float& min, float& max) {
  min = max = x[0];
  for (int j = 1; j < n; ++j) {
    min = std::min(min, x[j]);
    max = std::max(max, x[j]);
  }
}

void quantize_q4_1(const float* x, std::byte* b) {
  float min, max;
  min_max(x, kQK, min, max);
  const float d = (max - min) / 15, id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(b, d);
  store_f16(b + 2, min);
  uint8_t* qs = bytes_of(b + 4);
  for (int j = 0; j < kQK / 2; ++j) {
    const auto q0 = std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
    const auto q1 =
        std::min<uint8_t>(15, static_cast<uint8_t>(static_cast<int8_t>((x[j + kQK / 2] - min) * id + 0.5f)));
    qs[j] = static_cast<uint8_t>(q0 | (q1 << 4));
  }
}

// The 5-bit types: low nibbles in qs, bit 4 of element j in bit j of qh.
void pack_q5(const uint8_t* q, uint8_t* qh_bytes, uint8_t* qs) {
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const uint8_t q0 = q[j], q1 = q[j + kQK / 2];
    qs[j] = static_cast<uint8_t>((q0 & 0x0F) | ((q1 & 0x0F) << 4));
    qh |= static_cast<uint32_t>((q0 & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((q1 & 0x10) >> 4) << (j + kQK / 2);
  }
  std::memcpy(qh_bytes, &qh, 4);
}

void quantize_q5_0(const float* x, std::byte* b) {
  const float d = signed_absmax(x, kQK) / -16, id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(b, d);
  uint8_t q[kQK];
  for (int j = 0; j < kQK; ++j)
    q[j] = std::min<uint8_t>(31, static_cast<uint8_t>(static_cast<int8_t>(x[j] * id + 16.5f)));
  pack_q5(q, bytes_of(b + 2), bytes_of(b + 6));
}

void quantize_q5_1(const float* x, std::byte* b) {
  float min, max;
  min_max(x, kQK, min, max);
  const float d = (max - min) / 31, id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(b, d);
  store_f16(b + 2, min);
  uint8_t q[kQK];
  for (int j = 0; j < kQK; ++j)
    q[j] = std::min<uint8_t>(31, static_cast<uint8_t>(static_cast<int8_t>((x[j] - min) * id + 0.5f)));
  pack_q5(q, bytes_of(b + 4), bytes_of(b + 8));
}

void quantize_q8_0(const float* x, std::byte* b) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
  const float d = amax / 127, id = d != 0 ? 1.0f / d : 0.0f;
  store_f16(b, d);
  auto* qs = reinterpret_cast<int8_t*>(b + 2);
  for (int j = 0; j < kQK; ++j) qs[j] = static_cast<int8_t>(std::round(x[j] * id));
}

int nearest(float v) { return static_cast<int>(std::lround(v)); }

// q4_k and q5_k: 8 sub-blocks of 32 with x ~ d * scale * q - dmin * min,
// `levels` the largest q (15 or 31). Fills the block header (d, dmin, the
// packed 6-bit scales) and the integer levels q[256].
void quantize_k_header(const float* x, int levels, std::byte* b, uint8_t* q) {
  float scales[8], mins[8], max_scale = 0, max_min = 0;
  for (int s = 0; s < 8; ++s) {
    float lo, hi;
    min_max(x + 32 * s, 32, lo, hi);
    lo = std::min(lo, 0.0f);  // the minimum is stored as a non-negative offset
    scales[s] = (hi - lo) / static_cast<float>(levels);
    mins[s] = -lo;
    max_scale = std::max(max_scale, scales[s]);
    max_min = std::max(max_min, mins[s]);
  }
  const float d = max_scale / 63, dmin = max_min / 63;
  store_f16(b, d);
  store_f16(b + 2, dmin);
  // Round trip the super-scales through f16 so the levels use what is stored.
  const float d_stored = load_f16(b), dmin_stored = load_f16(b + 2);
  uint8_t sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    sc[s] = static_cast<uint8_t>(d > 0 ? std::min(63, nearest(scales[s] / d)) : 0);
    mn[s] = static_cast<uint8_t>(dmin > 0 ? std::min(63, nearest(mins[s] / dmin)) : 0);
  }
  uint8_t* packed = bytes_of(b + 4);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      packed[j] = sc[j];
      packed[j + 4] = mn[j];
    } else {
      packed[j + 4] = static_cast<uint8_t>((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
    }
  }
  for (int s = 0; s < 8; ++s) {
    const float step = d_stored * sc[s], offset = dmin_stored * mn[s];
    for (int l = 0; l < 32; ++l)
      q[32 * s + l] =
          static_cast<uint8_t>(step > 0 ? std::clamp(nearest((x[32 * s + l] + offset) / step), 0, levels) : 0);
  }
}

void quantize_q4_k(const float* x, std::byte* b) {
  uint8_t q[kQKK];
  quantize_k_header(x, 15, b, q);
  uint8_t* qs = bytes_of(b + 16);
  for (int chunk = 0; chunk < 4; ++chunk)
    for (int l = 0; l < 32; ++l)
      qs[32 * chunk + l] = static_cast<uint8_t>(q[64 * chunk + l] | (q[64 * chunk + 32 + l] << 4));
}

void quantize_q5_k(const float* x, std::byte* b) {
  uint8_t q[kQKK];
  quantize_k_header(x, 31, b, q);
  uint8_t* qh = bytes_of(b + 16);
  uint8_t* qs = bytes_of(b + 48);
  std::memset(qh, 0, 32);
  for (int chunk = 0; chunk < 4; ++chunk)
    for (int l = 0; l < 32; ++l) {
      const uint8_t lo = q[64 * chunk + l], hi = q[64 * chunk + 32 + l];
      qs[32 * chunk + l] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
      qh[l] |= static_cast<uint8_t>(((lo >> 4) << (2 * chunk)) | ((hi >> 4) << (2 * chunk + 1)));
    }
}

// q6_k: 16 sub-blocks of 16 with x ~ d * scale * q, q in [-32, 31] and
// int8 scales.
void quantize_q6_k(const float* x, std::byte* b) {
  float scales[16], max_scale = 0, max_abs_scale = 0;
  for (int s = 0; s < 16; ++s) {
    scales[s] = signed_absmax(x + 16 * s, 16) / -32;
    if (std::fabs(scales[s]) > max_abs_scale) {
      max_abs_scale = std::fabs(scales[s]);
      max_scale = scales[s];
    }
  }
  const float iscale = max_scale != 0 ? -128.0f / max_scale : 0.0f;
  store_f16(b + 208, iscale != 0 ? 1.0f / iscale : 0.0f);
  const float d = load_f16(b + 208);
  auto* sc = reinterpret_cast<int8_t*>(b + 192);
  int8_t q[kQKK];
  for (int s = 0; s < 16; ++s) {
    sc[s] = static_cast<int8_t>(std::min(127, nearest(iscale * scales[s])));
    const float step = d * sc[s];
    for (int l = 0; l < 16; ++l)
      q[16 * s + l] = static_cast<int8_t>(step != 0 ? std::clamp(nearest(x[16 * s + l] / step), -32, 31) : 0);
  }
  uint8_t* ql = bytes_of(b);
  uint8_t* qh = bytes_of(b + 128);
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32) {
    const int8_t* h = q + 128 * half;
    for (int l = 0; l < 32; ++l) {
      const auto q1 = static_cast<uint8_t>(h[l] + 32), q2 = static_cast<uint8_t>(h[l + 32] + 32);
      const auto q3 = static_cast<uint8_t>(h[l + 64] + 32), q4 = static_cast<uint8_t>(h[l + 96] + 32);
      ql[l] = static_cast<uint8_t>((q1 & 0xF) | ((q3 & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((q2 & 0xF) | ((q4 & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
    }
  }
}

using DequantizeBlock = void (*)(const std::byte*, float*);
using QuantizeBlock = void (*)(const float*, std::byte*);

struct BlockCodec {
  DequantizeBlock dequantize;
  QuantizeBlock quantize;
};

BlockCodec codec_of(DType dtype) {
  switch (dtype) {
    case DType::q4_0:
      return {dequantize_q4_0, quantize_q4_0};
    case DType::q4_1:
      return {dequantize_q4_1, quantize_q4_1};
    case DType::q5_0:
      return {dequantize_q5_0, quantize_q5_0};
    case DType::q5_1:
      return {dequantize_q5_1, quantize_q5_1};
    case DType::q8_0:
      return {dequantize_q8_0, quantize_q8_0};
    case DType::q4_k:
      return {dequantize_q4_k, quantize_q4_k};
    case DType::q5_k:
      return {dequantize_q5_k, quantize_q5_k};
    case DType::q6_k:
      return {dequantize_q6_k, quantize_q6_k};
    default:
      fail("{} is not a block-quantized type", name(dtype));
  }
}

void check_count(DType dtype, int64_t count) {
  if (count < 0 || count % block_size(dtype) != 0)
    fail("{} elements are not whole {} blocks of {}", count, name(dtype), block_size(dtype));
}

}  // namespace

void dequantize_row(DType dtype, const std::byte* blocks, int64_t count, float* out) {
  check_count(dtype, count);
  const DequantizeBlock block = codec_of(dtype).dequantize;
  const int64_t n = block_size(dtype), bytes = static_cast<int64_t>(size_of(dtype));
#pragma omp parallel for schedule(static) if (count >= (int64_t{1} << 16))
  for (int64_t i = 0; i < count / n; ++i) block(blocks + i * bytes, out + i * n);
}

// Blocks are independent, and each is computed the same way on any thread,
// so the work is split over the cores (a whole model's weights pass here in
// `kiln quantize`) with bit-identical results.
void quantize_row(DType dtype, const float* in, int64_t count, std::byte* blocks) {
  check_count(dtype, count);
  const QuantizeBlock block = codec_of(dtype).quantize;
  const int64_t n = block_size(dtype), bytes = static_cast<int64_t>(size_of(dtype));
#pragma omp parallel for schedule(static) if (count >= (int64_t{1} << 16))
  for (int64_t i = 0; i < count / n; ++i) block(in + i * n, blocks + i * bytes);
}

HostBuffer dequantize(const HostBuffer& blocks) {
  if (!is_quantized(blocks.dtype())) fail("dequantize: {} is not block-quantized", blocks.shape().to_string());
  const HostBuffer flat = blocks.is_contiguous() ? blocks : blocks.copy();
  HostBuffer out = HostBuffer::uninitialized(flat.shape().with_dtype(DType::f32));
  dequantize_row(flat.dtype(), flat.data(), flat.shape().count(), reinterpret_cast<float*>(out.mutable_data()));
  return out;
}

HostBuffer quantize(const HostBuffer& values, DType dtype) {
  if (!is_float(values.dtype()) || !is_quantized(dtype))
    fail("quantize: {} cannot be quantized to {}", values.shape().to_string(), name(dtype));
  const Shape shape = values.shape().with_dtype(dtype);
  if (shape.rank() == 0 || shape.dim(shape.rank() - 1) % block_size(dtype) != 0)
    fail("quantize: the innermost dimension of {} is not a multiple of the {}-element {} block",
         values.shape().to_string(), block_size(dtype), name(dtype));
  const HostBuffer flat = values.is_contiguous() ? values : values.copy();
  const int64_t count = flat.shape().count();
  std::vector<float> wide(static_cast<size_t>(count));
  const size_t element = size_of(flat.dtype());
#pragma omp parallel for schedule(static) if (count >= (int64_t{1} << 16))
  for (int64_t i = 0; i < count; ++i)
    wide[static_cast<size_t>(i)] = static_cast<float>(load_double(flat.dtype(), flat.data() + i * element));
  HostBuffer out = HostBuffer::uninitialized(shape);
  quantize_row(dtype, wide.data(), count, out.mutable_data());
  return out;
}

}  // namespace kiln
