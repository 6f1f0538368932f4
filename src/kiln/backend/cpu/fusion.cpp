#include "kiln/backend/cpu/fusion.h"

#include <algorithm>

namespace kiln::cpu {
namespace {

using ir::Family;
using ir::Op;

bool is_f8(DType d) { return d == DType::f8e4m3fn || d == DType::f8e5m2; }

bool same_dims(std::span<const int64_t> a, std::span<const int64_t> b) { return std::ranges::equal(a, b); }

// Movement and conversion nodes that cost a load: recomputing them in each
// group that uses them is cheaper than a round trip through memory.
bool is_cheap(const ir::Node& node) {
  switch (node.op) {
    case Op::broadcast_in_dim:
    case Op::reshape:
    case Op::transpose:
    case Op::slice:
    case Op::reverse:
    case Op::convert:
    case Op::iota:
    case Op::dynamic_slice:
      return true;
    default:
      return false;
  }
}

// Ops that cost much more than a load: recomputing them for every element
// of a broadcast would be slow (cos/sin of a RoPE table per head).
bool is_expensive(const ir::Node& node) {
  switch (node.op) {
    case Op::exp:
    case Op::expm1:
    case Op::log:
    case Op::log1p:
    case Op::sqrt:
    case Op::rsqrt:
    case Op::cbrt:
    case Op::tanh:
    case Op::logistic:
    case Op::sin:
    case Op::cos:
    case Op::tan:
    case Op::erf:
    case Op::pow:
    case Op::atan2:
    case Op::rem:
    case Op::div:
      return true;
    default:
      return false;
  }
}

// A broadcast that only appends trailing axes (every operand axis keeps its
// size): the operand's index does not depend on the inner loop, so the
// renderer hoists it out and computes it once per row.
bool is_inner_broadcast(const ir::Node& node, const Shape& operand) {
  const auto& a = node.attrs_as<ir::BroadcastAttrs>();
  for (size_t j = 0; j < a.dims.size(); ++j)
    if (a.dims[j] != static_cast<int64_t>(j) || operand.dim(static_cast<int>(j)) != a.shape.dim(static_cast<int>(j)))
      return false;
  return true;
}

struct Builder {
  const ir::Graph& graph;
  std::vector<std::vector<int32_t>> users;
  std::vector<bool> is_output;
  Fusion fusion;
  // Per group: the domain of its row phases (dims of the reduced value and the axes reduced).
  struct Domain {
    std::vector<int64_t> dims;
    ir::Axes axes;
  };
  std::vector<Domain> domains;

  explicit Builder(const ir::Graph& g) : graph(g) {
    const size_t n = graph.nodes().size();
    users.resize(n);
    is_output.assign(n, false);
    for (size_t id = 0; id < n; ++id)
      for (const ir::Value& v : graph.node(static_cast<int32_t>(id)).operands) {
        auto& list = users[static_cast<size_t>(v.node)];
        if (list.empty() || list.back() != static_cast<int32_t>(id)) list.push_back(static_cast<int32_t>(id));
      }
    for (const ir::Value& v : graph.outputs()) is_output[static_cast<size_t>(v.node)] = true;
    fusion.group_of.assign(n, kNotInlined);
    fusion.materialized.assign(n, false);
  }

  const ir::Node& node(int32_t id) const { return graph.node(id); }
  std::span<const int64_t> dims(int32_t id) const { return node(id).results[0].dims(); }

  int32_t new_group(int32_t root) {
    fusion.groups.push_back({root, {}});
    domains.emplace_back();
    if (node(root).op == Op::reduce) {
      fusion.groups.back().phases.push_back(root);
      const Shape& in = graph.shape(node(root).operands[0]);
      domains.back() = {{in.dims().begin(), in.dims().end()}, node(root).attrs_as<ir::ReduceAttrs>().axes};
    }
    fusion.materialized[static_cast<size_t>(root)] = true;
    return static_cast<int32_t>(fusion.groups.size() - 1);
  }

