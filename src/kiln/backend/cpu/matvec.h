#pragma once
// Matrix-vector products for decoding a token (and for the few-token chunks
// of a prompt): y = epilogue(W x) for one to kMaxMatvecRows lhs rows x, with
// the weight W stored row-major [N, K] as the file holds it ({out, in}),
// read straight from its (mapped) memory once per call (each weight row
// against every lhs row), the rows split over the threads. Decode is bound by the bytes of the weights, so nothing is
// packed or converted: bf16 rows go through vdpbf16ps where the CPU has avx512_bf16 (exact bf16 products, f32 sums),
// AVX-512F conversions where not; f16 rows are widened by vcvtph2ps against an f32 lhs; plain loops on CPUs without
// AVX-512.
#include "kiln/backend/cpu/matmul.h"

namespace kiln::cpu {

// The most lhs rows: up to here a product is bound by reading the weight,
// and packing it for oneDNN would cost a copy of it (the memory and the time).
constexpr int64_t kMaxMatvecRows = 8;

// True when `shape` is one such product: 1 to kMaxMatvecRows lhs rows (no
// batch), K contiguous in both operands, f32 or bf16 computed in the
// operand dtype or f16 computed in f32; the result f32 or the operand dtype.
bool is_matvec(const MatmulShape& shape);

// The instruction sets the kernels come in, each a superset of the one before.
enum class MatvecIsa { scalar, avx512, avx512_bf16 };
// The best one this CPU runs.
MatvecIsa best_matvec_isa();

// out[j, n] = epilogue(sum_k lhs[j, k] * rhs[n * row_stride + k]) for the shape
// is_matvec() accepted; `extra` holds one input per binary post-op. `isa`
// (at most best_matvec_isa()) is for tests of each kernel.
void run_matvec(const MatmulShape& shape, const void* lhs, const void* rhs, void* out, const void* const* extra,
                MatvecIsa isa = best_matvec_isa());

}  // namespace kiln::cpu
