// Reference kernels for gather and scatter, following the StableHLO spec
// (without batching dims). Indices are data, so every start index is made
// safe before use: gather clamps the start so the slice fits, scatter skips
// an update window that does not fit entirely.
#include <algorithm>
#include <vector>

#include "kiln/backend/reference/index_util.h"
#include "kiln/backend/reference/kernels.h"
#include "kiln/core/error.h"

namespace kiln::reference {
namespace {

bool contains(const ir::Axes& axes, int64_t axis) { return std::ranges::find(axes, axis) != axes.end(); }

// The axes of 0..rank-1 that are not in `excluded`, in increasing order.
std::vector<size_t> other_axes(int rank, const ir::Axes& excluded) {
  std::vector<size_t> axes;
  for (int i = 0; i < rank; ++i)
    if (!contains(excluded, i)) axes.push_back(static_cast<size_t>(i));
  return axes;
}

// Reads the start index vector that `indices` holds at the batch position
// `batch` (one entry per indices axis other than index_vector_dim, in order)
// into `starts`, spread onto the operand axes given by `to_operand_axes`.
// Operand axes not in `to_operand_axes` get 0.
void read_start_vector(const HostBuffer& indices, int64_t index_vector_dim, const std::vector<int64_t>& batch,
                       const ir::Axes& to_operand_axes, Index& starts) {
  const Shape& s = indices.shape();
  const auto ivd = static_cast<size_t>(index_vector_dim);
  Index position{};
  size_t next = 0;
  for (size_t axis = 0; axis < static_cast<size_t>(s.rank()); ++axis)
    if (axis != ivd) position[axis] = batch[next++];
  starts.fill(0);
  for (size_t j = 0; j < to_operand_axes.size(); ++j) {
    if (ivd < static_cast<size_t>(s.rank())) position[ivd] = static_cast<int64_t>(j);
    starts[static_cast<size_t>(to_operand_axes[j])] =
        load_index(indices.dtype(), indices.data() + byte_offset(s, position));
  }
}

// result[r] = operand[clamped start(r) + offset(r)], where the result axes in
// offset_dims walk the slice (minus collapsed axes) and the others pick the
// index vector.
HostBuffer gather(const ir::Node& node, const HostBuffer& operand, const HostBuffer& indices);

// The same shape with its innermost axis counted in bytes (u8): whole rows
// of blocks, which is all a gather from a quantized operand takes (infer.cpp).
Shape as_row_bytes(const Shape& s) {
  std::vector<int64_t> dims(s.dims().begin(), s.dims().end());
  dims.back() = dims.back() / block_size(s.dtype()) * static_cast<int64_t>(size_of(s.dtype()));
  return Shape(std::span<const int64_t>(dims), DType::u8);
}

HostBuffer gather_rows_of_blocks(const ir::Node& node, const HostBuffer& operand, const HostBuffer& indices) {
  const HostBuffer flat = operand.is_contiguous() ? operand : operand.copy();
  const HostBuffer bytes = HostBuffer::borrow(as_row_bytes(flat.shape()), {flat.data(), flat.shape().byte_size()},
                                              std::make_shared<HostBuffer>(flat));
  ir::Node as_bytes = node;
  auto& a = std::get<ir::GatherAttrs>(as_bytes.attrs);
  a.slice_sizes.back() = bytes.shape().dims().back();
  as_bytes.results[0] = as_row_bytes(node.results[0]);
  const HostBuffer rows = gather(as_bytes, bytes, indices);
  return HostBuffer::copy_of(node.results[0], {rows.data(), rows.shape().byte_size()});
}

HostBuffer gather(const ir::Node& node, const HostBuffer& operand, const HostBuffer& indices) {
  if (is_quantized(operand.dtype())) return gather_rows_of_blocks(node, operand, indices);
  const auto& a = node.attrs_as<ir::GatherAttrs>();
  const Shape& result_shape = node.results[0];
  const Shape& os = operand.shape();
  const std::vector<size_t> batch_dims = other_axes(result_shape.rank(), a.offset_dims);
  const std::vector<size_t> window_axes = other_axes(os.rank(), a.collapsed_slice_dims);
  HostBuffer result = HostBuffer::allocate(result_shape);
  // A collapsed axis of slice size 0 (allowed by StableHLO, which only asks
  // for <= 1) makes every slice empty while the result need not be: there is
  // nothing to take, so the result stays zero rather than reading past the
  // operand.
  for (int64_t d : a.collapsed_slice_dims)
    if (a.slice_sizes[static_cast<size_t>(d)] == 0) return result;
  const size_t element = size_of(result_shape.dtype());
  std::byte* out = result.mutable_data();
  int64_t out_offset = 0;
  std::vector<int64_t> batch(batch_dims.size());
  Index from{};
  for_each_index(result_shape.dims(), [&](const Index& r) {
    for (size_t k = 0; k < batch_dims.size(); ++k) batch[k] = r[batch_dims[k]];
    read_start_vector(indices, a.index_vector_dim, batch, a.start_index_map, from);
    for (int d = 0; d < os.rank(); ++d) {
      const auto ax = static_cast<size_t>(d);
      from[ax] = std::clamp<int64_t>(from[ax], 0, os.dim(d) - a.slice_sizes[ax]);
    }
    for (size_t k = 0; k < window_axes.size(); ++k) from[window_axes[k]] += r[static_cast<size_t>(a.offset_dims[k])];
    copy_element(out + out_offset, operand.data() + byte_offset(os, from), element);
    out_offset += static_cast<int64_t>(element);
  });
  return result;
}

// Combines update elements into the result. Floats accumulate in double and
// are rounded once per element at the end (elements no update touches keep
// their exact bits); integers wrap; bool add is logical or (as XLA's add on
// pred).
class Combiner {
 public:
  Combiner(HostBuffer& result, ir::ScatterMode mode)
      : result_(result), mode_(mode), dtype_(result.dtype()), element_(size_of(dtype_)) {
    if (mode_ == ir::ScatterMode::add && is_float(dtype_)) {
      sums_.resize(static_cast<size_t>(result.shape().count()));
      touched_.resize(sums_.size());
    }
  }

