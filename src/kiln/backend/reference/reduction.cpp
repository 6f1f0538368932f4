// reduce and reduce_window. Floats accumulate in double and are rounded once
// to the result dtype; integers accumulate as uint64 bits so sums and products
// wrap like the narrow type would (two's complement modulo 2^64, truncated on
// store) without signed-overflow UB.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <span>
#include <vector>

#include "kiln/backend/reference/index_util.h"
#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/core/error.h"

namespace kiln::reference {
namespace {

using ir::ReduceKind;

// Advances a row-major multi-index; false once it wraps around to all zeros.
bool next_index(std::vector<int64_t>& index, std::span<const int64_t> dims) {
  for (size_t a = index.size(); a-- > 0;) {
    if (++index[a] < dims[a]) return true;
    index[a] = 0;
  }
  return false;
}

// Integer range of a dtype as uint64 bit patterns (bool is the range {0, 1}).
uint64_t lowest_bits(DType dtype) {
  if (dtype == DType::bool_ || is_unsigned(dtype)) return 0;
  return ~uint64_t{0} << (8 * size_of(dtype) - 1);  // sign-extended minimum
}
uint64_t highest_bits(DType dtype) {
  if (dtype == DType::bool_) return 1;
  const unsigned bits = 8 * static_cast<unsigned>(size_of(dtype));
  const uint64_t all = bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
  return is_unsigned(dtype) ? all : all >> 1;
}

// A running reduction of elements of one dtype, starting from the kind's
// identity.
class Accumulator {
 public:
  Accumulator(ReduceKind kind, DType dtype) : kind_(kind), dtype_(dtype), float_(is_float(dtype)) {}

  void reset() {
    switch (kind_) {
      case ReduceKind::sum:
        f_ = 0, u_ = 0;
        break;
      case ReduceKind::prod:
        f_ = 1, u_ = 1;
        break;
      case ReduceKind::max:
      case ReduceKind::argmax:
        f_ = -INFINITY, u_ = lowest_bits(dtype_);
        break;
      case ReduceKind::min:
      case ReduceKind::argmin:
        f_ = INFINITY, u_ = highest_bits(dtype_);
        break;
      case ReduceKind::and_:
        u_ = ~uint64_t{0};
        break;
      case ReduceKind::or_:
        u_ = 0;
        break;
    }
  }

  void add(const std::byte* p) {
    if (float_)
      add_float(load_double(dtype_, p));
    else
      add_int(static_cast<uint64_t>(load_int(dtype_, p)));
  }

  void store(std::byte* p) const {
    if (float_)
      store_double(dtype_, p, f_);
    else
      store_int(dtype_, p, static_cast<int64_t>(u_));
  }

 private:
  // IEEE maximum/minimum: NaN wins, and +0 is above -0.
  void add_float(double x) {
    switch (kind_) {
      case ReduceKind::sum:
        f_ += x;
        break;
      case ReduceKind::prod:
        f_ *= x;
        break;
      case ReduceKind::max:
      case ReduceKind::argmax:
        if (std::isnan(f_)) break;
        if (std::isnan(x) || x > f_ || (x == f_ && std::signbit(f_) && !std::signbit(x))) f_ = x;
        break;
      case ReduceKind::min:
      case ReduceKind::argmin:
        if (std::isnan(f_)) break;
        if (std::isnan(x) || x < f_ || (x == f_ && !std::signbit(f_) && std::signbit(x))) f_ = x;
        break;
      case ReduceKind::and_:
      case ReduceKind::or_:
        fail("[reduce] and/or of floats");  // rejected by shape inference
    }
  }

  void add_int(uint64_t x) {
    switch (kind_) {
      case ReduceKind::sum:
        u_ += x;
        break;
      case ReduceKind::prod:
        u_ *= x;
        break;
      case ReduceKind::max:
      case ReduceKind::argmax:
        if (greater(x, u_)) u_ = x;
        break;
      case ReduceKind::min:
      case ReduceKind::argmin:
        if (greater(u_, x)) u_ = x;
        break;
      case ReduceKind::and_:
        u_ &= x;
        break;
      case ReduceKind::or_:
        u_ |= x;
        break;
    }
  }

  bool greater(uint64_t a, uint64_t b) const {
    if (is_unsigned(dtype_) || dtype_ == DType::bool_) return a > b;
    return static_cast<int64_t>(a) > static_cast<int64_t>(b);
  }

