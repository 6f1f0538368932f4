#include "kiln/passes/slice_updates.h"

#include <algorithm>
#include <optional>

#include "kiln/core/element.h"
#include "kiln/ir/rewrite.h"

namespace kiln::passes {
namespace {

using ir::Op;
using ir::Value;

std::vector<int64_t> without_ones(std::span<const int64_t> dims) {
  std::vector<int64_t> out;
  for (int64_t d : dims)
    if (d != 1) out.push_back(d);
  return out;
}

// A reshape that only inserts or removes size-1 axes.
bool is_unit_reshape(const ir::Graph& g, const ir::Node& n) {
  return n.op == Op::reshape && without_ones(g.shape(n.operands[0]).dims()) == without_ones(n.results[0].dims());
}

// Follows size-1 reshapes up from `v`.
Value through_unit_reshapes_up(const ir::Graph& g, Value v) {
  while (is_unit_reshape(g, g.node(v.node))) v = g.node(v.node).operands[0];
  return v;
}

std::optional<int64_t> constant_scalar(const ir::Graph& g, Value v) {
  const ir::Node& n = g.node(v.node);
  if (n.op != Op::constant || n.results[0].rank() != 0 || !is_integer(n.results[0].dtype())) return std::nullopt;
  return load_int(n.results[0].dtype(), n.attrs_as<ir::ConstantAttrs>().value.data());
}

// For each axis of `from`, the axis of `to` it corresponds to through size-1
// reshapes (-1 for a size-1 axis of `from` with no partner).
std::vector<int> axis_map(std::span<const int64_t> from, std::span<const int64_t> to) {
  std::vector<int> map(from.size(), -1);
  size_t j = 0;
  for (size_t i = 0; i < from.size(); ++i) {
    while (j < to.size() && to[j] != from[i] && to[j] == 1) ++j;
    if (j < to.size() && to[j] == from[i]) {
      map[i] = static_cast<int>(j++);
    } else if (from[i] != 1) {
      return {};
    }
  }
  return map;
}

// What the rewrite needs to know about an inner update X whose result feeds
// an outer update O of the same region of `cache`.
struct Nest {
  int32_t outer;                // O
  Value cache;                  // O's operand
  std::vector<int64_t> region;  // start of the region in cache (the slice's start)
  std::vector<int> x_to_cache;  // X axis -> cache axis
};

std::optional<Nest> find_nest(const ir::Graph& g, const std::vector<std::vector<int32_t>>& users, int32_t x_id) {
  const ir::Node& x = g.node(x_id);
  // X's result, through size-1 reshapes, is the update of exactly one outer update.
  Value v{x_id, 0};
  int32_t outer = -1;
  while (true) {
    const auto& us = users[static_cast<size_t>(v.node)];
    auto reshape = std::find_if(us.begin(), us.end(), [&](int32_t u) { return is_unit_reshape(g, g.node(u)); });
    auto update = std::find_if(us.begin(), us.end(), [&](int32_t u) {
      const ir::Node& n = g.node(u);
      return n.op == Op::dynamic_update_slice && n.operands[1] == v && n.operands[0] != v;
    });
    if (update != us.end()) {
      outer = *update;
      break;
    }
    if (reshape == us.end()) return std::nullopt;
    v = {*reshape, 0};
  }
  const ir::Node& o = g.node(outer);
  const Value cache = o.operands[0];
  // X's operand is a static slice of the same cache (through size-1 reshapes).
  const Value sliced = through_unit_reshapes_up(g, x.operands[0]);
  const ir::Node& s = g.node(sliced.node);
  if (s.op != Op::slice || s.operands[0] != cache) return std::nullopt;
  const auto& sa = s.attrs_as<ir::SliceAttrs>();
  for (int64_t stride : sa.stride)
    if (stride != 1) return std::nullopt;
  // The outer update writes that region: constant starts equal to the slice's.
  for (size_t i = 0; i < sa.start.size(); ++i) {
    const auto start = constant_scalar(g, o.operands[2 + i]);
    if (!start || *start != sa.start[i]) return std::nullopt;
  }
  const Shape& xs = x.results[0];
  std::vector<int> map = axis_map(xs.dims(), s.results[0].dims());
  if (map.empty() && xs.rank() > 0) return std::nullopt;
  return Nest{outer, cache, sa.start, map};
}

}  // namespace

ir::Graph merge_nested_slice_updates(const ir::Graph& graph) {
  std::vector<std::vector<int32_t>> users(graph.nodes().size());
  for (size_t id = 0; id < graph.nodes().size(); ++id)
    for (const Value& v : graph.node(static_cast<int32_t>(id)).operands)
      users[static_cast<size_t>(v.node)].push_back(static_cast<int32_t>(id));
  std::vector<std::optional<Value>> merged(graph.nodes().size());  // outer update -> its replacement
  return ir::rebuild(
      graph, [&](ir::Graph& out, const ir::Node& n, const std::vector<Value>& operands, const ir::ValueMap& map) {
        const int32_t id = map.id;
        std::vector<Value> none;
        if (n.op != Op::dynamic_update_slice) return none;
        if (merged[static_cast<size_t>(id)]) return std::vector<Value>{*merged[static_cast<size_t>(id)]};
        const auto nest = find_nest(graph, users, id);
        if (!nest) return none;
        const Shape& cache_shape = graph.shape(nest->cache);
        const Shape& xs = n.results[0];
        const Shape& us = graph.shape(n.operands[1]);
        // The rows, reshaped onto the cache's axes.
        std::vector<int64_t> rows_dims(static_cast<size_t>(cache_shape.rank()), 1);
        for (size_t i = 0; i < nest->x_to_cache.size(); ++i)
          if (nest->x_to_cache[i] >= 0)
            rows_dims[static_cast<size_t>(nest->x_to_cache[i])] = us.dim(static_cast<int>(i));
        const Value rows = out.add(Op::reshape, {operands[1]}, ir::ReshapeAttrs{Shape(rows_dims, us.dtype())});
        // Starts: the region's, plus the inner start clamped as the inner update clamps it.
        auto i64 = [&](int64_t v) {
          HostBuffer b = HostBuffer::allocate(Shape(DType::i64));
          b.mutable_span<int64_t>()[0] = v;
          return out.add(Op::constant, {}, ir::ConstantAttrs{b});
        };
        std::vector<Value> starts;
        for (int j = 0; j < cache_shape.rank(); ++j) starts.push_back(i64(nest->region[static_cast<size_t>(j)]));
        for (size_t i = 0; i < nest->x_to_cache.size(); ++i) {
          if (nest->x_to_cache[i] < 0) continue;
          const auto j = static_cast<size_t>(nest->x_to_cache[i]);
          const Value p = out.add(Op::convert, {operands[2 + i]}, ir::ConvertAttrs{DType::i64});
          const Value clamped =
              out.add(Op::clamp, {i64(0), p, i64(xs.dim(static_cast<int>(i)) - us.dim(static_cast<int>(i)))});
          starts[j] = out.add(Op::add, {starts[j], clamped});
        }
        std::vector<Value> update_operands = {map(nest->cache), rows};
        update_operands.insert(update_operands.end(), starts.begin(), starts.end());
        const Value updated = out.add(Op::dynamic_update_slice, update_operands);
        merged[static_cast<size_t>(nest->outer)] = updated;
        // The inner result is the region of the updated cache.
        ir::SliceAttrs region{nest->region, {}, std::vector<int64_t>(static_cast<size_t>(cache_shape.rank()), 1)};
        const Shape& slice_shape = graph.shape(through_unit_reshapes_up(graph, n.operands[0]));
        for (int j = 0; j < cache_shape.rank(); ++j)
          region.limit.push_back(nest->region[static_cast<size_t>(j)] + slice_shape.dim(j));
        const Value slice = out.add(Op::slice, {updated}, region);
        return std::vector<Value>{out.add(Op::reshape, {slice}, ir::ReshapeAttrs{xs})};
      });
}

}  // namespace kiln::passes
