#pragma once
// Common subexpression elimination: nodes with the same op, operands and
// attributes compute the same values; all but the first are dropped. Host
// callbacks are never merged (their state may differ between calls).
#include "kiln/ir/graph.h"

namespace kiln::passes {

ir::Graph eliminate_common_subexpressions(const ir::Graph& graph);

}  // namespace kiln::passes
