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

#include "kiln/ir/graph.h"

namespace kiln::cpu {

struct MatmulShape {
  int64_t batch = 1, m = 1, n = 1, k = 1;
  std::array<int64_t, 3> lhs_strides{}, rhs_strides{};  // in elements, over (B, M, K) and (B, K, N)
  DType operand = DType::f32, result = DType::f32;
};

// The axes of an operand of `rank` that are neither batch nor contracting, in order.
ir::Axes free_axes(int rank, const ir::Axes& batch, const ir::Axes& contracting);

// The matmul computing `dot`, or nullopt when the dot is not in canonical
// form or its dtypes are not ones oneDNN computes here (f32, bf16 -> f32/bf16).
std::optional<MatmulShape> matmul_shape(const ir::Graph& graph, const ir::Node& dot);

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
  // out = lhs x rhs (rhs packed when constructed so). Not reentrant.
  void run(const void* lhs, const void* rhs, void* out) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kiln::cpu
