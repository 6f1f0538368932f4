#include "kiln/ir/infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "kiln/core/error.h"

namespace kiln::ir {
namespace {

// Raises errors that start with the op name and end with the operands'
// tagged shapes: "[pad] interior padding must be >= 0: operand {4} f32, ...".
class Checker {
 public:
  Checker(Op op, std::span<const Shape> operands) : op_(op), operands_(operands) {}

  template <typename... Args>
  [[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) const {
    std::string message = fmt::format("[{}] {}", name(op_), fmt::format(format, std::forward<Args>(args)...));
    if (!operands_.empty()) {
      message += ": ";
      for (size_t i = 0; i < operands_.size(); ++i) {
        if (i) message += ", ";
        message += fmt::format("{} {}", label(i), operands_[i].to_string());
      }
    }
    throw Error(message);
  }

  void check(bool condition, std::string_view what) const {
    if (!condition) fail("{}", what);
  }

  const Shape& operand(size_t i) const { return operands_[i]; }
  size_t count() const { return operands_.size(); }

  // Axis numbers are printed by tag when the axis has one.
  std::string axis_name(const Shape& s, int64_t axis) const {
    const Tag& tag = s.tag(static_cast<int>(axis));
    return tag.empty() ? std::to_string(axis) : fmt::format("'{}'", tag.view());
  }

  void check_axis(int64_t axis, int rank, std::string_view what) const {
    if (axis < 0 || axis >= rank) fail("{} {} is out of range for rank {}", what, axis, rank);
  }
  void check_unique_axes(const Axes& axes, int rank, std::string_view what) const {
    std::set<int64_t> seen;
    for (int64_t a : axes) {
      check_axis(a, rank, what);
      if (!seen.insert(a).second) fail("{} {} appears twice", what, a);
    }
  }
  void check_size(const Axes& values, size_t expected, std::string_view what) const {
    if (values.size() != expected) fail("{} has {} entries, expected {}", what, values.size(), expected);
  }

  void check_rule(TypeRule rule, DType dtype) const {
    bool ok = true;
    std::string_view wanted;
    switch (rule) {
      case TypeRule::any:
        break;
      case TypeRule::numeric:
        ok = dtype != DType::bool_, wanted = "a number type";
        break;
      case TypeRule::floating:
        ok = is_float(dtype), wanted = "a float type";
        break;
      case TypeRule::signed_num:
        ok = is_float(dtype) || (is_integer(dtype) && !is_unsigned(dtype)), wanted = "a signed type";
        break;
      case TypeRule::integer:
        ok = is_integer(dtype), wanted = "an integer type";
        break;
      case TypeRule::int_or_bool:
        ok = is_integer(dtype) || dtype == DType::bool_, wanted = "an integer or bool type";
        break;
    }
    if (!ok) fail("{} is not supported; expected {}", name(dtype), wanted);
  }

  void check_same_dtype(const Shape& a, const Shape& b, std::string_view what) const {
    if (a.dtype() != b.dtype())
      fail("{} have different dtypes ({} and {}); insert an explicit convert", what, name(a.dtype()), name(b.dtype()));
  }

 private:
  std::string label(size_t i) const {
    static constexpr std::string_view binary[] = {"lhs", "rhs"};
    static constexpr std::string_view select[] = {"pred", "on_true", "on_false"};
    static constexpr std::string_view clamp[] = {"min", "operand", "max"};
    static constexpr std::string_view gather[] = {"operand", "indices", "updates"};
    switch (op_) {
      case Op::select:
        return std::string(select[i]);
      case Op::clamp:
        return std::string(clamp[i]);
      case Op::gather:
      case Op::scatter:
        return std::string(gather[i]);
      case Op::pad:
        return i == 0 ? "operand" : "padding_value";
      default:
        if (operands_.size() == 2 && info(op_).arity == 2) return std::string(binary[i]);
        if (operands_.size() == 1) return "operand";
        return fmt::format("operand{}", i);
    }
  }

  Op op_;
  std::span<const Shape> operands_;
};

// A shape from dims and tags; a tag that would repeat is dropped, since the
// IR only needs dims (the Tensor API chooses meaningful tags).
Shape make_shape(const std::vector<int64_t>& dims, const std::vector<Tag>& tags, DType dtype) {
  std::vector<Tag> unique(tags.size());
  for (size_t i = 0; i < tags.size(); ++i) {
    bool repeated = false;
    for (size_t j = 0; j < i; ++j) repeated |= !tags[i].empty() && unique[j] == tags[i];
    if (!repeated) unique[i] = tags[i];
  }
  return Shape(dims, dtype).with_tags(unique);
}

std::vector<int64_t> dims_of(const Shape& s) { return {s.dims().begin(), s.dims().end()}; }
std::vector<Tag> tags_of(const Shape& s) { return {s.tags().begin(), s.tags().end()}; }

bool same_dims(const Shape& a, const Shape& b) { return std::ranges::equal(a.dims(), b.dims()); }

std::vector<Shape> infer_elementwise(Op op, const Checker& c) {
  const Shape& first = c.operand(0);
  for (size_t i = 1; i < c.count(); ++i) {
    if (!same_dims(first, c.operand(i))) c.fail("operands have different dims");
    c.check_same_dtype(first, c.operand(i), "operands");
  }
  c.check_rule(info(op).rule, first.dtype());
  if (op == Op::is_finite || op == Op::compare) return {first.with_dtype(DType::bool_)};
  return {first};
}

Shape infer_bitcast(const Checker& c, DType to) {
  const Shape& s = c.operand(0);
  const size_t from_size = size_of(s.dtype()), to_size = size_of(to);
  auto dims = dims_of(s);
  auto tags = tags_of(s);
  if (from_size > to_size) {  // one element becomes several: add a trailing axis
    dims.push_back(static_cast<int64_t>(from_size / to_size));
    tags.emplace_back();
    if (dims.size() > kMaxRank) c.fail("the result would have rank {}", dims.size());
  } else if (from_size < to_size) {  // the last axis folds into one element
    if (dims.empty() || dims.back() != static_cast<int64_t>(to_size / from_size))
      c.fail("converting {} to {} needs a last axis of size {}", name(s.dtype()), name(to), to_size / from_size);
    dims.pop_back();
    tags.pop_back();
  }
  return make_shape(dims, tags, to);
}

Shape infer_broadcast(const Checker& c, const BroadcastAttrs& a) {
  const Shape& s = c.operand(0);
  c.check_size(a.dims, static_cast<size_t>(s.rank()), "broadcast dims");
  c.check_unique_axes(a.dims, a.shape.rank(), "broadcast dim");
  for (int i = 0; i < s.rank(); ++i) {
    const int64_t target = a.shape.dim(static_cast<int>(a.dims[i]));
    if (s.dim(i) != 1 && s.dim(i) != target)
      c.fail("axis {} of size {} cannot broadcast to size {} (result axis {})", c.axis_name(s, i), s.dim(i), target,
             a.dims[i]);
  }
  return a.shape.with_dtype(s.dtype());
}

Shape infer_slice(const Checker& c, const SliceAttrs& a) {
  const Shape& s = c.operand(0);
  const size_t rank = static_cast<size_t>(s.rank());
  c.check_size(a.start, rank, "start");
  c.check_size(a.limit, rank, "limit");
  c.check_size(a.stride, rank, "stride");
  std::vector<int64_t> dims(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (a.stride[i] < 1) c.fail("stride {} on axis {} must be >= 1", a.stride[i], i);
    if (a.start[i] < 0 || a.start[i] > a.limit[i] || a.limit[i] > s.dim(static_cast<int>(i)))
      c.fail("range [{}, {}) is outside axis {} of size {}", a.start[i], a.limit[i],
             c.axis_name(s, static_cast<int64_t>(i)), s.dim(static_cast<int>(i)));
    dims[i] = (a.limit[i] - a.start[i] + a.stride[i] - 1) / a.stride[i];
  }
  return make_shape(dims, tags_of(s), s.dtype());
}

void check_start_indices(const Checker& c, size_t first, int rank) {
  if (c.count() != first + static_cast<size_t>(rank))
    c.fail("needs {} scalar start indices, one per axis, got {}", rank, c.count() - first);
  for (size_t i = first; i < c.count(); ++i) {
    if (c.operand(i).rank() != 0 || !is_integer(c.operand(i).dtype()))
      c.fail("start index {} must be an integer scalar", i - first);
    if (c.operand(i).dtype() != c.operand(first).dtype()) c.fail("start indices must all have one dtype");
  }
}

Shape infer_pad(const Checker& c, const PadAttrs& a) {
  const Shape& s = c.operand(0);
  if (c.operand(1).rank() != 0) c.fail("the padding value must be a scalar");
  c.check_same_dtype(s, c.operand(1), "operand and padding value");
  const size_t rank = static_cast<size_t>(s.rank());
  c.check_size(a.low, rank, "low padding");
  c.check_size(a.high, rank, "high padding");
  c.check_size(a.interior, rank, "interior padding");
  std::vector<int64_t> dims(rank);
  for (size_t i = 0; i < rank; ++i) {
    const int64_t d = s.dim(static_cast<int>(i));
    if (a.interior[i] < 0) c.fail("interior padding {} on axis {} must be >= 0", a.interior[i], i);
    dims[i] = a.low[i] + a.high[i] + d + std::max<int64_t>(d - 1, 0) * a.interior[i];
    if (dims[i] < 0) c.fail("axis {} would have negative size {}", i, dims[i]);
  }
  return make_shape(dims, tags_of(s), s.dtype());
}

// Batch dims of an indices tensor: all but index_vector_dim (which may be
// one past the last axis, meaning an implicit trailing axis of size 1).
std::vector<int64_t> index_batch_axes(const Checker& c, const Shape& indices, int64_t index_vector_dim,
                                      int64_t& index_size) {
  if (!is_integer(indices.dtype())) c.fail("indices must be integers, not {}", name(indices.dtype()));
  if (index_vector_dim < 0 || index_vector_dim > indices.rank())
    c.fail("index_vector_dim {} is out of range for indices of rank {}", index_vector_dim, indices.rank());
  index_size = index_vector_dim == indices.rank() ? 1 : indices.dim(static_cast<int>(index_vector_dim));
  std::vector<int64_t> axes;
  for (int i = 0; i < indices.rank(); ++i)
    if (i != index_vector_dim) axes.push_back(i);
  return axes;
}

Shape infer_gather(const Checker& c, const GatherAttrs& a) {
  const Shape& operand = c.operand(0);
  const Shape& indices = c.operand(1);
  int64_t index_size = 0;
  const auto batch = index_batch_axes(c, indices, a.index_vector_dim, index_size);
  c.check_size(a.slice_sizes, static_cast<size_t>(operand.rank()), "slice_sizes");
  c.check_size(a.start_index_map, static_cast<size_t>(index_size), "start_index_map");
  c.check_unique_axes(a.start_index_map, operand.rank(), "start_index_map axis");
  c.check_unique_axes(a.collapsed_slice_dims, operand.rank(), "collapsed_slice_dims axis");
  for (int i = 0; i < operand.rank(); ++i)
    if (a.slice_sizes[i] < 0 || a.slice_sizes[i] > operand.dim(i))
      c.fail("slice size {} on axis {} is outside [0, {}]", a.slice_sizes[i], i, operand.dim(i));
  for (int64_t d : a.collapsed_slice_dims)
    if (a.slice_sizes[d] > 1) c.fail("collapsed axis {} must have slice size <= 1", d);
  const size_t offset_count = static_cast<size_t>(operand.rank()) - a.collapsed_slice_dims.size();
  c.check_size(a.offset_dims, offset_count, "offset_dims");
  const int rank = static_cast<int>(batch.size() + offset_count);
  if (rank > kMaxRank) c.fail("the result would have rank {}", rank);
  c.check_unique_axes(a.offset_dims, rank, "offset_dims axis");
  if (!std::ranges::is_sorted(a.offset_dims)) c.fail("offset_dims must be sorted");

  std::vector<int64_t> window;  // slice sizes of the axes that are kept
  std::vector<Tag> window_tags;
  for (int i = 0; i < operand.rank(); ++i)
    if (std::ranges::find(a.collapsed_slice_dims, i) == a.collapsed_slice_dims.end()) {
      window.push_back(a.slice_sizes[i]);
      window_tags.push_back(operand.tag(i));
    }
  std::vector<int64_t> dims(rank);
  std::vector<Tag> tags(rank);
  size_t next_offset = 0, next_batch = 0;
  for (int i = 0; i < rank; ++i) {
    if (std::ranges::find(a.offset_dims, i) != a.offset_dims.end()) {
      dims[i] = window[next_offset];
      tags[i] = window_tags[next_offset++];
    } else {
      dims[i] = indices.dim(static_cast<int>(batch[next_batch]));
      tags[i] = indices.tag(static_cast<int>(batch[next_batch++]));
    }
  }
  return make_shape(dims, tags, operand.dtype());
}

Shape infer_scatter(const Checker& c, const ScatterAttrs& a) {
  const Shape& operand = c.operand(0);
  const Shape& indices = c.operand(1);
  const Shape& updates = c.operand(2);
  c.check_same_dtype(operand, updates, "operand and updates");
  int64_t index_size = 0;
  const auto batch = index_batch_axes(c, indices, a.index_vector_dim, index_size);
  c.check_size(a.scatter_dims_to_operand_dims, static_cast<size_t>(index_size), "scatter_dims_to_operand_dims");
  c.check_unique_axes(a.scatter_dims_to_operand_dims, operand.rank(), "scatter_dims_to_operand_dims axis");
  c.check_unique_axes(a.inserted_window_dims, operand.rank(), "inserted_window_dims axis");
  c.check_unique_axes(a.update_window_dims, updates.rank(), "update_window_dims axis");
  if (!std::ranges::is_sorted(a.update_window_dims)) c.fail("update_window_dims must be sorted");
  if (a.update_window_dims.size() + a.inserted_window_dims.size() != static_cast<size_t>(operand.rank()))
    c.fail("update_window_dims and inserted_window_dims must together cover the operand's {} axes", operand.rank());
  std::vector<int64_t> update_scatter;
  for (int i = 0; i < updates.rank(); ++i)
    if (std::ranges::find(a.update_window_dims, i) == a.update_window_dims.end()) update_scatter.push_back(i);
  if (update_scatter.size() != batch.size())
    c.fail("updates have {} scatter axes but indices have {} batch axes", update_scatter.size(), batch.size());
  for (size_t i = 0; i < batch.size(); ++i)
    if (updates.dim(static_cast<int>(update_scatter[i])) != indices.dim(static_cast<int>(batch[i])))
      c.fail("updates axis {} has size {} but indices axis {} has {}", update_scatter[i],
             updates.dim(static_cast<int>(update_scatter[i])), batch[i], indices.dim(static_cast<int>(batch[i])));
  size_t w = 0;
  for (int i = 0; i < operand.rank(); ++i) {
    if (std::ranges::find(a.inserted_window_dims, i) != a.inserted_window_dims.end()) continue;
    const int64_t size = updates.dim(static_cast<int>(a.update_window_dims[w++]));
    if (size > operand.dim(i))
      c.fail("update window size {} exceeds operand axis {} of size {}", size, i, operand.dim(i));
  }
  return operand;
}

std::vector<Shape> infer_reduce(const Checker& c, const ReduceAttrs& a) {
  const Shape& s = c.operand(0);
  c.check_unique_axes(a.axes, s.rank(), "reduce axis");
  switch (a.kind) {
    case ReduceKind::sum:
    case ReduceKind::prod:
      c.check_rule(TypeRule::numeric, s.dtype());
      break;
    case ReduceKind::and_:
    case ReduceKind::or_:
      c.check_rule(TypeRule::int_or_bool, s.dtype());
      break;
    case ReduceKind::max:
    case ReduceKind::min:
      break;
    case ReduceKind::argmax:
    case ReduceKind::argmin:
      c.check_rule(TypeRule::numeric, s.dtype());
      if (!is_integer(a.index_dtype)) c.fail("index dtype {} must be an integer type", name(a.index_dtype));
      for (int64_t axis : a.axes)
        if (s.dim(static_cast<int>(axis)) == 0) c.fail("argmax/argmin over the empty axis {}", axis);
      break;
  }
  std::vector<int64_t> dims;
  std::vector<Tag> tags;
  for (int i = 0; i < s.rank(); ++i)
    if (std::ranges::find(a.axes, i) == a.axes.end()) {
      dims.push_back(s.dim(i));
      tags.push_back(s.tag(i));
    }
  Shape values = make_shape(dims, tags, s.dtype());
  if (a.kind == ReduceKind::argmax || a.kind == ReduceKind::argmin) return {values, values.with_dtype(a.index_dtype)};
  return {values};
}

// Size of a windowed axis: input dilated by `base`, padded, then windows of
// `window` dilated by `dilation` every `stride`.
int64_t windowed_size(int64_t input, int64_t base, int64_t low, int64_t high, int64_t window, int64_t dilation,
                      int64_t stride) {
  const int64_t padded = (input == 0 ? 0 : (input - 1) * base + 1) + low + high;
  const int64_t extent = (window - 1) * dilation + 1;
  return padded < extent ? 0 : (padded - extent) / stride + 1;
}

Shape infer_reduce_window(const Checker& c, const ReduceWindowAttrs& a) {
  const Shape& s = c.operand(0);
  if (a.kind == ReduceKind::argmax || a.kind == ReduceKind::argmin || a.kind == ReduceKind::and_ ||
      a.kind == ReduceKind::or_)
    c.fail("reduce_window supports sum, prod, max and min");
  const size_t rank = static_cast<size_t>(s.rank());
  for (const auto* v : {&a.window, &a.strides, &a.padding_low, &a.padding_high, &a.base_dilation, &a.window_dilation})
    c.check_size(*v, rank, "each window attribute");
  std::vector<int64_t> dims(rank);
  for (size_t i = 0; i < rank; ++i) {
    if (a.window[i] < 1 || a.strides[i] < 1 || a.base_dilation[i] < 1 || a.window_dilation[i] < 1)
      c.fail("window, strides and dilations must be >= 1 (axis {})", i);
    dims[i] = windowed_size(s.dim(static_cast<int>(i)), a.base_dilation[i], a.padding_low[i], a.padding_high[i],
                            a.window[i], a.window_dilation[i], a.strides[i]);
  }
  return make_shape(dims, tags_of(s), s.dtype());
}

Shape infer_dot(const Checker& c, const DotAttrs& a) {
  const Shape& lhs = c.operand(0);
  const Shape& rhs = c.operand(1);
  if (!is_quantized(rhs.dtype())) c.check_same_dtype(lhs, rhs, "lhs and rhs");  // quantized: "dequantize, then dot"
  c.check_rule(TypeRule::numeric, a.result);
  if (is_float(lhs.dtype()) != is_float(a.result))
    c.fail("result dtype {} does not match the operands", name(a.result));
  if (a.lhs_batch.size() != a.rhs_batch.size()) c.fail("lhs and rhs have different numbers of batch axes");
  if (a.lhs_contracting.size() != a.rhs_contracting.size())
    c.fail("lhs and rhs have different numbers of contracting axes");
  Axes lhs_used = a.lhs_batch, rhs_used = a.rhs_batch;
  lhs_used.insert(lhs_used.end(), a.lhs_contracting.begin(), a.lhs_contracting.end());
  rhs_used.insert(rhs_used.end(), a.rhs_contracting.begin(), a.rhs_contracting.end());
  c.check_unique_axes(lhs_used, lhs.rank(), "lhs batch/contracting axis");
  c.check_unique_axes(rhs_used, rhs.rank(), "rhs batch/contracting axis");
  for (size_t i = 0; i < a.lhs_batch.size(); ++i)
    if (lhs.dim(static_cast<int>(a.lhs_batch[i])) != rhs.dim(static_cast<int>(a.rhs_batch[i])))
      c.fail("batch axis {} has {} on the left and {} on the right", c.axis_name(lhs, a.lhs_batch[i]),
             lhs.dim(static_cast<int>(a.lhs_batch[i])), rhs.dim(static_cast<int>(a.rhs_batch[i])));
  for (size_t i = 0; i < a.lhs_contracting.size(); ++i)
    if (lhs.dim(static_cast<int>(a.lhs_contracting[i])) != rhs.dim(static_cast<int>(a.rhs_contracting[i])))
      c.fail("contracting axis {} has {} on the left and {} on the right", c.axis_name(lhs, a.lhs_contracting[i]),
             lhs.dim(static_cast<int>(a.lhs_contracting[i])), rhs.dim(static_cast<int>(a.rhs_contracting[i])));
  std::vector<int64_t> dims;
  std::vector<Tag> tags;
  auto push = [&](const Shape& s, int64_t axis) {
    dims.push_back(s.dim(static_cast<int>(axis)));
    tags.push_back(s.tag(static_cast<int>(axis)));
  };
  for (int64_t axis : a.lhs_batch) push(lhs, axis);
  for (int i = 0; i < lhs.rank(); ++i)
    if (std::ranges::find(lhs_used, i) == lhs_used.end()) push(lhs, i);
  for (int i = 0; i < rhs.rank(); ++i)
    if (std::ranges::find(rhs_used, i) == rhs_used.end()) push(rhs, i);
  if (dims.size() > kMaxRank) c.fail("the result would have rank {}", dims.size());
  return make_shape(dims, tags, a.result);
}

Shape infer_convolution(const Checker& c, const ConvolutionAttrs& a) {
  const Shape& lhs = c.operand(0);
  const Shape& rhs = c.operand(1);
  c.check_same_dtype(lhs, rhs, "lhs and rhs");
  if (lhs.rank() < 3 || lhs.rank() != rhs.rank())
    c.fail("expects lhs [N, C, spatial...] and rhs [O, C/groups, spatial...] of the same rank >= 3");
  const size_t spatial = static_cast<size_t>(lhs.rank() - 2);
  for (const auto* v : {&a.strides, &a.padding_low, &a.padding_high, &a.lhs_dilation, &a.rhs_dilation})
    c.check_size(*v, spatial, "each convolution attribute");
  const int64_t groups = a.feature_group_count;
  if (groups < 1 || lhs.dim(1) % groups != 0 || rhs.dim(0) % groups != 0)
    c.fail("feature_group_count {} must divide the input features {} and output features {}", groups, lhs.dim(1),
           rhs.dim(0));
  if (rhs.dim(1) * groups != lhs.dim(1))
    c.fail("rhs has {} input features per group but lhs has {} features in {} groups", rhs.dim(1), lhs.dim(1), groups);
  std::vector<int64_t> dims = {lhs.dim(0), rhs.dim(0)};
  for (size_t i = 0; i < spatial; ++i) {
    if (a.strides[i] < 1 || a.lhs_dilation[i] < 1 || a.rhs_dilation[i] < 1)
      c.fail("strides and dilations must be >= 1 (spatial axis {})", i);
    dims.push_back(windowed_size(lhs.dim(static_cast<int>(i + 2)), a.lhs_dilation[i], a.padding_low[i],
                                 a.padding_high[i], rhs.dim(static_cast<int>(i + 2)), a.rhs_dilation[i], a.strides[i]));
  }
  return make_shape(dims, tags_of(lhs), lhs.dtype());
}

// Block-quantized values are weights: a dot takes one as its rhs (the
// blocks along a contracting axis), convert dequantizes one to a float
// type, gather takes whole rows of one (an embedding table), reshape
// retags one or regroups its outer axes. Every other op
// needs the elements one by one, which blocks do not give.
void check_quantized_operands(const Checker& c, Op op, std::span<const Shape> operands, const Attributes& attrs) {
  for (size_t i = 0; i < operands.size(); ++i) {
    const Shape& s = operands[i];
    if (!is_quantized(s.dtype())) continue;
    const int inner = s.rank() - 1;
    if (op == Op::dot_general && i == 1) {
      const auto& a = std::get<DotAttrs>(attrs);
      if (a.rhs_contracting.size() != 1 || a.rhs_contracting[0] != inner || !a.rhs_batch.empty())
        c.fail("a {} rhs must be contracted over its innermost axis alone, without batch axes", name(s.dtype()));
      if (!is_float(operands[0].dtype()))
        c.fail("a {} rhs needs a float lhs, not {}", name(s.dtype()), name(operands[0].dtype()));
      continue;
    }
    if (op == Op::convert && is_float(std::get<ConvertAttrs>(attrs).dtype)) continue;
    if (op == Op::reshape) {  // retagging, or regrouping the outer axes: the rows stay whole
      const Shape& to = std::get<ReshapeAttrs>(attrs).shape;
      if (inner < 0 || to.rank() == 0 || to.dim(to.rank() - 1) != s.dim(inner))
        c.fail("a reshape of a {} operand must keep its innermost axis ({})", name(s.dtype()), s.dim(inner));
      continue;
    }
    if (op == Op::gather && i == 0) {
      const auto& a = std::get<GatherAttrs>(attrs);
      if (inner < 0 || a.slice_sizes[static_cast<size_t>(inner)] != s.dim(inner) ||
          std::ranges::find(a.start_index_map, inner) != a.start_index_map.end() ||
          std::ranges::find(a.collapsed_slice_dims, inner) != a.collapsed_slice_dims.end())
        c.fail("gathers from a {} operand must take whole rows (its innermost axis entire)", name(s.dtype()));
      continue;
    }
    c.fail("does not take a {} operand (blocks of elements); dequantize it first with convert", name(s.dtype()));
  }
}

}  // namespace

std::vector<Shape> infer(Op op, std::span<const Shape> operands, const Attributes& attrs) {
  const Checker c(op, operands);
  const OpInfo& op_info = info(op);
  if (op_info.arity >= 0 && operands.size() != static_cast<size_t>(op_info.arity))
    c.fail("takes {} operands, got {}", op_info.arity, operands.size());
  if (attrs.index() != op_info.attrs_index) c.fail("has attributes of the wrong kind");
  check_quantized_operands(c, op, operands, attrs);

  // Unary and binary ops share one rule; every other op has its own.
  if (op_info.family == Family::unary || op_info.family == Family::binary) return infer_elementwise(op, c);
  switch (op) {
    case Op::parameter:
      return {std::get<ParameterAttrs>(attrs).shape};
    case Op::constant:
      return {std::get<ConstantAttrs>(attrs).value.shape()};
    case Op::iota: {
      const auto& a = std::get<IotaAttrs>(attrs);
      c.check_rule(op_info.rule, a.shape.dtype());
      c.check_axis(a.axis, a.shape.rank(), "iota axis");
      return {a.shape};
    }
    case Op::convert:
      return {operands[0].with_dtype(std::get<ConvertAttrs>(attrs).dtype)};
    case Op::bitcast_convert:
      return {infer_bitcast(c, std::get<ConvertAttrs>(attrs).dtype)};

    case Op::select: {
      if (operands[0].dtype() != DType::bool_) c.fail("pred must be bool, not {}", name(operands[0].dtype()));
      if (operands[0].rank() != 0 && !same_dims(operands[0], operands[1]))
        c.fail("pred must be a scalar or have the dims of on_true");
      if (!same_dims(operands[1], operands[2])) c.fail("on_true and on_false have different dims");
      c.check_same_dtype(operands[1], operands[2], "on_true and on_false");
      return {operands[1]};
    }
    case Op::clamp: {
      for (size_t i : {0u, 2u}) {
        if (operands[i].rank() != 0 && !same_dims(operands[i], operands[1]))
          c.fail("min and max must be scalars or have the dims of the operand");
        c.check_same_dtype(operands[i], operands[1], "bounds and operand");
      }
      return {operands[1]};
    }

    case Op::broadcast_in_dim:
      return {infer_broadcast(c, std::get<BroadcastAttrs>(attrs))};
    case Op::reshape: {
      const Shape& to = std::get<ReshapeAttrs>(attrs).shape;
      if (to.count() != operands[0].count())
        c.fail("cannot reshape {} elements into {} ({} elements)", operands[0].count(), to.dims_string(), to.count());
      return {to.with_dtype(operands[0].dtype())};
    }
    case Op::transpose: {
      const auto& perm = std::get<TransposeAttrs>(attrs).permutation;
      c.check_size(perm, static_cast<size_t>(operands[0].rank()), "permutation");
      c.check_unique_axes(perm, operands[0].rank(), "permutation axis");
      std::vector<int64_t> dims;
      std::vector<Tag> tags;
      for (int64_t p : perm) {
        dims.push_back(operands[0].dim(static_cast<int>(p)));
        tags.push_back(operands[0].tag(static_cast<int>(p)));
      }
      return {make_shape(dims, tags, operands[0].dtype())};
    }
    case Op::slice:
      return {infer_slice(c, std::get<SliceAttrs>(attrs))};
    case Op::dynamic_slice: {
      if (operands.empty()) c.fail("needs an operand");
      const auto& sizes = std::get<DynamicSliceAttrs>(attrs).sizes;
      check_start_indices(c, 1, operands[0].rank());
      c.check_size(sizes, static_cast<size_t>(operands[0].rank()), "sizes");
      for (int i = 0; i < operands[0].rank(); ++i)
        if (sizes[i] < 0 || sizes[i] > operands[0].dim(i))
          c.fail("size {} on axis {} is outside [0, {}]", sizes[i], i, operands[0].dim(i));
      return {make_shape(sizes, tags_of(operands[0]), operands[0].dtype())};
    }
    case Op::dynamic_update_slice: {
      if (operands.size() < 2) c.fail("needs an operand and an update");
      check_start_indices(c, 2, operands[0].rank());
      if (operands[1].rank() != operands[0].rank()) c.fail("update and operand have different ranks");
      c.check_same_dtype(operands[0], operands[1], "operand and update");
      for (int i = 0; i < operands[0].rank(); ++i)
        if (operands[1].dim(i) > operands[0].dim(i))
          c.fail("update axis {} of size {} exceeds the operand's {}", i, operands[1].dim(i), operands[0].dim(i));
      return {operands[0]};
    }
    case Op::concatenate: {
      if (operands.empty()) c.fail("needs at least one operand");
      const int64_t axis = std::get<ConcatenateAttrs>(attrs).axis;
      c.check_axis(axis, operands[0].rank(), "axis");
      auto dims = dims_of(operands[0]);
      for (size_t i = 1; i < operands.size(); ++i) {
        c.check_same_dtype(operands[0], operands[i], "operands");
        if (operands[i].rank() != operands[0].rank()) c.fail("operands have different ranks");
        for (int d = 0; d < operands[0].rank(); ++d)
          if (d != axis && operands[i].dim(d) != operands[0].dim(d))
            c.fail("operand {} differs on axis {} ({} vs {})", i, d, operands[i].dim(d), operands[0].dim(d));
        dims[axis] += operands[i].dim(static_cast<int>(axis));
      }
      return {make_shape(dims, tags_of(operands[0]), operands[0].dtype())};
    }
    case Op::pad:
      return {infer_pad(c, std::get<PadAttrs>(attrs))};
    case Op::reverse:
      c.check_unique_axes(std::get<ReverseAttrs>(attrs).axes, operands[0].rank(), "reverse axis");
      return {operands[0]};
    case Op::gather:
      return {infer_gather(c, std::get<GatherAttrs>(attrs))};
    case Op::scatter:
      return {infer_scatter(c, std::get<ScatterAttrs>(attrs))};

    case Op::reduce:
      return infer_reduce(c, std::get<ReduceAttrs>(attrs));
    case Op::reduce_window: {
      c.check_rule(op_info.rule, operands[0].dtype());
      return {infer_reduce_window(c, std::get<ReduceWindowAttrs>(attrs))};
    }
    case Op::dot_general:
      c.check_rule(op_info.rule, operands[0].dtype());
      return {infer_dot(c, std::get<DotAttrs>(attrs))};
    case Op::convolution:
      c.check_rule(op_info.rule, operands[0].dtype());
      return {infer_convolution(c, std::get<ConvolutionAttrs>(attrs))};
    case Op::sort: {
      if (operands.empty()) c.fail("needs at least one operand");
      c.check_axis(std::get<SortAttrs>(attrs).axis, operands[0].rank(), "axis");
      for (size_t i = 1; i < operands.size(); ++i)
        if (!same_dims(operands[i], operands[0])) c.fail("operands have different dims");
      return {operands.begin(), operands.end()};
    }
    case Op::top_k: {
      c.check_rule(op_info.rule, operands[0].dtype());
      const int64_t k = std::get<TopKAttrs>(attrs).k;
      if (operands[0].rank() < 1) c.fail("needs an operand of rank >= 1");
      if (k < 0 || k > operands[0].dim(-1)) c.fail("k = {} is outside [0, {}]", k, operands[0].dim(-1));
      auto dims = dims_of(operands[0]);
      dims.back() = k;
      Shape values = make_shape(dims, tags_of(operands[0]), operands[0].dtype());
      return {values, values.with_dtype(DType::i32)};
    }

    case Op::rng: {
      const auto& a = std::get<RngAttrs>(attrs);
      if (operands[0].dtype() != DType::u32 || operands[0].rank() != 1 || operands[0].dim(0) != 2)
        c.fail("the key must be u32 [2]");
      if (!is_float(a.shape.dtype())) c.fail("generates floats, not {}", name(a.shape.dtype()));
      return {a.shape};
    }
    case Op::custom_call:
      return std::get<CustomCallAttrs>(attrs).results;
    case Op::optimization_barrier:
      return {operands.begin(), operands.end()};
    default:
      break;
  }
  c.fail("has no shape rule (a new op of the table needs one in infer.cpp)");
}

}  // namespace kiln::ir
