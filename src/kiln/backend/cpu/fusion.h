#pragma once
// Fusion grouping for the CPU backend: which nodes become one generated loop
// nest, which are computed by a library or shared kernel, and which values
// are materialized in memory.
//
// A group is a loop nest that stores one value, its root. Elementwise and
// movement nodes are inlined into the group of their users (evaluated at
// the index the root's loop asks for) when all their users are in one group;
// cheap movement nodes used by several groups are inlined into each. A
// reduction joins the group of its users as a "row phase" when they only
// broadcast it back along the reduced axes (softmax, RMSNorm and LayerNorm
// become one kernel: per row, one loop per reduction, then the store loop);
// otherwise it roots a group of its own, with its elementwise producers
// inlined into the reduction loop. Everything else is an opaque step.
#include <cstdint>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln::cpu {

inline constexpr int32_t kNotInlined = -1;      // materialized, or not a loop-nest node
inline constexpr int32_t kInlineAnywhere = -2;  // cheap: recomputed in each group that uses it

struct Group {
  int32_t root;                 // the node whose value the loop nest stores
  std::vector<int32_t> phases;  // reductions computed per row before the store, in order
};

struct Fusion {
  std::vector<Group> groups;      // in topological order of their roots
  std::vector<int32_t> group_of;  // per node: a group index, kNotInlined or kInlineAnywhere
  // Per node: true when its (single) value lives in memory: parameters, group
  // roots, results of opaque steps, constants that are not scalars.
  std::vector<bool> materialized;
};

// Whether the loop-nest renderer handles `node` (elementwise, movement,
// iota, scalar-kind reductions, over dtypes other than f8).
bool is_loop_nest_node(const ir::Graph& graph, const ir::Node& node);

Fusion fuse(const ir::Graph& graph);

}  // namespace kiln::cpu
