#pragma once
// The reference backend: a plain interpreter that evaluates every op of the
// IR on HostBuffers, written to be obviously correct rather than fast. It is
// the oracle every other backend is tested against, and is itself tested
// against PyTorch/NumPy fixtures (tests/fixtures/make_op_fixtures_*.py).
//
// Numerics: floats are computed in double and rounded once to the result
// dtype (round to nearest even), so f32/bf16/f16 results are what a
// correctly rounded implementation gives; integer arithmetic wraps.
#include <initializer_list>
#include <span>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/host_callback.h"

namespace kiln::reference {

// Evaluates `graph` on `parameters` (one per graph parameter, in order, with
// the parameter's dims and dtype) and returns the graph's outputs. Every
// node runs, in order; host callbacks find their state in `callbacks`.
std::vector<HostBuffer> evaluate(const ir::Graph& graph, std::span<const HostBuffer> parameters,
                                 const ir::CallbackStates* callbacks = nullptr);
// One node on contiguous operands (no host callbacks): the shared kernel
// other backends call for ops they have no kernel of their own for, and the
// evaluator of constant folding.
std::vector<HostBuffer> evaluate_node(const ir::Node& node, std::span<const HostBuffer> operands);

inline std::vector<HostBuffer> evaluate(const ir::Graph& graph, std::initializer_list<HostBuffer> parameters) {
  return evaluate(graph, std::span<const HostBuffer>(parameters.begin(), parameters.size()));
}

}  // namespace kiln::reference
