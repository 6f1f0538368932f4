#pragma once
// Dead code elimination: drops nodes that no output depends on. Parameters
// stay (they are the executable's signature) and side-effecting nodes stay,
// in their original order, whether or not anything uses their results.
#include "kiln/ir/graph.h"

namespace kiln::passes {

ir::Graph eliminate_dead_code(const ir::Graph& graph);

}  // namespace kiln::passes
