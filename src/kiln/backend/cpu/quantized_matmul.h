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

#include "kiln/backend/cpu/matmul.h"
#include "kiln/backend/cpu/matvec.h"

namespace kiln::cpu {

// Bytes of one row of K elements of `dtype`.
int64_t quantized_row_bytes(DType dtype, int64_t k);

// y[j * ldy + n] = sum_k x[j * ldx + k] * W[n, k] for the m (1 to
// kMaxMatvecRows) lhs rows and weight rows [n0, n1) (each `row_bytes` apart).
void quantized_rows(DType dtype, const float* x, int64_t ldx, int64_t m, const std::byte* w, int64_t row_bytes,
                    int64_t k, int64_t n0, int64_t n1, float* y, int64_t ldy, MatvecIsa isa);

// out = lhs x W^T for a shape with `quantized` set, any row count, no epilogue.
void run_quantized_matmul(const MatmulShape& shape, const void* lhs, const void* rhs, void* out);

}  // namespace kiln::cpu