  bool is_phase(int32_t id, int32_t g) const {
    const auto& phases = fusion.groups[static_cast<size_t>(g)].phases;
    return std::find(phases.begin(), phases.end(), id) != phases.end();
  }

  // A full-domain value of group g: its uses must keep the row's index
  // (elementwise over the domain) up to the root or into a row phase.
  bool full_ok(int32_t id, int32_t g, std::span<const int64_t> domain) const {
    const int32_t root = fusion.groups[static_cast<size_t>(g)].root;
    if (id == root) return same_dims(dims(root), domain);
    for (int32_t u : users[static_cast<size_t>(id)]) {
      if (fusion.group_of[static_cast<size_t>(u)] != g) return false;
      const ir::Node& user = node(u);
      if (user.op == Op::reduce && is_phase(u, g)) continue;
      if (!ir::is_elementwise(user.op) || !same_dims(dims(u), domain) || !full_ok(u, g, domain)) return false;
    }
    return true;
  }

  // A row value (one per kept index) of group g: used elementwise at the
  // row level, or broadcast back along the reduced axes into the domain.
  bool row_ok(int32_t id, int32_t g, std::span<const int64_t> domain, std::span<const int64_t> row,
              const ir::Axes& kept) const {
    const int32_t root = fusion.groups[static_cast<size_t>(g)].root;
    if (id == root) return same_dims(dims(root), row);
    for (int32_t u : users[static_cast<size_t>(id)]) {
      if (fusion.group_of[static_cast<size_t>(u)] != g) return false;
      const ir::Node& user = node(u);
      if (ir::is_elementwise(user.op) && same_dims(dims(u), row)) {
        if (!row_ok(u, g, domain, row, kept)) return false;
      } else if (user.op == Op::broadcast_in_dim && same_dims(dims(u), domain) &&
                 user.attrs_as<ir::BroadcastAttrs>().dims == kept) {
        if (!full_ok(u, g, domain)) return false;
      } else {
        return false;
      }
    }
    return true;
  }

  bool joins_as_phase(int32_t id, int32_t g) const {
    const ir::Node& r = node(id);
    const Shape& in = graph.shape(r.operands[0]);
    const auto& axes = r.attrs_as<ir::ReduceAttrs>().axes;
    const Domain& domain = domains[static_cast<size_t>(g)];
    if (!domain.dims.empty() || !fusion.groups[static_cast<size_t>(g)].phases.empty()) {
      if (!same_dims(domain.dims, in.dims()) || domain.axes != axes) return false;
    }
    ir::Axes kept;
    for (int i = 0; i < in.rank(); ++i)
      if (std::find(axes.begin(), axes.end(), i) == axes.end()) kept.push_back(i);
    return row_ok(id, g, in.dims(), dims(id), kept);
  }

  // Expensive values under a broadcast that expands them along an inner
  // axis would be recomputed per broadcast element: materialize them.
  bool feeds_expanding_broadcast(int32_t id) const {
    for (int32_t u : users[static_cast<size_t>(id)]) {
      const ir::Node& user = node(u);
      if (user.op == Op::broadcast_in_dim && user.results[0].count() > node(id).results[0].count() &&
          !is_inner_broadcast(user, node(id).results[0]))
        return true;
    }
    return false;
  }

