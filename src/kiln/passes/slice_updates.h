#pragma once
// Nested slice updates become one: the pattern a model with a stacked cache
// writes,
//   layer  = slice(cache, layer i)               (through size-1 reshapes)
//   layer' = dynamic_update_slice(layer, rows, pos)
//   cache' = dynamic_update_slice(cache, layer', [i, 0, ...])
// is rewritten into cache' = dynamic_update_slice(cache, rows, [i, .., pos, ..])
// (the inner starts clamped as the inner update would) and layer' into a
// slice of cache'. The update then touches only the new rows, and the
// planner can run it in place on a donated cache.
#include "kiln/ir/graph.h"

namespace kiln::passes {

ir::Graph merge_nested_slice_updates(const ir::Graph& graph);

}  // namespace kiln::passes
