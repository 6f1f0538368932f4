#pragma once
// Kernels of the reference interpreter, one function per op family. Each
// takes a node and its operand values (contiguous, row-major, matching the
// node's operand shapes) and returns newly allocated contiguous results
// matching node.results.
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/ir/graph.h"

namespace kiln::reference {

using Operands = std::span<const HostBuffer>;
using Results = std::vector<HostBuffer>;

// iota, convert, bitcast_convert, unary and binary elementwise, compare, select, clamp
Results eval_elementwise(const ir::Node& node, Operands operands);
// broadcast_in_dim, reshape, transpose, slice, dynamic_slice, dynamic_update_slice, concatenate, pad, reverse
Results eval_movement(const ir::Node& node, Operands operands);
// gather, scatter
Results eval_indexing(const ir::Node& node, Operands operands);
// reduce, reduce_window
Results eval_reduction(const ir::Node& node, Operands operands);
// dot_general, convolution
Results eval_contraction(const ir::Node& node, Operands operands);
// sort, top_k
Results eval_sorting(const ir::Node& node, Operands operands);
// rng
Results eval_rng(const ir::Node& node, Operands operands);

// The Philox4x32-10 block function behind rng (exposed for its known-answer tests).
std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key);

}  // namespace kiln::reference