  void apply(int64_t result_offset, const std::byte* update) {
    std::byte* target = result_.mutable_data() + result_offset;
    if (mode_ == ir::ScatterMode::replace) return copy_element(target, update, element_);
    if (is_float(dtype_)) {
      const auto i = static_cast<size_t>(result_offset) / element_;
      if (!touched_[i]) sums_[i] = load_double(dtype_, target);
      touched_[i] = true;
      sums_[i] += load_double(dtype_, update);
    } else if (dtype_ == DType::bool_) {
      store_int(dtype_, target, (load_int(dtype_, target) != 0 || load_int(dtype_, update) != 0) ? 1 : 0);
    } else {
      const uint64_t sum =
          static_cast<uint64_t>(load_int(dtype_, target)) + static_cast<uint64_t>(load_int(dtype_, update));
      store_int(dtype_, target, static_cast<int64_t>(sum));
    }
  }

  void finish() {
    for (size_t i = 0; i < touched_.size(); ++i)
      if (touched_[i]) store_double(dtype_, result_.mutable_data() + i * element_, sums_[i]);
  }

 private:
  HostBuffer& result_;
  ir::ScatterMode mode_;
  DType dtype_;
  size_t element_;
  std::vector<double> sums_;
  std::vector<bool> touched_;
};

// For each update element u: the index vector picked by u's scatter axes
// gives the window start in the operand, u's window axes (plus zeros for
// inserted_window_dims) the position inside the window.
HostBuffer scatter(const ir::Node& node, const HostBuffer& operand, const HostBuffer& indices,
                   const HostBuffer& updates) {
  const auto& a = node.attrs_as<ir::ScatterAttrs>();
  const Shape& os = operand.shape();
  const Shape& us = updates.shape();
  HostBuffer result = HostBuffer::copy_of(node.results[0], operand.bytes());
  const std::vector<size_t> update_scatter_dims = other_axes(us.rank(), a.update_window_dims);
  const std::vector<size_t> window_axes = other_axes(os.rank(), a.inserted_window_dims);
  Index window_size{};
  for (int d = 0; d < os.rank(); ++d) window_size[static_cast<size_t>(d)] = 1;
  for (size_t k = 0; k < window_axes.size(); ++k)
    window_size[window_axes[k]] = us.dim(static_cast<int>(a.update_window_dims[k]));

  Combiner combiner(result, a.mode);
  const size_t element = size_of(us.dtype());
  int64_t in_offset = 0;
  std::vector<int64_t> batch(update_scatter_dims.size());
  Index to{};
  for_each_index(us.dims(), [&](const Index& u) {
    const std::byte* update = updates.data() + in_offset;
    in_offset += static_cast<int64_t>(element);
    for (size_t k = 0; k < update_scatter_dims.size(); ++k) batch[k] = u[update_scatter_dims[k]];
    read_start_vector(indices, a.index_vector_dim, batch, a.scatter_dims_to_operand_dims, to);
    // The whole window must fit, not just this element (StableHLO/XLA skip
    // the entire update window).
    for (int d = 0; d < os.rank(); ++d) {
      const auto ax = static_cast<size_t>(d);
      if (to[ax] < 0 || to[ax] > os.dim(d) - window_size[ax]) return;
    }
    for (size_t k = 0; k < window_axes.size(); ++k)
      to[window_axes[k]] += u[static_cast<size_t>(a.update_window_dims[k])];
    combiner.apply(byte_offset(os, to), update);
  });
  combiner.finish();
  return result;
}

}  // namespace

Results eval_indexing(const ir::Node& node, Operands operands) {
  using ir::Op;
  switch (node.op) {
    case Op::gather:
      return {gather(node, operands[0], operands[1])};
    case Op::scatter:
      return {scatter(node, operands[0], operands[1], operands[2])};
    default:  // interpreter.cpp sends only this family's ops here
      break;
  }
  fail("[{}] is not an indexing op", ir::name(node.op));
}

}  // namespace kiln::reference
