#include "kiln/passes/simplify.h"

#include <algorithm>

#include "kiln/core/element.h"
#include "kiln/ir/rewrite.h"

namespace kiln::passes {
namespace {

using ir::Op;

bool same_dims(const Shape& a, const Shape& b) { return std::ranges::equal(a.dims(), b.dims()); }

// A constant (possibly broadcast) whose every element is `value`.
bool is_splat(const ir::Graph& g, ir::Value v, double value) {
  const ir::Node* n = &g.node(v.node);
  while (n->op == Op::broadcast_in_dim) n = &g.node(n->operands[0].node);
  if (n->op != Op::constant) return false;
  const HostBuffer& c = n->attrs_as<ir::ConstantAttrs>().value;
  if (!is_float(c.dtype()) || !c.is_contiguous()) return false;
  const size_t size = size_of(c.dtype());
  for (int64_t i = 0; i < c.shape().count(); ++i)
    if (load_double(c.dtype(), c.data() + i * static_cast<int64_t>(size)) != value) return false;
  return true;
}

}  // namespace

ir::Graph simplify(const ir::Graph& graph) {
  return ir::rebuild(
      graph, [&](ir::Graph& out, const ir::Node& n, const std::vector<ir::Value>& a, const ir::ValueMap&) {
        using Values = std::vector<ir::Value>;
        const Shape& result = n.results.empty() ? Shape() : n.results[0];
        switch (n.op) {
          case Op::convert:
            if (out.shape(a[0]).dtype() == result.dtype()) return Values{a[0]};
            break;
          case Op::reshape: {
            ir::Value x = a[0];
            const ir::Node& producer = out.node(x.node);
            if (producer.op == Op::reshape) x = producer.operands[0];
            if (same_dims(out.shape(x), result)) return Values{x};
            if (x != a[0]) return Values{out.add(Op::reshape, {x}, n.attrs)};
            break;
          }
          case Op::transpose: {
            auto perm = n.attrs_as<ir::TransposeAttrs>().permutation;
            ir::Value x = a[0];
            const ir::Node& producer = out.node(x.node);
            if (producer.op == Op::transpose) {  // result i = inner[outer[i]]
              const auto& inner = producer.attrs_as<ir::TransposeAttrs>().permutation;
              for (int64_t& p : perm) p = inner[static_cast<size_t>(p)];
              x = producer.operands[0];
            }
            bool identity = true;
            for (size_t i = 0; i < perm.size(); ++i) identity &= perm[i] == static_cast<int64_t>(i);
            if (identity) return Values{x};
            if (x != a[0]) return Values{out.add(Op::transpose, {x}, ir::TransposeAttrs{perm})};
            break;
          }
          case Op::broadcast_in_dim: {
            auto attrs = n.attrs_as<ir::BroadcastAttrs>();
            ir::Value x = a[0];
            const ir::Node& producer = out.node(x.node);
            if (producer.op == Op::broadcast_in_dim) {  // compose the axis maps
              const auto& inner = producer.attrs_as<ir::BroadcastAttrs>().dims;
              ir::Axes dims;
              for (int64_t d : inner) dims.push_back(attrs.dims[static_cast<size_t>(d)]);
              x = producer.operands[0];
              attrs.dims = dims;
            }
            bool identity = same_dims(out.shape(x), result);
            for (size_t i = 0; identity && i < attrs.dims.size(); ++i)
              identity = attrs.dims[i] == static_cast<int64_t>(i);
            if (identity) return Values{x};
            if (x != a[0]) return Values{out.add(Op::broadcast_in_dim, {x}, attrs)};
            break;
          }
          case Op::slice: {
            const auto& s = n.attrs_as<ir::SliceAttrs>();
            const Shape& in = out.shape(a[0]);
            bool full = true;
            for (int i = 0; i < in.rank(); ++i)
              full &= s.start[static_cast<size_t>(i)] == 0 && s.limit[static_cast<size_t>(i)] == in.dim(i) &&
                      s.stride[static_cast<size_t>(i)] == 1;
            if (full) return Values{a[0]};
            break;
          }
          case Op::mul:
            if (is_float(result.dtype())) {
              if (is_splat(out, a[1], 1.0)) return Values{a[0]};
              if (is_splat(out, a[0], 1.0)) return Values{a[1]};
            }
            break;
          case Op::div:
            if (is_float(result.dtype()) && is_splat(out, a[1], 1.0)) return Values{a[0]};
            break;
          default:
            break;
        }
        return Values{};
      });
}

}  // namespace kiln::passes
