#include "kiln/frontend/tensor.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "kiln/core/element.h"
#include "kiln/core/error.h"
#include "kiln/frontend/trace.h"

namespace kiln {
namespace {

// The axis tagged `tag`, or an error that starts with the op that asked.
int axis_of(std::string_view op, const Shape& s, std::string_view tag) {
  const int axis = s.find(tag);
  if (axis < 0 || tag.empty()) fail("[{}] no axis tagged '{}' in shape {}", op, tag, s.to_string());
  return axis;
}

thread_local ir::Graph* g_current_graph = nullptr;
// Each trace gets a new number, so a Tensor kept from an ended trace is
// recognised even when a later trace's graph sits at the same address.
thread_local uint64_t g_traces_started = 0;
thread_local uint64_t g_current_trace = 0;

Tensor add_node(ir::Graph& graph, ir::Op op, std::vector<ir::Value> operands, ir::Attributes attrs = ir::NoAttrs{}) {
  return Tensor(&graph, graph.add(op, std::move(operands), std::move(attrs)));
}

ir::Graph& graph_of(std::initializer_list<const Tensor*> tensors) {
  ir::Graph* graph = nullptr;
  for (const Tensor* t : tensors) {
    ir::Graph& g = t->graph();
    if (graph != nullptr && graph != &g) fail("tensors from different traces cannot be combined");
    graph = &g;
  }
  return *graph;
}

std::vector<int64_t> dims_of(const Shape& s) { return {s.dims().begin(), s.dims().end()}; }
std::vector<Tag> tags_of(const Shape& s) { return {s.tags().begin(), s.tags().end()}; }

bool fully_tagged(const Shape& s) {
  for (const Tag& t : s.tags())
    if (t.empty()) return false;
  return true;
}

// The shape both operands of an elementwise op broadcast to: by tags when
// both are fully tagged (lhs axes first, then rhs-only axes), otherwise
// numpy-style from the right. A rank-0 operand takes the other's shape.
Shape broadcast_shape(std::string_view op, const Shape& a, const Shape& b) {
  auto error = [&](std::string_view why) -> Shape {
    fail("[{}] {}: lhs {}, rhs {}", op, why, a.to_string(), b.to_string());
  };
  if (a.rank() == 0) return b.with_dtype(a.dtype());
  if (b.rank() == 0) return a;
  if (fully_tagged(a) && fully_tagged(b)) {
    // The result follows the operand that has every tag of the other (so
    // weight{d} * x{b,s,d} is {b,s,d}); otherwise lhs axes, then rhs-only ones.
    bool b_covers_a = b.rank() > a.rank();
    for (int i = 0; i < a.rank() && b_covers_a; ++i) b_covers_a = b.has_tag(a.tag(i).view());
    const Shape& first = b_covers_a ? b : a;
    const Shape& second = b_covers_a ? a : b;
    auto dims = dims_of(first);
    auto tags = tags_of(first);
    for (int i = 0; i < second.rank(); ++i) {
      const int j = first.find(second.tag(i).view());
      if (j < 0) {
        dims.push_back(second.dim(i));
        tags.push_back(second.tag(i));
      } else if (first.dim(j) != second.dim(i)) {
        if (first.dim(j) == 1)
          dims[j] = second.dim(i);
        else if (second.dim(i) != 1)
          return error(fmt::format("axis '{}' has {} on the left and {} on the right", second.tag(i).view(),
                                   a.dim(axis_of(op, a, second.tag(i).view())),
                                   b.dim(axis_of(op, b, second.tag(i).view()))));
      }
    }
    if (dims.size() > kMaxRank) return error("the broadcast result would have more than 8 axes");
    return Shape(dims, a.dtype()).with_tags(tags);
  }
  if (a.has_tags() && b.has_tags() && (!fully_tagged(a) || !fully_tagged(b)))
    return error("cannot align partially tagged shapes; tag every axis or none");
  const Shape& longer = a.rank() >= b.rank() ? a : b;
  auto dims = dims_of(longer);
  for (int i = 1; i <= std::min(a.rank(), b.rank()); ++i) {
    const int64_t x = a.dim(a.rank() - i), y = b.dim(b.rank() - i);
    if (x != y && x != 1 && y != 1)
      return error(fmt::format("axis {} from the right has {} on the left and {} on the right", i, x, y));
    dims[dims.size() - i] = std::max(x, y) == 1 ? 1 : (x == 1 ? y : x);
  }
  return Shape(dims, a.dtype()).with_tags(tags_of(longer));
}

// Broadcasts `t` to `target` (which broadcast_shape produced from it).
Tensor broadcast_to(const Tensor& t, const Shape& target) {
  const Shape& s = t.shape();
  if (std::ranges::equal(s.dims(), target.dims()) && s.tags().size() == target.tags().size() &&
      std::ranges::equal(s.tags(), target.tags()))
    return t;
  ir::Axes dims(static_cast<size_t>(s.rank()));
  const bool by_tag = fully_tagged(s) && fully_tagged(target) && s.rank() > 0;
  for (int i = 0; i < s.rank(); ++i) dims[i] = by_tag ? target.axis(s.tag(i).view()) : target.rank() - s.rank() + i;
  return add_node(t.graph(), ir::Op::broadcast_in_dim, {t.value()},
                  ir::BroadcastAttrs{target.with_dtype(s.dtype()), dims});
}

Tensor unary(const Tensor& x, ir::Op op) { return add_node(x.graph(), op, {x.value()}); }

// " (rhs is weight 'up.weight')" for operands that are model weights, so a
// shape mismatch found while tracing names the weight.
std::string weight_note(const Tensor& lhs, const Tensor& rhs) {
  std::vector<std::string> parts;
  if (auto w = lhs.weight_name(); !w.empty()) parts.push_back(fmt::format("lhs is weight '{}'", w));
  if (auto w = rhs.weight_name(); !w.empty()) parts.push_back(fmt::format("rhs is weight '{}'", w));
  return parts.empty() ? "" : fmt::format(" ({})", fmt::join(parts, ", "));
}

Tensor binary(const Tensor& a, const Tensor& b, ir::Op op, ir::Attributes attrs = ir::NoAttrs{}) {
  ir::Graph& graph = graph_of({&a, &b});
  std::string_view op_name = ir::name(op);
  if (a.dtype() != b.dtype())
    fail("[{}] operands have different dtypes ({} and {}); convert one explicitly: lhs {}, rhs {}{}", op_name,
         name(a.dtype()), name(b.dtype()), a.shape().to_string(), b.shape().to_string(), weight_note(a, b));
  Shape target;
  try {
    target = broadcast_shape(op_name, a.shape(), b.shape());
  } catch (const Error& e) {
    throw Error(e.what() + weight_note(a, b));
  }
  return add_node(graph, op, {broadcast_to(a, target).value(), broadcast_to(b, target).value()}, std::move(attrs));
}

Tensor compare(const Tensor& a, const Tensor& b, ir::Comparison direction) {
  return binary(a, b, ir::Op::compare, ir::CompareAttrs{direction});
}

// A rank-0 constant of `dtype` in `graph`.
Tensor scalar_in(ir::Graph& graph, double value, DType dtype) {
  HostBuffer buffer = HostBuffer::allocate(Shape(dtype));
  store_double(dtype, buffer.mutable_data(), value);
  return add_node(graph, ir::Op::constant, {}, ir::ConstantAttrs{buffer});
}

// A scalar of `like`'s dtype in `like`'s graph.
Tensor scalar_like(const Tensor& like, double value) { return scalar_in(like.graph(), value, like.dtype()); }

Tensor reduce(std::string_view op, const Tensor& x, std::span<const std::string_view> tags, ir::ReduceKind kind,
              int result = 0) {
  ir::Axes axes;
  for (std::string_view tag : tags) axes.push_back(axis_of(op, x.shape(), tag));
  ir::Graph& graph = x.graph();
  ir::Value v = graph.add(ir::Op::reduce, {x.value()}, ir::ReduceAttrs{kind, axes});
  return Tensor(&graph, {v.node, result});
}

}  // namespace

namespace detail {
ir::Graph* current_graph() { return g_current_graph; }
TraceScope::TraceScope(ir::Graph& graph) {
  if (g_current_graph != nullptr) fail("trace() cannot be nested");
  g_current_graph = &graph;
  g_current_trace = ++g_traces_started;
}
TraceScope::~TraceScope() {
  g_current_graph = nullptr;
  g_current_trace = 0;
}

void rethrow_with_argument_hint(const ir::Graph& graph, const Error& error) {
  for (int32_t id : graph.parameters()) {
    const auto& parameter = graph.node(id).attrs_as<ir::ParameterAttrs>();
    const Shape& shape = parameter.shape;
    if (!parameter.name.starts_with("argument ") || shape.rank() == 0 || shape.has_tags()) continue;
    throw Error(
        fmt::format("{}\n  note: {} is {} with untagged axes; most ops find axes by tag, so declare it "
                    "tagged, e.g. Shape({{{{\"b\", {}}}, ...}}, DType::{})",
                    error.what(), parameter.name, shape.to_string(), shape.dim(0), name(shape.dtype())));
  }
  throw error;
}
}  // namespace detail

Tensor::Tensor(ir::Graph* graph, ir::Value value)
    : graph_(graph), value_(value), trace_(graph == g_current_graph ? g_current_trace : 0) {}

Tensor Tensor::declare(const Shape& shape) {
  Tensor t;
  t.declared_ = true;
  t.declared_shape_ = shape;
  return t;
}

const Shape& Tensor::shape() const { return declared_ ? declared_shape_ : graph().shape(value_); }

ir::Graph& Tensor::graph() const {
  if (declared_)
    fail("the tensor {} is only declared (a model weight outside compile()); operations need a trace",
         declared_shape_.to_string());
  if (graph_ == nullptr) fail("this Tensor is empty (default-constructed); tensors come from trace()");
  if (graph_ != g_current_graph || trace_ != g_current_trace)
    fail(
        "this Tensor belongs to a trace that has ended: Tensors exist only while a function is traced (keep its "
        "Shape, or the Buffers the compiled executable returns)");
  return *graph_;
}

std::string Tensor::weight_name() const {
  if (declared_ || graph_ == nullptr) return "";
  const ir::Graph& g = graph();
  ir::Value v = value_;
  while (g.node(v.node).op == ir::Op::reshape) v = g.node(v.node).operands[0];
  const ir::Node& node = g.node(v.node);
  if (node.op != ir::Op::parameter) return "";
  const std::string& name = node.attrs_as<ir::ParameterAttrs>().name;
  return name.starts_with("argument ") ? "" : name;
}

Tensor Tensor::with_tags(std::initializer_list<std::string_view> tags) const {
  const Shape tagged = shape().with_tags(tags);
  // A reshape to the same dims is a new value, so the original keeps its tags.
  return add_node(graph(), ir::Op::reshape, {value_}, ir::ReshapeAttrs{tagged});
}

Tensor Tensor::rename(std::initializer_list<std::pair<std::string_view, std::string_view>> renames) const {
  std::vector<Tag> tags = tags_of(shape());
  for (const auto& [from, to] : renames) tags[static_cast<size_t>(axis_of("rename", shape(), from))] = Tag(to);
  return add_node(graph(), ir::Op::reshape, {value_}, ir::ReshapeAttrs{shape().with_tags(tags)});
}

Tensor Tensor::operator-() const { return unary(*this, ir::Op::neg); }
Tensor Tensor::abs() const { return unary(*this, ir::Op::abs); }
Tensor Tensor::sign() const { return unary(*this, ir::Op::sign); }
Tensor Tensor::exp() const { return unary(*this, ir::Op::exp); }
Tensor Tensor::expm1() const { return unary(*this, ir::Op::expm1); }
Tensor Tensor::log() const { return unary(*this, ir::Op::log); }
Tensor Tensor::log1p() const { return unary(*this, ir::Op::log1p); }
Tensor Tensor::sqrt() const { return unary(*this, ir::Op::sqrt); }
Tensor Tensor::rsqrt() const { return unary(*this, ir::Op::rsqrt); }
Tensor Tensor::cbrt() const { return unary(*this, ir::Op::cbrt); }
Tensor Tensor::tanh() const { return unary(*this, ir::Op::tanh); }
Tensor Tensor::sin() const { return unary(*this, ir::Op::sin); }
Tensor Tensor::cos() const { return unary(*this, ir::Op::cos); }
Tensor Tensor::tan() const { return unary(*this, ir::Op::tan); }
Tensor Tensor::erf() const { return unary(*this, ir::Op::erf); }
Tensor Tensor::floor() const { return unary(*this, ir::Op::floor); }
Tensor Tensor::ceil() const { return unary(*this, ir::Op::ceil); }
Tensor Tensor::round() const { return unary(*this, ir::Op::round_nearest_even); }
Tensor Tensor::logical_not() const { return unary(*this, ir::Op::not_); }
Tensor Tensor::is_finite() const { return unary(*this, ir::Op::is_finite); }
Tensor Tensor::popcnt() const { return unary(*this, ir::Op::popcnt); }
Tensor Tensor::sigmoid() const { return unary(*this, ir::Op::logistic); }

Tensor Tensor::pow(const Tensor& exponent) const { return binary(*this, exponent, ir::Op::pow); }
Tensor Tensor::pow(double exponent) const { return pow(scalar_like(*this, exponent)); }
Tensor Tensor::maximum(const Tensor& other) const { return binary(*this, other, ir::Op::max); }
Tensor Tensor::minimum(const Tensor& other) const { return binary(*this, other, ir::Op::min); }
Tensor Tensor::rem(const Tensor& other) const { return binary(*this, other, ir::Op::rem); }
Tensor Tensor::atan2(const Tensor& other) const { return binary(*this, other, ir::Op::atan2); }

Tensor Tensor::clamp(const Tensor& low, const Tensor& high) const {
  ir::Graph& g = graph_of({this, &low, &high});
  // Bounds may be scalars or broadcast to this tensor's shape.
  auto fit = [&](const Tensor& bound) { return bound.rank() == 0 ? bound : broadcast_to(bound, shape()); };
  return add_node(g, ir::Op::clamp, {fit(low).value(), value_, fit(high).value()});
}
Tensor Tensor::clamp(double low, double high) const { return clamp(scalar_like(*this, low), scalar_like(*this, high)); }

Tensor Tensor::convert(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  return add_node(graph(), ir::Op::convert, {value_}, ir::ConvertAttrs{dtype});
}
Tensor Tensor::bitcast(DType dtype) const {
  return add_node(graph(), ir::Op::bitcast_convert, {value_}, ir::ConvertAttrs{dtype});
}

Tensor Tensor::eq(const Tensor& other) const { return compare(*this, other, ir::Comparison::eq); }
Tensor Tensor::ne(const Tensor& other) const { return compare(*this, other, ir::Comparison::ne); }
Tensor Tensor::lt(const Tensor& other) const { return compare(*this, other, ir::Comparison::lt); }
Tensor Tensor::le(const Tensor& other) const { return compare(*this, other, ir::Comparison::le); }
Tensor Tensor::gt(const Tensor& other) const { return compare(*this, other, ir::Comparison::gt); }
Tensor Tensor::ge(const Tensor& other) const { return compare(*this, other, ir::Comparison::ge); }

Tensor Tensor::relu() const { return maximum(scalar_like(*this, 0)); }
Tensor Tensor::silu() const { return *this * sigmoid(); }
Tensor Tensor::gelu(GeluApproximation approximation) const {
  if (approximation == GeluApproximation::erf) return *this * 0.5 * ((*this * (1.0 / std::numbers::sqrt2)).erf() + 1.0);
  const double k = std::sqrt(2.0 / std::numbers::pi);
  const Tensor inner = (*this + *this * *this * *this * 0.044715) * k;
  return *this * 0.5 * (inner.tanh() + 1.0);
}

Tensor Tensor::sum(std::string_view tag) const { return reduce("sum", *this, std::array{tag}, ir::ReduceKind::sum); }
Tensor Tensor::sum(std::initializer_list<std::string_view> tags) const {
  return reduce("sum", *this, std::span(tags.begin(), tags.size()), ir::ReduceKind::sum);
}
Tensor Tensor::prod(std::string_view tag) const { return reduce("prod", *this, std::array{tag}, ir::ReduceKind::prod); }
Tensor Tensor::max(std::string_view tag) const { return reduce("max", *this, std::array{tag}, ir::ReduceKind::max); }
Tensor Tensor::min(std::string_view tag) const { return reduce("min", *this, std::array{tag}, ir::ReduceKind::min); }
Tensor Tensor::all(std::string_view tag) const { return reduce("all", *this, std::array{tag}, ir::ReduceKind::and_); }
Tensor Tensor::any(std::string_view tag) const { return reduce("any", *this, std::array{tag}, ir::ReduceKind::or_); }
Tensor Tensor::argmax(std::string_view tag) const {
  return reduce("argmax", *this, std::array{tag}, ir::ReduceKind::argmax, 1);
}
Tensor Tensor::argmin(std::string_view tag) const {
  return reduce("argmin", *this, std::array{tag}, ir::ReduceKind::argmin, 1);
}

Tensor Tensor::mean(std::string_view tag) const {
  if (!is_float(dtype())) fail("[mean] needs a float tensor, not {}", shape().to_string());
  axis_of("mean", shape(), tag);
  return sum(tag) / static_cast<double>(dim(tag));
}

Tensor Tensor::softmax(std::string_view tag) const {
  axis_of("softmax", shape(), tag);
  const Tensor shifted = *this - max(tag);  // keeps exp() from overflowing
  const Tensor e = shifted.exp();
  return e / e.sum(tag);
}

Tensor Tensor::cumsum(std::string_view tag) const {
  // A sum over windows that end at each element: window = the whole axis,
  // padded in front with the axis size minus one (zeros).
  const int axis = axis_of("cumsum", shape(), tag);
  const size_t r = static_cast<size_t>(rank());
  ir::ReduceWindowAttrs attrs{ir::ReduceKind::sum, ir::Axes(r, 1), ir::Axes(r, 1), ir::Axes(r, 0),
                              ir::Axes(r, 0),      ir::Axes(r, 1), ir::Axes(r, 1)};
  attrs.window[axis] = dim(axis);
  attrs.padding_low[axis] = dim(axis) - 1;
  return add_node(graph(), ir::Op::reduce_window, {value_}, attrs);
}

Tensor Tensor::sort(std::string_view tag, bool descending) const {
  return add_node(graph(), ir::Op::sort, {value_}, ir::SortAttrs{axis_of("sort", shape(), tag), descending, true});
}

std::pair<Tensor, Tensor> Tensor::top_k(int64_t k, std::string_view tag) const {
  // top_k works on the last axis: move `tag` there and back.
  const int axis = axis_of("top_k", shape(), tag);
  std::vector<int64_t> to_last, back(static_cast<size_t>(rank()));
  for (int i = 0; i < rank(); ++i)
    if (i != axis) to_last.push_back(i);
  to_last.push_back(axis);
  for (size_t i = 0; i < to_last.size(); ++i) back[static_cast<size_t>(to_last[i])] = static_cast<int64_t>(i);
  const Tensor moved = transpose(to_last);
  ir::Value v = graph().add(ir::Op::top_k, {moved.value()}, ir::TopKAttrs{k});
  return {Tensor(&graph(), {v.node, 0}).transpose(back), Tensor(&graph(), {v.node, 1}).transpose(back)};
}

Tensor Tensor::reshape(const Shape& to) const {
  return add_node(graph(), ir::Op::reshape, {value_}, ir::ReshapeAttrs{to.with_dtype(dtype())});
}

Tensor Tensor::split_axis(std::string_view tag, std::initializer_list<TaggedDim> parts) const {
  const int axis = axis_of("split_axis", shape(), tag);
  int64_t known = 1;
  int unknown = -1;
  std::vector<TaggedDim> resolved(parts);
  for (size_t i = 0; i < resolved.size(); ++i) {
    if (resolved[i].size == auto_dim) {
      if (unknown >= 0) fail("[split_axis] at most one part of '{}' may be auto_dim: {}", tag, shape().to_string());
      unknown = static_cast<int>(i);
    } else {
      known *= resolved[i].size;
    }
  }
  if (unknown >= 0 && known > 0) resolved[static_cast<size_t>(unknown)].size = dim(axis) / known;
  int64_t product = 1;
  for (const auto& p : resolved) product *= p.size;
  if (product != dim(axis) || (unknown >= 0 && known == 0))
    fail("[split_axis] parts do not multiply to the size {} of axis '{}': {}", dim(axis), tag, shape().to_string());
  std::vector<int64_t> dims;
  std::vector<Tag> tags;
  for (int i = 0; i < rank(); ++i) {
    if (i != axis) {
      dims.push_back(dim(i));
      tags.push_back(shape().tag(i));
      continue;
    }
    for (const auto& p : resolved) {
      dims.push_back(p.size);
      tags.push_back(p.tag);
    }
  }
  return reshape(Shape(dims, dtype()).with_tags(tags));
}

Tensor Tensor::merge(std::initializer_list<std::string_view> merged, std::string_view into) const {
  if (merged.size() == 0) fail("[merge] needs at least one axis: {}", shape().to_string());
  std::vector<int64_t> merged_axes;
  for (std::string_view tag : merged) merged_axes.push_back(axis_of("merge", shape(), tag));
  auto is_merged = [&](int64_t axis) { return std::ranges::find(merged_axes, axis) != merged_axes.end(); };
  // Move the merged axes, in the order given, to where the first of them is.
  const int64_t first = *std::ranges::min_element(merged_axes);
  std::vector<int64_t> permutation;
  for (int64_t i = 0; i < first; ++i)
    if (!is_merged(i)) permutation.push_back(i);
  const size_t start = permutation.size();
  permutation.insert(permutation.end(), merged_axes.begin(), merged_axes.end());
  for (int64_t i = first; i < rank(); ++i)
    if (!is_merged(i)) permutation.push_back(i);
  const Tensor ordered = transpose(permutation);

  std::vector<int64_t> dims;
  std::vector<Tag> tags;
  for (size_t i = 0; i < permutation.size(); ++i) {
    const int axis = static_cast<int>(i);
    if (i == start) {
      int64_t size = 1;
      for (size_t j = 0; j < merged_axes.size(); ++j) size *= ordered.dim(static_cast<int>(start + j));
      dims.push_back(size);
      tags.emplace_back(into);
    }
    if (i >= start && i < start + merged_axes.size()) continue;
    dims.push_back(ordered.dim(axis));
    tags.push_back(ordered.shape().tag(axis));
  }
  return ordered.reshape(Shape(dims, dtype()).with_tags(tags));
}

Tensor Tensor::squeeze(std::string_view tag) const {
  const int axis = axis_of("squeeze", shape(), tag);
  if (dim(axis) != 1) fail("[squeeze] axis '{}' has size {}, not 1: {}", tag, dim(axis), shape().to_string());
  auto dims = dims_of(shape());
  auto tags = tags_of(shape());
  dims.erase(dims.begin() + axis);
  tags.erase(tags.begin() + axis);
  return reshape(Shape(dims, dtype()).with_tags(tags));
}

Tensor Tensor::insert_axis(int position, std::string_view tag) const {
  if (position < 0 || position > rank())
    fail("[insert_axis] position {} is outside [0, {}]: {}", position, rank(), shape().to_string());
  auto dims = dims_of(shape());
  auto tags = tags_of(shape());
  dims.insert(dims.begin() + position, 1);
  tags.insert(tags.begin() + position, Tag(tag));
  return reshape(Shape(dims, dtype()).with_tags(tags));
}

Tensor Tensor::transpose(std::initializer_list<std::string_view> order) const {
  if (static_cast<int>(order.size()) != rank())
    fail("[transpose] names {} axes but the tensor has {}: {}", order.size(), rank(), shape().to_string());
  std::vector<int64_t> permutation;
  for (std::string_view tag : order) permutation.push_back(axis_of("transpose", shape(), tag));
  return transpose(permutation);
}

Tensor Tensor::transpose(std::span<const int64_t> permutation) const {
  bool identity = true;
  for (size_t i = 0; i < permutation.size(); ++i) identity &= permutation[i] == static_cast<int64_t>(i);
  if (identity && static_cast<int>(permutation.size()) == rank()) return *this;
  return add_node(graph(), ir::Op::transpose, {value_},
                  ir::TransposeAttrs{ir::Axes(permutation.begin(), permutation.end())});
}

Tensor Tensor::broadcast(const Shape& target) const {
  const Shape full = broadcast_shape("broadcast", shape(), target.with_dtype(dtype()));
  if (!std::ranges::equal(full.dims(), target.dims()))
    fail("[broadcast] {} does not broadcast to {}", shape().to_string(), target.to_string());
  return broadcast_to(*this, target.with_dtype(dtype()));
}

Tensor Tensor::slice(std::string_view tag, int64_t begin, int64_t end, int64_t step) const {
  return slice(axis_of("slice", shape(), tag), begin, end, step);
}

Tensor Tensor::slice(int axis, int64_t begin, int64_t end, int64_t step) const {
  const int a = shape().checked_axis(axis);
  ir::Axes start(static_cast<size_t>(rank()), 0), limit = dims_of(shape()), stride(static_cast<size_t>(rank()), 1);
  start[a] = begin;
  limit[a] = end;
  stride[a] = step;
  return add_node(graph(), ir::Op::slice, {value_}, ir::SliceAttrs{start, limit, stride});
}

Tensor Tensor::gather(std::string_view tag, const Tensor& indices) const {
  ir::Graph& g = graph_of({this, &indices});
  const int axis = axis_of("gather", shape(), tag);
  const int k = indices.rank();
  ir::GatherAttrs attrs;
  attrs.collapsed_slice_dims = {axis};
  attrs.start_index_map = {axis};
  attrs.index_vector_dim = k;  // each index is a scalar
  attrs.slice_sizes = dims_of(shape());
  attrs.slice_sizes[axis] = 1;
  // Result axes: this tensor's axes before `tag`, the indices' axes, then the rest.
  for (int i = 0; i < axis; ++i) attrs.offset_dims.push_back(i);
  for (int i = axis + 1; i < rank(); ++i) attrs.offset_dims.push_back(i - 1 + k);
  return add_node(g, ir::Op::gather, {value_, indices.value()}, attrs);
}

Tensor Tensor::dynamic_slice(std::string_view tag, const Tensor& start, int64_t size) const {
  ir::Graph& g = graph_of({this, &start});
  const int axis = axis_of("dynamic_slice", shape(), tag);
  std::vector<ir::Value> operands = {value_};
  for (int i = 0; i < rank(); ++i) operands.push_back(i == axis ? start.value() : scalar(0, start.dtype()).value());
  ir::Axes sizes = dims_of(shape());
  sizes[axis] = size;
  return add_node(g, ir::Op::dynamic_slice, std::move(operands), ir::DynamicSliceAttrs{sizes});
}

Tensor Tensor::dynamic_update_slice(std::initializer_list<std::pair<std::string_view, Tensor>> starts,
                                    const Tensor& update) const {
  ir::Graph& g = graph_of({this, &update});
  // Bring the update's axes into this tensor's order.
  Tensor aligned = update;
  if (fully_tagged(shape()) && fully_tagged(update.shape()) && update.rank() == rank()) {
    std::vector<int64_t> permutation;
    for (int i = 0; i < rank(); ++i)
      permutation.push_back(axis_of("dynamic_update_slice", update.shape(), shape().tag(i).view()));
    aligned = update.transpose(permutation);
  }
  DType index_dtype = DType::i32;
  for (const auto& [tag, start] : starts) index_dtype = start.dtype();
  std::vector<ir::Value> operands = {value_, aligned.value()};
  for (int i = 0; i < rank(); ++i) {
    Tensor start = scalar(0, index_dtype);
    for (const auto& [tag, given] : starts)
      if (axis_of("dynamic_update_slice", shape(), tag) == i) start = given;
    operands.push_back(start.value());
  }
  return add_node(g, ir::Op::dynamic_update_slice, std::move(operands));
}

Tensor Tensor::reverse(std::string_view tag) const {
  return add_node(graph(), ir::Op::reverse, {value_}, ir::ReverseAttrs{{axis_of("reverse", shape(), tag)}});
}

Tensor Tensor::pad(std::string_view tag, int64_t low, int64_t high, double value, int64_t interior) const {
  const int axis = axis_of("pad", shape(), tag);
  ir::PadAttrs attrs{ir::Axes(static_cast<size_t>(rank()), 0), ir::Axes(static_cast<size_t>(rank()), 0),
                     ir::Axes(static_cast<size_t>(rank()), 0)};
  attrs.low[axis] = low;
  attrs.high[axis] = high;
  attrs.interior[axis] = interior;
  return add_node(graph(), ir::Op::pad, {value_, scalar_like(*this, value).value()}, attrs);
}

Tensor Tensor::dot(const Tensor& other, std::string_view contract) const { return dot(other, {contract}); }

Tensor Tensor::dot(const Tensor& other, std::initializer_list<std::string_view> contract,
                   std::optional<DType> result) const {
  ir::Graph& g = graph_of({this, &other});
  const Shape& lhs = shape();
  const Shape& rhs = other.shape();
  auto error = [&](const std::string& why) {
    fail("[dot] {}: lhs {}, rhs {}{}", why, lhs.to_string(), rhs.to_string(), weight_note(*this, other));
  };
  // A block-quantized rhs (a weight) is dequantized by the dot itself.
  const bool quantized_rhs = is_quantized(rhs.dtype()) && is_float(lhs.dtype());
  if (lhs.dtype() != rhs.dtype() && !quantized_rhs)
    error(fmt::format("operands have different dtypes ({} and {}); convert one explicitly", name(lhs.dtype()),
                      name(rhs.dtype())));
  ir::DotAttrs attrs;
  attrs.result = result.value_or(lhs.dtype());
  for (std::string_view tag : contract) {
    if (!lhs.has_tag(tag)) error(fmt::format("no axis '{}' on the left", tag));
    if (!rhs.has_tag(tag)) error(fmt::format("no axis '{}' on the right", tag));
    if (lhs.dim(tag) != rhs.dim(tag))
      error(
          fmt::format("contracting axis '{}' has {} on the left and {} on the right", tag, lhs.dim(tag), rhs.dim(tag)));
    attrs.lhs_contracting.push_back(axis_of("dot", lhs, tag));
    attrs.rhs_contracting.push_back(axis_of("dot", rhs, tag));
  }
  for (int i = 0; i < lhs.rank(); ++i) {
    const std::string_view tag = lhs.tag(i).view();
    if (tag.empty() || std::ranges::find(contract, tag) != contract.end() || !rhs.has_tag(tag)) continue;
    if (lhs.dim(i) != rhs.dim(tag))
      error(fmt::format("batch axis '{}' has {} on the left and {} on the right", tag, lhs.dim(i), rhs.dim(tag)));
    attrs.lhs_batch.push_back(i);
    attrs.rhs_batch.push_back(axis_of("dot", rhs, tag));
  }
  return add_node(g, ir::Op::dot_general, {value_, other.value()}, attrs);
}

Tensor operator+(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::add); }
Tensor operator-(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::sub); }
Tensor operator*(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::mul); }
Tensor operator/(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::div); }
Tensor operator+(const Tensor& a, double b) { return a + scalar_like(a, b); }
Tensor operator-(const Tensor& a, double b) { return a - scalar_like(a, b); }
Tensor operator*(const Tensor& a, double b) { return a * scalar_like(a, b); }
Tensor operator/(const Tensor& a, double b) { return a / scalar_like(a, b); }
Tensor operator+(double a, const Tensor& b) { return scalar_like(b, a) + b; }
Tensor operator-(double a, const Tensor& b) { return scalar_like(b, a) - b; }
Tensor operator*(double a, const Tensor& b) { return scalar_like(b, a) * b; }
Tensor operator/(double a, const Tensor& b) { return scalar_like(b, a) / b; }
Tensor operator&(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::and_); }
Tensor operator|(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::or_); }
Tensor operator^(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::xor_); }
Tensor operator<<(const Tensor& a, const Tensor& b) { return binary(a, b, ir::Op::shift_left); }
Tensor operator>>(const Tensor& a, const Tensor& b) {
  return binary(a, b, is_unsigned(a.dtype()) ? ir::Op::shift_right_logical : ir::Op::shift_right_arithmetic);
}
Tensor operator<(const Tensor& a, const Tensor& b) { return a.lt(b); }
Tensor operator<=(const Tensor& a, const Tensor& b) { return a.le(b); }
Tensor operator>(const Tensor& a, const Tensor& b) { return a.gt(b); }
Tensor operator>=(const Tensor& a, const Tensor& b) { return a.ge(b); }

