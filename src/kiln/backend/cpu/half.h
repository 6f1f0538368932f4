#pragma once
// f16 <-> f32 conversion for the matmuls of f16 operands, which oneDNN
// computes in f32 here: its own f16 reorders run at reference speed on CPUs
// without avx512_fp16, so the activations are widened (and results
// narrowed) by these loops, vcvtph2ps / vcvtps2ph 16 at a time where the CPU
// has AVX-512, over the threads.
#include <array>
#include <cstdint>

namespace kiln::cpu {

// dst (dense [B, R, C] f32) = src, an f16 view of that shape with element
// strides `strides`.
void widen_f16(const uint16_t* src, const std::array<int64_t, 3>& strides, const std::array<int64_t, 3>& sizes,
               float* dst);
// dst[i] = src[i] rounded to f16 (nearest, ties to even), for `count` elements.
void narrow_to_f16(const float* src, uint16_t* dst, int64_t count);

}  // namespace kiln::cpu