  ReduceKind kind_;
  DType dtype_;
  bool float_;
  double f_ = 0;
  uint64_t u_ = 0;
};

// Whether `x` should replace the current best of an argmax/argmin. Like
// torch.argmax: the first NaN wins over everything, ties keep the first.
bool better_float(ReduceKind kind, double x, double best) {
  if (std::isnan(best)) return false;
  if (std::isnan(x)) return true;
  return kind == ReduceKind::argmax ? x > best : x < best;
}
bool better_int(ReduceKind kind, DType dtype, int64_t x, int64_t best) {
  if (is_unsigned(dtype)) {
    const auto ux = static_cast<uint64_t>(x), ub = static_cast<uint64_t>(best);
    return kind == ReduceKind::argmax ? ux > ub : ux < ub;
  }
  return kind == ReduceKind::argmax ? x > best : x < best;
}

Results eval_reduce(const ir::Node& node, const HostBuffer& operand) {
  const auto& attrs = node.attrs_as<ir::ReduceAttrs>();
  const Shape& shape = operand.shape();
  const DType dtype = shape.dtype();
  const auto strides = shape.strides();

  // Reduced axes in ascending order, so that an argmax index over several
  // axes is the row-major position within them whatever order attrs list.
  std::vector<int64_t> kept_dims, kept_strides, reduced_dims, reduced_strides;
  for (int a = 0; a < shape.rank(); ++a) {
    const bool reduced = std::ranges::find(attrs.axes, a) != attrs.axes.end();
    (reduced ? reduced_dims : kept_dims).push_back(shape.dim(a));
    (reduced ? reduced_strides : kept_strides).push_back(strides[static_cast<size_t>(a)]);
  }
  const std::vector<int64_t> outer = offsets_of(kept_dims, kept_strides);
  const std::vector<int64_t> inner = offsets_of(reduced_dims, reduced_strides);

  const size_t element = size_of(dtype);
  const std::byte* in = operand.data();
  HostBuffer values = HostBuffer::allocate(node.results[0]);
  std::byte* out = values.mutable_data();

  if (attrs.kind == ReduceKind::argmax || attrs.kind == ReduceKind::argmin) {
    HostBuffer indices = HostBuffer::allocate(node.results[1]);
    const DType index_dtype = indices.dtype();
    std::byte* out_index = indices.mutable_data();
    const size_t index_size = size_of(index_dtype);
    // Shape inference rejects empty reduced axes, so `inner` is non-empty.
    for (size_t o = 0; o < outer.size(); ++o) {
      const std::byte* base = in + outer[o] * static_cast<int64_t>(element);
      size_t best = 0;
      if (is_float(dtype)) {
        double best_value = load_double(dtype, base + inner[0] * static_cast<int64_t>(element));
        for (size_t i = 1; i < inner.size(); ++i) {
          const double x = load_double(dtype, base + inner[i] * static_cast<int64_t>(element));
          if (better_float(attrs.kind, x, best_value)) best = i, best_value = x;
        }
      } else {
        int64_t best_value = load_int(dtype, base + inner[0] * static_cast<int64_t>(element));
        for (size_t i = 1; i < inner.size(); ++i) {
          const int64_t x = load_int(dtype, base + inner[i] * static_cast<int64_t>(element));
          if (better_int(attrs.kind, dtype, x, best_value)) best = i, best_value = x;
        }
      }
      std::memcpy(out + o * element, base + inner[best] * static_cast<int64_t>(element), element);
      store_int(index_dtype, out_index + o * index_size, static_cast<int64_t>(best));
    }
    return {values, indices};
  }

  Accumulator acc(attrs.kind, dtype);
  for (size_t o = 0; o < outer.size(); ++o) {
    const std::byte* base = in + outer[o] * static_cast<int64_t>(element);
    acc.reset();
    for (int64_t offset : inner) acc.add(base + offset * static_cast<int64_t>(element));
    acc.store(out + o * element);
  }
  return {values};
}

// StableHLO reduce_window: the operand is dilated by base_dilation (holes hold
// the identity), padded with the identity, and each window (dilated by
// window_dilation) at stride steps is reduced. Positions that land on padding
// or holes are simply skipped, which is the same as adding the identity.
Results eval_reduce_window(const ir::Node& node, const HostBuffer& operand) {
  const auto& attrs = node.attrs_as<ir::ReduceWindowAttrs>();
  const Shape& shape = operand.shape();
  const DType dtype = shape.dtype();
  const auto strides = shape.strides();
  const size_t rank = static_cast<size_t>(shape.rank());
  const size_t element = size_of(dtype);

  HostBuffer result = HostBuffer::allocate(node.results[0]);
  const auto out_dims = node.results[0].dims();
  if (node.results[0].count() == 0) return {result};
  std::byte* out = result.mutable_data();

  Accumulator acc(attrs.kind, dtype);
  std::vector<int64_t> out_index(rank, 0), window_index(rank, 0);
  int64_t o = 0;
  do {
    acc.reset();
    std::fill(window_index.begin(), window_index.end(), 0);
    do {
      int64_t offset = 0;
      bool inside = true;
      for (size_t a = 0; a < rank && inside; ++a) {
        const int64_t dilated =
            out_index[a] * attrs.strides[a] + window_index[a] * attrs.window_dilation[a] - attrs.padding_low[a];
        const int64_t base = attrs.base_dilation[a];
        const int64_t i = dilated / base;
        inside = dilated >= 0 && dilated % base == 0 && i < shape.dim(static_cast<int>(a));
        offset += i * strides[a];
      }
      if (inside) acc.add(operand.data() + offset * static_cast<int64_t>(element));
    } while (next_index(window_index, attrs.window));
    acc.store(out + o * static_cast<int64_t>(element));
    ++o;
  } while (next_index(out_index, out_dims));
  return {result};
}

}  // namespace

Results eval_reduction(const ir::Node& node, Operands operands) {
  if (node.op == ir::Op::reduce) return eval_reduce(node, operands[0]);
  if (node.op == ir::Op::reduce_window) return eval_reduce_window(node, operands[0]);
  fail("[{}] is not a reduction", ir::name(node.op));
}

}  // namespace kiln::reference
