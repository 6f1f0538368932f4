#pragma once
// Tensor: the tracing API. A Tensor is a handle on a value of the graph being
// traced (kiln::trace) plus its tagged shape; every operation adds a node.
// Tagged axes are the primary way to address dims:
//   x.dot(w, "d")                     contract over 'd', batch over shared tags
//   x.sum("s"), x.softmax("k")        reduce / normalise along an axis
//   x.split_axis("d", {{"h", 8}, {"hd", kiln::auto_dim}})
//   x.transpose({"b", "h", "s", "hd"})
// Binary operations align operands by tag (x{b,s,d} + bias{d} broadcasts
// bias over b and s); untagged operands broadcast numpy-style from the right;
// scalars broadcast to anything. There is no implicit dtype promotion: mixing
// dtypes is an error, use convert(). Errors name the op and print the
// operands' tagged shapes.
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kiln/ir/graph.h"

namespace kiln {

inline constexpr int64_t auto_dim = -1;

enum class GeluApproximation { erf, tanh };

class Tensor {
 public:
  Tensor() = default;
  // A value of the graph being traced (made by the tracing machinery).
  Tensor(ir::Graph* graph, ir::Value value);
  // A tensor known only by its shape, not yet part of a trace: the weights of
  // a populated model are declared this way and become graph parameters
  // when the model is compiled.
  static Tensor declare(const Shape& shape);

  const Shape& shape() const;
  bool is_declared_only() const { return graph_ == nullptr && declared_; }
  DType dtype() const { return shape().dtype(); }
  int rank() const { return shape().rank(); }
  int64_t dim(int axis) const { return shape().dim(axis); }
  int64_t dim(std::string_view tag) const { return shape().dim(tag); }
  ir::Value value() const { return value_; }
  ir::Graph& graph() const;
  // The dotted name of the model weight this tensor is (or a retagging of,
  // e.g. "layers.0.mlp.up.weight"); empty for anything else.
  std::string weight_name() const;

  // --- tags --------------------------------------------------------------
  // Sets every axis's tag ("" leaves an axis untagged).
  Tensor with_tags(std::initializer_list<std::string_view> tags) const;
  // Renames tags: rename({{"d", "k"}}).
  Tensor rename(std::initializer_list<std::pair<std::string_view, std::string_view>> renames) const;

  // --- elementwise -------------------------------------------------------
  Tensor operator-() const;
  Tensor abs() const;
  Tensor sign() const;
  Tensor exp() const;
  Tensor expm1() const;
  Tensor log() const;
  Tensor log1p() const;
  Tensor sqrt() const;
  Tensor rsqrt() const;
  Tensor cbrt() const;
  Tensor tanh() const;
  Tensor sin() const;
  Tensor cos() const;
  Tensor tan() const;
  Tensor erf() const;
  Tensor floor() const;
  Tensor ceil() const;
  Tensor round() const;  // to nearest, ties to even
  Tensor logical_not() const;
  Tensor is_finite() const;
  Tensor popcnt() const;
  Tensor pow(const Tensor& exponent) const;
  Tensor pow(double exponent) const;
  Tensor maximum(const Tensor& other) const;
  Tensor minimum(const Tensor& other) const;
  Tensor rem(const Tensor& other) const;
  Tensor atan2(const Tensor& other) const;
  Tensor clamp(const Tensor& low, const Tensor& high) const;
  Tensor clamp(double low, double high) const;
  Tensor convert(DType dtype) const;
  Tensor bitcast(DType dtype) const;

  // Comparisons give bool tensors.
  Tensor eq(const Tensor& other) const;
  Tensor ne(const Tensor& other) const;
  Tensor lt(const Tensor& other) const;
  Tensor le(const Tensor& other) const;
  Tensor gt(const Tensor& other) const;
  Tensor ge(const Tensor& other) const;

  // Activations.
  Tensor relu() const;
  Tensor sigmoid() const;
  Tensor silu() const;
  Tensor gelu(GeluApproximation approximation = GeluApproximation::erf) const;

  // Prints `label`, the tagged shape, dtype and first values each time the
  // executable runs (a host callback), and returns this tensor unchanged.
  Tensor print(std::string label) const;

  // --- reductions (the reduced axis disappears) --------------------------
  Tensor sum(std::string_view tag) const;
  Tensor sum(std::initializer_list<std::string_view> tags) const;
  Tensor prod(std::string_view tag) const;
  Tensor max(std::string_view tag) const;
  Tensor min(std::string_view tag) const;
  Tensor mean(std::string_view tag) const;
  Tensor all(std::string_view tag) const;
  Tensor any(std::string_view tag) const;
  // Index (i64) of the first largest/smallest value along `tag`.
  Tensor argmax(std::string_view tag) const;
  Tensor argmin(std::string_view tag) const;
  // exp(x - max) / sum(exp(x - max)) along `tag`.
  Tensor softmax(std::string_view tag) const;
  // Running sum along `tag` (element i is the sum of elements 0..i).
  Tensor cumsum(std::string_view tag) const;