Tensor select(const Tensor& pred, const Tensor& on_true, const Tensor& on_false) {
  ir::Graph& g = graph_of({&pred, &on_true, &on_false});
  if (on_true.dtype() != on_false.dtype())
    fail("[select] on_true and on_false have different dtypes: on_true {}, on_false {}", on_true.shape().to_string(),
         on_false.shape().to_string());
  Shape target = broadcast_shape("select", on_true.shape(), on_false.shape());
  target = broadcast_shape("select", target, pred.shape().with_dtype(target.dtype()));
  return add_node(g, ir::Op::select,
                  {broadcast_to(pred, target.with_dtype(DType::bool_)).value(), broadcast_to(on_true, target).value(),
                   broadcast_to(on_false, target).value()});
}

Tensor concatenate(std::span<const Tensor> tensors, std::string_view tag) {
  if (tensors.empty()) fail("[concatenate] needs at least one tensor");
  const Shape& first = tensors[0].shape();
  std::vector<ir::Value> operands;
  for (const Tensor& t : tensors) {
    Tensor aligned = t;
    if (fully_tagged(first) && fully_tagged(t.shape()) && t.rank() == first.rank()) {
      std::vector<int64_t> permutation;
      for (int i = 0; i < first.rank(); ++i)
        permutation.push_back(axis_of("concatenate", t.shape(), first.tag(i).view()));
      aligned = t.transpose(permutation);
    }
    operands.push_back(aligned.value());
  }
  return add_node(tensors[0].graph(), ir::Op::concatenate, std::move(operands),
                  ir::ConcatenateAttrs{axis_of("concatenate", first, tag)});
}

Tensor concatenate(std::initializer_list<Tensor> tensors, std::string_view tag) {
  return concatenate(std::span(tensors.begin(), tensors.size()), tag);
}

namespace {
ir::Graph& current() {
  ir::Graph* g = detail::current_graph();
  if (g == nullptr) fail("constants and other leaves can only be created inside kiln::trace()");
  return *g;
}
}  // namespace

Tensor constant(const HostBuffer& value) {
  return add_node(current(), ir::Op::constant, {}, ir::ConstantAttrs{value.copy()});
}

Tensor scalar(double value, DType dtype) { return scalar_in(current(), value, dtype); }

Tensor iota(const Shape& shape, std::string_view tag) {
  return add_node(current(), ir::Op::iota, {}, ir::IotaAttrs{shape, axis_of("iota", shape, tag)});
}

Tensor rng_uniform(const Tensor& key, const Shape& shape) {
  return add_node(key.graph(), ir::Op::rng, {key.value()}, ir::RngAttrs{ir::RngDistribution::uniform, shape});
}
Tensor rng_normal(const Tensor& key, const Shape& shape) {
  return add_node(key.graph(), ir::Op::rng, {key.value()}, ir::RngAttrs{ir::RngDistribution::normal, shape});
}

}  // namespace kiln
