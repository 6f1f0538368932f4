// Reference kernels for data movement: broadcast_in_dim, reshape, transpose,
// slice, dynamic_slice, dynamic_update_slice, concatenate, pad, reverse.
// All of them only move elements, so they work on raw bytes of
// size_of(dtype) and are exact for every dtype (NaN payloads and -0 kept).
#include <algorithm>
#include <cstring>

#include "kiln/backend/reference/index_util.h"
#include "kiln/backend/reference/kernels.h"
#include "kiln/core/error.h"

namespace kiln::reference {
namespace {

// Every result element read from the operand element that `source` maps the
// result index to (the operand index is written into its second argument).
template <typename Source>
HostBuffer gather_elements(const HostBuffer& operand, const Shape& result_shape, Source source) {
  HostBuffer result = HostBuffer::allocate(result_shape);
  const size_t element = size_of(result_shape.dtype());
  const std::byte* in = operand.data();
  std::byte* out = result.mutable_data();
  int64_t out_offset = 0;
  Index from{};
  for_each_index(result_shape.dims(), [&](const Index& index) {
    source(index, from);
    copy_element(out + out_offset, in + byte_offset(operand.shape(), from), element);
    out_offset += static_cast<int64_t>(element);
  });
  return result;
}

HostBuffer broadcast_in_dim(const ir::Node& node, const HostBuffer& operand) {
  const auto& a = node.attrs_as<ir::BroadcastAttrs>();
  const Shape& s = operand.shape();
  return gather_elements(operand, node.results[0], [&](const Index& r, Index& from) {
    for (int i = 0; i < s.rank(); ++i)
      from[static_cast<size_t>(i)] = s.dim(i) == 1 ? 0 : r[static_cast<size_t>(a.dims[static_cast<size_t>(i)])];
  });
}

HostBuffer reshape(const ir::Node& node, const HostBuffer& operand) {
  // Row-major order is the same before and after: the bytes are unchanged.
  return HostBuffer::copy_of(node.results[0], operand.bytes());
}

HostBuffer transpose(const ir::Node& node, const HostBuffer& operand) {
  const auto& perm = node.attrs_as<ir::TransposeAttrs>().permutation;
  return gather_elements(operand, node.results[0], [&](const Index& r, Index& from) {
    for (size_t i = 0; i < perm.size(); ++i) from[static_cast<size_t>(perm[i])] = r[i];
  });
}

HostBuffer slice(const ir::Node& node, const HostBuffer& operand) {
  const auto& a = node.attrs_as<ir::SliceAttrs>();
  return gather_elements(operand, node.results[0], [&](const Index& r, Index& from) {
    for (size_t i = 0; i < a.start.size(); ++i) from[i] = a.start[i] + r[i] * a.stride[i];
  });
}

// StableHLO clamps each start index to [0, dim - size], so a dynamic slice
// or update always lies inside the operand whatever the index values are.
Index clamped_starts(const Shape& operand, std::span<const int64_t> sizes, Operands start_operands) {
  Index starts{};
  for (int i = 0; i < operand.rank(); ++i) {
    const HostBuffer& scalar = start_operands[static_cast<size_t>(i)];
    const int64_t start = load_index(scalar.dtype(), scalar.data());
    starts[static_cast<size_t>(i)] = std::clamp<int64_t>(start, 0, operand.dim(i) - sizes[static_cast<size_t>(i)]);
  }
  return starts;
}

HostBuffer dynamic_slice(const ir::Node& node, Operands operands) {
  const HostBuffer& operand = operands[0];
  const auto& sizes = node.attrs_as<ir::DynamicSliceAttrs>().sizes;
  const Index starts = clamped_starts(operand.shape(), sizes, operands.subspan(1));
  return gather_elements(operand, node.results[0], [&](const Index& r, Index& from) {
    for (size_t i = 0; i < sizes.size(); ++i) from[i] = starts[i] + r[i];
  });
}

HostBuffer dynamic_update_slice(const ir::Node& node, Operands operands) {
  const HostBuffer& operand = operands[0];
  const HostBuffer& update = operands[1];
  const Shape& result_shape = node.results[0];
  const Index starts = clamped_starts(operand.shape(), update.shape().dims(), operands.subspan(2));
  HostBuffer result = HostBuffer::copy_of(result_shape, operand.bytes());
  const size_t element = size_of(result_shape.dtype());
  std::byte* out = result.mutable_data();
  int64_t in_offset = 0;
  Index to{};
  for_each_index(update.shape().dims(), [&](const Index& u) {
    for (int i = 0; i < result_shape.rank(); ++i)
      to[static_cast<size_t>(i)] = starts[static_cast<size_t>(i)] + u[static_cast<size_t>(i)];
    copy_element(out + byte_offset(result_shape, to), update.data() + in_offset, element);
    in_offset += static_cast<int64_t>(element);
  });
  return result;
}

HostBuffer concatenate(const ir::Node& node, Operands operands) {
  const auto axis = static_cast<size_t>(node.attrs_as<ir::ConcatenateAttrs>().axis);
  const Shape& result_shape = node.results[0];
  HostBuffer result = HostBuffer::allocate(result_shape);
  const size_t element = size_of(result_shape.dtype());
  std::byte* out = result.mutable_data();
  int64_t axis_offset = 0;  // where the current operand starts along `axis`
  for (const HostBuffer& operand : operands) {
    int64_t in_offset = 0;
    Index to{};
    for_each_index(operand.shape().dims(), [&](const Index& i) {
      to = i;
      to[axis] += axis_offset;
      copy_element(out + byte_offset(result_shape, to), operand.data() + in_offset, element);
      in_offset += static_cast<int64_t>(element);
    });
    axis_offset += operand.shape().dim(static_cast<int>(axis));
  }
  return result;
}

// Operand element i lands at low + i * (interior + 1) on each axis; elements
// that land outside the result (negative low/high crop) are dropped, and
// every other result element is the padding value.
HostBuffer pad(const ir::Node& node, const HostBuffer& operand, const HostBuffer& padding_value) {
  const auto& a = node.attrs_as<ir::PadAttrs>();
  const Shape& result_shape = node.results[0];
  HostBuffer result = HostBuffer::allocate(result_shape);
  const size_t element = size_of(result_shape.dtype());
  std::byte* out = result.mutable_data();
  for (int64_t i = 0; i < result_shape.count(); ++i)
    copy_element(out + i * static_cast<int64_t>(element), padding_value.data(), element);
  int64_t in_offset = 0;
  Index to{};
  for_each_index(operand.shape().dims(), [&](const Index& i) {
    bool inside = true;
    for (int axis = 0; axis < result_shape.rank(); ++axis) {
      const auto ax = static_cast<size_t>(axis);
      to[ax] = a.low[ax] + i[ax] * (a.interior[ax] + 1);
      inside = inside && to[ax] >= 0 && to[ax] < result_shape.dim(axis);
    }
    if (inside) copy_element(out + byte_offset(result_shape, to), operand.data() + in_offset, element);
    in_offset += static_cast<int64_t>(element);
  });
  return result;
}

HostBuffer reverse(const ir::Node& node, const HostBuffer& operand) {
  const auto& axes = node.attrs_as<ir::ReverseAttrs>().axes;
  const Shape& s = operand.shape();
  return gather_elements(operand, node.results[0], [&](const Index& r, Index& from) {
    from = r;
    for (int64_t axis : axes) {
      const auto ax = static_cast<size_t>(axis);
      from[ax] = s.dim(static_cast<int>(axis)) - 1 - r[ax];
    }
  });
}

}  // namespace

Results eval_movement(const ir::Node& node, Operands operands) {
  using ir::Op;
  switch (node.op) {
    case Op::broadcast_in_dim:
      return {broadcast_in_dim(node, operands[0])};
    case Op::reshape:
      return {reshape(node, operands[0])};
    case Op::transpose:
      return {transpose(node, operands[0])};
    case Op::slice:
      return {slice(node, operands[0])};
    case Op::dynamic_slice:
      return {dynamic_slice(node, operands)};
    case Op::dynamic_update_slice:
      return {dynamic_update_slice(node, operands)};
    case Op::concatenate:
      return {concatenate(node, operands)};
    case Op::pad:
      return {pad(node, operands[0], operands[1])};
    case Op::reverse:
      return {reverse(node, operands[0])};
    default:  // interpreter.cpp sends only this family's ops here
      break;
  }
  fail("[{}] is not a movement op", ir::name(node.op));
}

}  // namespace kiln::reference
