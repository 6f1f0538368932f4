#pragma once
// Rebuilding a graph node by node: the one loop every rewriting pass (and
// the CPU backend's layout pass) is written with. `visit` sees each node with
// its operands already mapped into the new graph and either adds its own
// replacement (returning the replacement's values, one per result) or
// returns an empty vector to have the node copied as it is. `map` gives the
// new value of any source value visited so far. Parameters keep
// their order and names. Outputs keep their exact shapes, tags included: a
// replacement whose tags differ gets a tag-only reshape at the output.
#include <functional>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::ir {

struct ValueMap {
  const std::vector<std::vector<Value>>& values;
  int32_t id;  // the source node being visited
  Value operator()(Value v) const { return values[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]; }
};
using Visit = std::function<std::vector<Value>(Graph& out, const Node& node, const std::vector<Value>& operands,
                                               const ValueMap& map)>;

Graph rebuild(const Graph& graph, const Visit& visit);

}  // namespace kiln::ir
