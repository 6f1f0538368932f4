// Reference kernels for sort and top_k.
//
// Both reduce to one stable sort of each lane (the elements along one axis,
// all other indices fixed) by a three-way key comparison:
//   - floats by value with NaN after every number in ascending order and
//     before every number in descending order, NaNs tying with each other;
//     -0.0 and +0.0 are equal keys (torch.sort / torch.topk behaviour);
//   - integers by value (u64 as unsigned), bool as false < true.
// Stability makes equal keys keep their original order in both directions,
// and gives top_k's "ties -> lower index first". Values are moved as raw
// bytes, so results are exact for every dtype (NaN payloads and -0 kept).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/core/error.h"

namespace kiln::reference {
namespace {

// A row-major shape seen as [outer, n, inner] around `axis`: the lane of
// (o, j) holds the flat elements (o * n + t) * inner + j for t in [0, n).
struct Lanes {
  int64_t outer = 1, n = 1, inner = 1;

  int64_t flat(int64_t o, int64_t j, int64_t t) const { return (o * n + t) * inner + j; }
};

Lanes lanes_of(const Shape& shape, int axis) {
  Lanes lanes;
  for (int a = 0; a < shape.rank(); ++a) {
    if (a < axis)
      lanes.outer *= shape.dim(a);
    else if (a == axis)
      lanes.n = shape.dim(a);
    else
      lanes.inner *= shape.dim(a);
  }
  return lanes;
}

// Negative, zero or positive as key `a` sorts before, together with, or after
// key `b` in ascending order.
int compare_keys(DType dtype, const std::byte* a, const std::byte* b) {
  if (is_float(dtype)) {
    const double x = load_double(dtype, a), y = load_double(dtype, b);
    if (std::isnan(x) || std::isnan(y)) return static_cast<int>(std::isnan(x)) - static_cast<int>(std::isnan(y));
    return static_cast<int>(x > y) - static_cast<int>(x < y);
  }
  if (dtype == DType::u64) {
    const auto x = static_cast<uint64_t>(load_int(dtype, a)), y = static_cast<uint64_t>(load_int(dtype, b));
    return static_cast<int>(x > y) - static_cast<int>(x < y);
  }
  const int64_t x = load_int(dtype, a), y = load_int(dtype, b);
  return static_cast<int>(x > y) - static_cast<int>(x < y);
}

// Positions t in [0, n) of lane (o, j) of `keys`, stably sorted by key.
std::vector<int64_t> sorted_lane(const HostBuffer& keys, const Lanes& lanes, int64_t o, int64_t j, bool descending) {
  const DType dtype = keys.dtype();
  const size_t element = size_of(dtype);
  auto key = [&](int64_t t) { return keys.data() + static_cast<size_t>(lanes.flat(o, j, t)) * element; };
  std::vector<int64_t> order(static_cast<size_t>(lanes.n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [&](int64_t s, int64_t t) {
    const int c = compare_keys(dtype, key(s), key(t));
    return descending ? c > 0 : c < 0;
  });
  return order;
}

void copy_element(const HostBuffer& from, int64_t from_index, HostBuffer& to, int64_t to_index) {
  const size_t element = size_of(from.dtype());
  std::memcpy(to.mutable_data() + static_cast<size_t>(to_index) * element,
              from.data() + static_cast<size_t>(from_index) * element, element);
}

Results sort(const ir::Node& node, Operands operands) {
  const auto& attrs = node.attrs_as<ir::SortAttrs>();
  const HostBuffer& keys = operands[0];
  for (const HostBuffer& operand : operands)
    if (!std::ranges::equal(operand.shape().dims(), keys.shape().dims()))
      fail("[sort] operands have different dims: {} and {}", keys.shape().to_string(), operand.shape().to_string());
  const Lanes lanes = lanes_of(keys.shape(), keys.shape().checked_axis(static_cast<int>(attrs.axis)));

  Results results;
  for (size_t r = 0; r < operands.size(); ++r) results.push_back(HostBuffer::allocate(node.results[r]));
  // attrs.stable is not consulted: a stable sort is also a valid unstable one.
  for (int64_t o = 0; o < lanes.outer; ++o) {
    for (int64_t j = 0; j < lanes.inner; ++j) {
      const std::vector<int64_t> order = sorted_lane(keys, lanes, o, j, attrs.descending);
      for (size_t r = 0; r < operands.size(); ++r)
        for (int64_t t = 0; t < lanes.n; ++t)
          copy_element(operands[r], lanes.flat(o, j, order[static_cast<size_t>(t)]), results[r], lanes.flat(o, j, t));
    }
  }
  return results;
}

Results top_k(const ir::Node& node, Operands operands) {
  const HostBuffer& operand = operands[0];
  const Shape& shape = operand.shape();
  const int64_t k = node.attrs_as<ir::TopKAttrs>().k;
  if (shape.rank() < 1 || k < 0 || k > shape.dim(-1))
    fail("[top_k] k = {} is outside [0, size of the last axis] for {}", k, shape.to_string());
  const Lanes lanes = lanes_of(shape, shape.rank() - 1);  // inner == 1

  HostBuffer values = HostBuffer::allocate(node.results[0]);
  HostBuffer indices = HostBuffer::allocate(node.results[1]);
  const size_t index_size = size_of(indices.dtype());
  for (int64_t o = 0; o < lanes.outer; ++o) {
    // NaN counts as larger than every number, which is where the descending
    // key order puts it.
    const std::vector<int64_t> order = sorted_lane(operand, lanes, o, 0, /*descending=*/true);
    for (int64_t t = 0; t < k; ++t) {
      const int64_t source = order[static_cast<size_t>(t)];
      copy_element(operand, lanes.flat(o, 0, source), values, o * k + t);
      store_int(indices.dtype(), indices.mutable_data() + static_cast<size_t>(o * k + t) * index_size, source);
    }
  }
  return {values, indices};
}

}  // namespace

Results eval_sorting(const ir::Node& node, Operands operands) {
  if (node.op == ir::Op::sort) return sort(node, operands);
  if (node.op == ir::Op::top_k) return top_k(node, operands);
  fail("[{}] is not a sorting op", ir::name(node.op));
}

}  // namespace kiln::reference
