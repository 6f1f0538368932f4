#pragma once
// Constant folding: a node whose operands are all constants is replaced by
// a constant holding its value, computed by `evaluate` (the backend passes
// the reference kernels; passes sit above the backends and cannot name
// them). Side effects and results larger than `max_bytes` are left alone,
// so that a broadcast constant does not become a large buffer.
#include <functional>
#include <span>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/ir/graph.h"

namespace kiln::passes {

using NodeEvaluator =
    std::function<std::vector<HostBuffer>(const ir::Node& node, std::span<const HostBuffer> operands)>;

ir::Graph fold_constants(const ir::Graph& graph, const NodeEvaluator& evaluate, size_t max_bytes = 4096);

}  // namespace kiln::passes
