#pragma once
// Products with a block-quantized rhs (a GGUF weight [N, K], the blocks
// along K) against an f32 lhs, read straight from the mapped blocks: no
// dequantized copy of a whole matrix is ever made, at prepare or per call.
//
// Decode (up to kMaxMatvecRows lhs rows, through run_matvec): each weight
// row is read once and dotted with every lhs row (quantized_rows()).
// Prefill: tiles of weight rows are dequantized into a per-thread f32 tile
// that stays in cache and multiplied by the whole lhs with oneDNN's sgemm,
// each thread on tiles of its own (run_quantized_matmul()).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kiln/backend/cpu/matmul.h"
#include "kiln/backend/cpu/matvec.h"

namespace kiln::cpu {

// Bytes of one row of K elements of `dtype`.
int64_t quantized_row_bytes(DType dtype, int64_t k);

// The lhs rows of a decode product quantized once per call to 8-bit blocks
// of 32 (scale d = max|x| / 127, as llama.cpp's q8 activations), with what
// the integer kernels need beside the values: each 4-value lane's scale and
// integer sum (the offsets of q4_0 and q6_k, subtracted per lane), the two
// multiplied (q4_0's offset, taken off after the sum), and each
// block's sum in f32 (the minimums of q4_k).
struct Q8Rows {
  int64_t m = 0, k = 0;
  std::vector<int8_t> values;      // [m, k]
  std::vector<float> lane_scale;   // [m, k / 4]
  std::vector<int32_t> lane_sum;   // [m, k / 4]
  std::vector<float> lane_offset;  // [m, k / 4]: lane_scale x lane_sum
  std::vector<float> block_sum;    // [m, k / 32]: d * sum of the block's values
};

// One row of k elements dequantized exactly as quant.h's dequantize_row
// does (the same values), with AVX-512 for q4_0, q8_0, q4_k and q6_k.
void dequantize_tile_row(DType dtype, const std::byte* blocks, int64_t k, float* out);

// Whether the integer (AVX-512 VNNI) kernels take `dtype` with `isa` on this
// CPU: q8_0, q4_0, q4_k and q6_k where it has avx512_vnni.
bool has_integer_kernel(DType dtype, MatvecIsa isa);
// Fills `rows` from the m lhs rows of k (a multiple of 32) values, `ldx` apart.
void quantize_lhs(const float* x, int64_t ldx, int64_t m, int64_t k, Q8Rows& rows);

// y[j * ldy + n] = sum_k x[j * ldx + k] * W[n, k] for the m (1 to
// kMaxMatvecRows) lhs rows and weight rows [n0, n1) (each `row_bytes` apart):
// with the integer kernel on `q8` (quantize_lhs of x) where
// has_integer_kernel(), else exactly, each weight row dequantized to f32.
void quantized_rows(DType dtype, const float* x, int64_t ldx, const Q8Rows* q8, int64_t m, const std::byte* w,
                    int64_t row_bytes, int64_t k, int64_t n0, int64_t n1, float* y, int64_t ldy, MatvecIsa isa);

// out = lhs x W^T for a shape with `quantized` set, any row count, no epilogue.
void run_quantized_matmul(const MatmulShape& shape, const void* lhs, const void* rhs, void* out);

}  // namespace kiln::cpu
