#pragma once
// Algebraic simplification: identity ops removed (converts to the same
// dtype, identity transposes, reshapes, broadcasts and full slices), chains
// folded into one node (reshape of reshape, transpose of transpose,
// broadcast of broadcast), x * 1 and x / 1 dropped. Tags are not values:
// an op that only renames axes costs nothing after this pass (the outputs
// keep their tags, see ir/rewrite.h).
#include "kiln/ir/graph.h"

namespace kiln::passes {

ir::Graph simplify(const ir::Graph& graph);

}  // namespace kiln::passes
