#include "kiln/backend/cpu/layout.h"

#include <algorithm>

#include "kiln/backend/cpu/matmul.h"
#include "kiln/ir/rewrite.h"

namespace kiln::cpu {
namespace {

ir::Value transposed(ir::Graph& g, ir::Value v, const ir::Axes& order) {
  bool identity = true;
  for (size_t i = 0; i < order.size(); ++i) identity &= order[i] == static_cast<int64_t>(i);
  return identity ? v : g.add(ir::Op::transpose, {v}, ir::TransposeAttrs{order});
}

ir::Value converted(ir::Graph& g, ir::Value v, DType to) {
  return g.shape(v).dtype() == to ? v : g.add(ir::Op::convert, {v}, ir::ConvertAttrs{to});
}

// Adds `dot` (operands already mapped) to `g` in a form matmul_shape() takes.
ir::Value add_canonical_dot(ir::Graph& g, const ir::Node& dot, ir::Value lhs, ir::Value rhs) {
  auto a = dot.attrs_as<ir::DotAttrs>();
  const DType operand = g.shape(lhs).dtype();
  // A block-quantized rhs stays as stored, [free..., K] (infer.cpp allows
  // no other layout), against an f32 lhs (quantized_matmul.h).
  const bool quantized = is_quantized(g.shape(rhs).dtype());
  // bf16 and f16 reach the matmul as stored (f16 is computed in f32 there:
  // its weights widened once at prepare, or streamed by the matvec kernels).
  const DType compute = !quantized && (operand == DType::bf16 || operand == DType::f16) ? operand : DType::f32;
  lhs = converted(g, lhs, compute);
  if (!quantized) rhs = converted(g, rhs, compute);
  const DType result = (a.result == DType::f32 || a.result == compute) ? a.result : DType::f32;
  ir::DotAttrs attrs = a;
  attrs.result = result;
  ir::Node probe{ir::Op::dot_general, {lhs, rhs}, {}, attrs};
  if (!matmul_shape(g, probe)) {
    const ir::Axes lhs_free = free_axes(g.shape(lhs).rank(), a.lhs_batch, a.lhs_contracting);
    const ir::Axes rhs_free = free_axes(g.shape(rhs).rank(), a.rhs_batch, a.rhs_contracting);
    ir::Axes lhs_order = a.lhs_batch, rhs_order = a.rhs_batch;
    lhs_order.insert(lhs_order.end(), lhs_free.begin(), lhs_free.end());
    lhs_order.insert(lhs_order.end(), a.lhs_contracting.begin(), a.lhs_contracting.end());
    rhs_order.insert(rhs_order.end(), a.rhs_contracting.begin(), a.rhs_contracting.end());
    rhs_order.insert(rhs_order.end(), rhs_free.begin(), rhs_free.end());
    lhs = transposed(g, lhs, lhs_order);
    if (!quantized) rhs = transposed(g, rhs, rhs_order);
    const auto nb = static_cast<int64_t>(a.lhs_batch.size()), nc = static_cast<int64_t>(a.lhs_contracting.size());
    const auto nf = static_cast<int64_t>(lhs_free.size());
    attrs.lhs_batch.clear(), attrs.lhs_contracting.clear();
    for (int64_t i = 0; i < nb; ++i) attrs.lhs_batch.push_back(i);
    for (int64_t i = 0; i < nc; ++i) attrs.lhs_contracting.push_back(nb + nf + i);
    if (!quantized) {
      attrs.rhs_batch.clear(), attrs.rhs_contracting.clear();
      for (int64_t i = 0; i < nb; ++i) attrs.rhs_batch.push_back(i);
      for (int64_t i = 0; i < nc; ++i) attrs.rhs_contracting.push_back(nb + i);
    }
  }
  const ir::Value out = g.add(ir::Op::dot_general, {lhs, rhs}, attrs);
  return converted(g, out, a.result);
}

}  // namespace

ir::Graph canonicalize_dots(const ir::Graph& graph) {
  return ir::rebuild(
      graph, [&](ir::Graph& out, const ir::Node& n, const std::vector<ir::Value>& operands, const ir::ValueMap&) {
        if (n.op != ir::Op::dot_general) return std::vector<ir::Value>{};
        const DType operand = out.shape(operands[0]).dtype();
        if (operand != DType::f32 && operand != DType::bf16 && operand != DType::f16) return std::vector<ir::Value>{};
        return std::vector<ir::Value>{add_canonical_dot(out, n, operands[0], operands[1])};
      });
}

}  // namespace kiln::cpu
