#pragma once
// The canonical hash of a graph: its ops, operands, attributes, result
// shapes (dims, dtypes and tags), outputs, constants by their bytes and host
// callbacks by name. Two graphs that compute the same thing the same way hash
// alike in any process; the key of the compile cache and of saved programs.
#include "kiln/core/hash.h"
#include "kiln/ir/graph.h"

namespace kiln::ir {

Hash128 hash(const Graph& graph);
// One node's attributes, for passes that compare nodes (CSE).
void hash_attributes(Hasher& h, const Attributes& attrs);

}  // namespace kiln::ir
