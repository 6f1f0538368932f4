#pragma once
// Layout canonicalization for the CPU backend: every float dot_general is
// rewritten so that oneDNN computes it as one matmul (matmul.h). Operands
// whose axis groups do not merge in memory get a transpose into
// [batch, free, contracting] (lhs) and [batch, contracting, free] (rhs)
// order; f16 operands and result dtypes oneDNN lacks go through f32 converts.
#include "kiln/ir/graph.h"

namespace kiln::cpu {

ir::Graph canonicalize_dots(const ir::Graph& graph);

}  // namespace kiln::cpu