  // --- ordering ----------------------------------------------------------
  // Sorted along `tag` (stable; NaN last when ascending).
  Tensor sort(std::string_view tag, bool descending = false) const;
  // The k largest values along `tag`, largest first, and their i32 indices.
  std::pair<Tensor, Tensor> top_k(int64_t k, std::string_view tag) const;

  // --- shape -------------------------------------------------------------
  Tensor reshape(const Shape& shape) const;  // dtype taken from this tensor
  // Splits axis `tag` into several; at most one size may be auto_dim.
  Tensor split_axis(std::string_view tag, std::initializer_list<TaggedDim> parts) const;
  // Merges axes (moved next to each other in the given order) into one.
  Tensor merge(std::initializer_list<std::string_view> tags, std::string_view into) const;
  // Removes the size-1 axis `tag`.
  Tensor squeeze(std::string_view tag) const;
  // Adds a size-1 axis tagged `tag` before axis `position` (rank() appends).
  Tensor insert_axis(int position, std::string_view tag) const;
  // Reorders axes by tag; every axis must be named once.
  Tensor transpose(std::initializer_list<std::string_view> order) const;
  Tensor transpose(std::span<const int64_t> permutation) const;
  // Broadcasts to `shape`, aligning axes by tag (or from the right if untagged).
  Tensor broadcast(const Shape& shape) const;
  // Elements [begin, end) with `step` along an axis.
  Tensor slice(std::string_view tag, int64_t begin, int64_t end, int64_t step = 1) const;
  Tensor slice(int axis, int64_t begin, int64_t end, int64_t step = 1) const;
  // Takes the entries of axis `tag` picked by `indices` (any integer dtype,
  // clamped into range); the indices' axes replace `tag` in the result:
  // embeddings{voc, d}.gather("voc", ids{b, s}) is {b, s, d}.
  Tensor gather(std::string_view tag, const Tensor& indices) const;
  // `size` entries from `start` (an integer scalar tensor, clamped so the
  // slice fits) along `tag`.
  Tensor dynamic_slice(std::string_view tag, const Tensor& start, int64_t size) const;
  // Writes `update` (aligned by tags) at the given start offsets; axes not
  // named start at 0.
  Tensor dynamic_update_slice(std::initializer_list<std::pair<std::string_view, Tensor>> starts,
                              const Tensor& update) const;
  Tensor reverse(std::string_view tag) const;
  Tensor pad(std::string_view tag, int64_t low, int64_t high, double value = 0, int64_t interior = 0) const;

  // Contracts the named axes with `other`'s axes of the same tags; axes
  // tagged alike on both sides (and not contracted) are batch axes. Result:
  // batch axes, then this tensor's free axes, then other's. Floats accumulate
  // in at least f32; `result` picks the output dtype (default: this dtype).
  Tensor dot(const Tensor& other, std::string_view contract) const;
  Tensor dot(const Tensor& other, std::initializer_list<std::string_view> contract,
             std::optional<DType> result = std::nullopt) const;

 private:
  ir::Graph* graph_ = nullptr;
  ir::Value value_;
  uint64_t trace_ = 0;  // which trace made it (tensor.cpp)
  bool declared_ = false;
  Shape declared_shape_;
};

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator+(const Tensor& a, double b);
Tensor operator-(const Tensor& a, double b);
Tensor operator*(const Tensor& a, double b);
Tensor operator/(const Tensor& a, double b);
Tensor operator+(double a, const Tensor& b);
Tensor operator-(double a, const Tensor& b);
Tensor operator*(double a, const Tensor& b);
Tensor operator/(double a, const Tensor& b);
Tensor operator&(const Tensor& a, const Tensor& b);
Tensor operator|(const Tensor& a, const Tensor& b);
Tensor operator^(const Tensor& a, const Tensor& b);
Tensor operator<<(const Tensor& a, const Tensor& b);
Tensor operator>>(const Tensor& a, const Tensor& b);  // arithmetic for signed, logical for unsigned
Tensor operator<(const Tensor& a, const Tensor& b);
Tensor operator<=(const Tensor& a, const Tensor& b);
Tensor operator>(const Tensor& a, const Tensor& b);
Tensor operator>=(const Tensor& a, const Tensor& b);

// Picks on_true where pred is true (pred is bool, broadcast by tags).
Tensor select(const Tensor& pred, const Tensor& on_true, const Tensor& on_false);
// Joins tensors along `tag` (other axes aligned by tag and equal in size).
Tensor concatenate(std::span<const Tensor> tensors, std::string_view tag);
Tensor concatenate(std::initializer_list<Tensor> tensors, std::string_view tag);

// Leaves, added to the graph being traced.
Tensor constant(const HostBuffer& value);
Tensor scalar(double value, DType dtype);
Tensor iota(const Shape& shape, std::string_view tag);
// Counter-based random numbers (Philox4x32-10) from a u32 [2] key: the same
// key always gives the same numbers.
Tensor rng_uniform(const Tensor& key, const Shape& shape);
Tensor rng_normal(const Tensor& key, const Shape& shape);

}  // namespace kiln