  void place(int32_t id) {
    const ir::Node& n = node(id);
    const size_t i = static_cast<size_t>(id);
    if (n.op == Op::parameter) {
      fusion.materialized[i] = true;
      return;
    }
    if (n.op == Op::constant) {
      // Scalars become literals in the loop nests; opaque users read memory.
      bool opaque_user = is_output[i];
      for (int32_t u : users[i]) opaque_user |= fusion.group_of[static_cast<size_t>(u)] == kNotInlined;
      const bool literal = n.results[0].rank() == 0 && !is_f8(n.results[0].dtype());
      if (literal) fusion.group_of[i] = kInlineAnywhere;
      fusion.materialized[i] = !literal || opaque_user;
      return;
    }
    if (!is_loop_nest_node(graph, n)) {
      fusion.materialized[i] = true;
      return;
    }
    bool must_root = is_output[i];
    int32_t candidate = kNotInlined;
    bool single_group = true;
    for (int32_t u : users[i]) {
      const int32_t g = fusion.group_of[static_cast<size_t>(u)];
      if (g < 0) {
        must_root |= g == kNotInlined;  // an opaque user reads memory
        single_group = false;
      } else if (candidate == kNotInlined) {
        candidate = g;
      } else if (candidate != g) {
        single_group = false;
      }
    }
    if (users[i].empty()) must_root = true;
    const bool join = !must_root && single_group && candidate >= 0;
    if (n.op == Op::reduce) {
      if (join && joins_as_phase(id, candidate)) {
        fusion.group_of[i] = candidate;
        auto& group = fusion.groups[static_cast<size_t>(candidate)];
        group.phases.insert(group.phases.begin(), id);
        const Shape& in = graph.shape(n.operands[0]);
        domains[static_cast<size_t>(candidate)] = {{in.dims().begin(), in.dims().end()},
                                                   n.attrs_as<ir::ReduceAttrs>().axes};
      } else {
        fusion.group_of[i] = new_group(id);
      }
      return;
    }
    if (join && (!is_expensive(n) || !feeds_expanding_broadcast(id))) {
      fusion.group_of[i] = candidate;
    } else if (!must_root && is_cheap(n)) {
      fusion.group_of[i] = kInlineAnywhere;
    } else {
      fusion.group_of[i] = new_group(id);
    }
  }
};

}  // namespace

bool is_loop_nest_node(const ir::Graph& graph, const ir::Node& node) {
  // f8 and block-quantized values are left to shared kernels (the
  // quantized dots have kernels of their own).
  auto unrendered = [](DType d) { return is_f8(d) || is_quantized(d); };
  for (const Shape& s : node.results)
    if (unrendered(s.dtype())) return false;
  for (const ir::Value& v : node.operands)
    if (unrendered(graph.shape(v).dtype())) return false;
  switch (ir::family(node.op)) {
    case Family::generator:
    case Family::unary:
    case Family::binary:
    case Family::ternary:
      return true;
    case Family::conversion:  // a bitcast between sizes changes the rank: a shared kernel does it
      return node.op == Op::convert ||
             size_of(node.results[0].dtype()) == size_of(graph.shape(node.operands[0]).dtype());
    case Family::movement:
      return node.op != Op::dynamic_update_slice;
    case Family::reduction: {
      if (node.op != Op::reduce || node.results.size() != 1) return false;
      const auto kind = node.attrs_as<ir::ReduceAttrs>().kind;
      return kind != ir::ReduceKind::argmax && kind != ir::ReduceKind::argmin;
    }
    default:
      return false;
  }
}

Fusion fuse(const ir::Graph& graph) {
  Builder b(graph);
  const auto count = static_cast<int32_t>(graph.nodes().size());
  for (int32_t id = count - 1; id >= 0; --id) b.place(id);
  // Groups were made from the last node backwards: put them in program order.
  std::vector<size_t> order(b.fusion.groups.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](size_t x, size_t y) { return b.fusion.groups[x].root < b.fusion.groups[y].root; });
  std::vector<int32_t> renumber(order.size());
  Fusion result;
  for (size_t k = 0; k < order.size(); ++k) {
    renumber[order[k]] = static_cast<int32_t>(k);
    result.groups.push_back(b.fusion.groups[order[k]]);
  }
  result.group_of = b.fusion.group_of;
  for (int32_t& g : result.group_of)
    if (g >= 0) g = renumber[static_cast<size_t>(g)];
  result.materialized = b.fusion.materialized;
  return result;
}

}  // namespace kiln::cpu
