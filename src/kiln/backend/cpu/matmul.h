#pragma once
// dot_general through oneDNN's matmul. A dot in canonical form (each of the
// batch, free and contracting axis groups of both operands laid out so that
// it merges into one strided dimension) is one matmul over 3-D strided
// views: [B, M, K] x [B, K, N] -> [B, M, N] row-major. layout.h rewrites
// every other dot into this form. Weights can be re-laid out once into the
// primitive's preferred (blocked) format: pack() at prepare, run() per call.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::cpu {

// An operation applied to each result element before it is stored (a
// matmul epilogue, oneDNN's post-ops): x is the running value, y an extra
// input's element (binary kinds), in f32.
struct PostOp {
  enum class Kind : uint8_t { add, sub, mul, swish, logistic, tanh, relu };
  Kind kind;
  // Binary kinds: the extra input's dtype, and whether it is one value per
  // column (a bias, [N]) rather than one per result element ([B, M, N]).
  DType dtype = DType::f32;
  bool per_column = false;
  bool binary() const { return kind == Kind::add || kind == Kind::sub || kind == Kind::mul; }
};

struct MatmulShape {
  int64_t batch = 1, m = 1, n = 1, k = 1;
  std::array<int64_t, 3> lhs_strides{}, rhs_strides{};  // in elements, over (B, M, K) and (B, K, N)
  DType operand = DType::f32, result = DType::f32;
  // The dtype the products are computed in: the operand's, or f32 for f16
  // operands and for bf16 ones on a CPU whose f32 GEMM is the faster one
  // (see compute_dtype()).
  DType compute = DType::f32;
  std::vector<PostOp> epilogue;  // applied in order; each binary one reads the next extra input
  // A block-quantized rhs (a GGUF weight, [N, K] with the blocks along K):
  // its dtype. The operand (the lhs) is then f32, and so are compute and result.
  std::optional<DType> quantized;
};

// The axes of an operand of `rank` that are neither batch nor contracting, in order.
ir::Axes free_axes(int rank, const ir::Axes& batch, const ir::Axes& contracting);

// The matmul computing `dot`, or nullopt when the dot is not in canonical
// form or its dtypes are not ones oneDNN computes here (f32, bf16, f16 ->
// f32 or the operand's). `compute` is the operand dtype, f32 for f16 (whose
// operands are widened: weights once at pack(), the rest per call).
std::optional<MatmulShape> matmul_shape(const ir::Graph& graph, const ir::Node& dot);

// The dtype to compute a matmul with packed weights in. bf16 weights are
// computed as f32 (converted once at prepare, the activations per call;
// bf16 x bf16 products are exact in f32, so only the summation order
// changes) when the result has at least 64 rows (compute-bound), a
// once-per-process measurement finds oneDNN's f32 GEMM more than 10%
// faster than its bf16 one (CPUs with avx512_bf16 but no AMX), and the f32
// copies of all such weights fit in a quarter of the memory.
// KILN_BF16_MATMUL=bf16 or f32 forces either (f32 then at any row count).
DType compute_dtype(const MatmulShape& shape);

class Matmul {
 public:
  // `packed_weights`: the rhs is passed pre-packed (see pack()).
  Matmul(const MatmulShape& shape, bool packed_weights);
  ~Matmul();
  Matmul(const Matmul&) = delete;
  Matmul& operator=(const Matmul&) = delete;

  const MatmulShape& shape() const;
  // Bytes of the packed rhs, and the packing itself (rhs laid out as MatmulShape says).
  size_t packed_bytes() const;
  void pack(const void* rhs, void* packed) const;
  // What pack() does, as a text: products whose keys are equal pack the
  // same rhs into the same bytes, so they can share one packed copy.
  std::string packing_key() const;
  // out = epilogue(lhs x rhs) (rhs packed when constructed so), `extra`
  // holding one input per binary post-op. Not reentrant.
  void run(const void* lhs, const void* rhs, void* out, const void* const* extra = nullptr) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cpu
