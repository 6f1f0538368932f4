// Reference kernels for the elementwise family: iota, convert,
// bitcast_convert, unary and binary arithmetic and logic, compare, select,
// clamp. Semantics follow StableHLO (and XLA where StableHLO leaves a case
// open, e.g. integer division by zero).
//
// Floats are computed in double and rounded once to the result dtype.
// Integers travel as uint64_t holding the value sign-extended (signed types)
// or zero-extended (unsigned types and bool, which counts as a 1-bit unsigned
// integer); arithmetic wraps in uint64_t and store_int truncates to the width,
// which is the same as wrapping in the narrow type.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/core/error.h"
#include "kiln/core/quant.h"

namespace kiln::reference {
namespace {

using ir::Op;

// Width and signedness of an integer (or bool) dtype.
struct IntType {
  int bits;
  bool is_signed;

  uint64_t mask() const { return bits == 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1; }
  int64_t min() const { return is_signed ? static_cast<int64_t>(~uint64_t{0} << (bits - 1)) : 0; }
  // The low `bits` bits of `x` read as a two's complement number.
  int64_t sign_extend(uint64_t x) const {
    const int unused = 64 - bits;
    return static_cast<int64_t>(x << unused) >> unused;
  }
};

IntType int_type(DType dtype) {
  if (dtype == DType::bool_) return {1, false};
  return {static_cast<int>(size_of(dtype) * 8), !is_unsigned(dtype)};
}

// --- element access ---------------------------------------------------------

const std::byte* element(const HostBuffer& b, int64_t i) {
  return b.data() + i * static_cast<int64_t>(size_of(b.dtype()));
}
std::byte* element(HostBuffer& b, int64_t i) { return b.mutable_data() + i * static_cast<int64_t>(size_of(b.dtype())); }
// A rank-0 operand stands for every element (select's pred, clamp's bounds).
int64_t broadcast_index(const HostBuffer& b, int64_t i) { return b.shape().rank() == 0 ? 0 : i; }

double load_float(const HostBuffer& b, int64_t i) { return load_double(b.dtype(), element(b, i)); }
uint64_t load_bits(const HostBuffer& b, int64_t i) {
  // load_int sign-extends signed types and zero-extends unsigned ones.
  return static_cast<uint64_t>(load_int(b.dtype(), element(b, i)));
}

// Stores a value computed in double into any result dtype: floats round once,
// bool is value != 0, integers go through store_double's saturating
// truncation (only is_finite lands here with a non-float result).
void store_value(HostBuffer& b, int64_t i, double value) { store_double(b.dtype(), element(b, i), value); }
void store_bits(HostBuffer& b, int64_t i, uint64_t value) {
  store_int(b.dtype(), element(b, i), static_cast<int64_t>(value));
}

// --- float helpers ------------------------------------------------------------

// IEEE 754 maximum/minimum: NaN wins, and +0 is larger than -0.
double float_max(double a, double b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  if (a == b) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}
double float_min(double a, double b) {
  if (std::isnan(a)) return a;
  if (std::isnan(b)) return b;
  if (a == b) return std::signbit(a) ? a : b;
  return a < b ? a : b;
}

double round_half_even(double x) {
  const double below = std::floor(x);
  const double fraction = x - below;
  double r = below;
  if (fraction > 0.5 || (fraction == 0.5 && std::fmod(below, 2.0) != 0)) r = below + 1;
  return std::copysign(r, x);  // -0.4 rounds to -0, as roundToIntegralTiesToEven does
}

double float_sign(double x) {
  if (std::isnan(x) || x == 0) return x;
  return std::copysign(1.0, x);
}

// --- integer helpers ----------------------------------------------------------

bool int_less(uint64_t a, uint64_t b, IntType t) {
  return t.is_signed ? static_cast<int64_t>(a) < static_cast<int64_t>(b) : a < b;
}
uint64_t int_max(uint64_t a, uint64_t b, IntType t) { return int_less(a, b, t) ? b : a; }
uint64_t int_min(uint64_t a, uint64_t b, IntType t) { return int_less(a, b, t) ? a : b; }

// XLA's rules for the cases C++ leaves undefined: x / 0 is -1 (all ones, the
// maximum for unsigned types) and INT_MIN / -1 is INT_MIN.
uint64_t int_div(uint64_t a, uint64_t b, IntType t) {
  if (b == 0) return ~uint64_t{0};
  if (!t.is_signed) return a / b;
  const auto x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
  if (x == t.min() && y == -1) return a;
  return static_cast<uint64_t>(x / y);
}
// x % 0 is x and INT_MIN % -1 is 0; otherwise the sign follows the dividend.
uint64_t int_rem(uint64_t a, uint64_t b, IntType t) {
  if (b == 0) return a;
  if (!t.is_signed) return a % b;
  const auto x = static_cast<int64_t>(a), y = static_cast<int64_t>(b);
  if (x == t.min() && y == -1) return 0;
  return static_cast<uint64_t>(x % y);
}
// Exponentiation by squaring, wrapping. A negative exponent gives the value
// of 1/base^-e truncated to an integer: 1 for base 1, +-1 for base -1, else 0.
uint64_t int_pow(uint64_t a, uint64_t b, IntType t) {
  if (t.is_signed && static_cast<int64_t>(b) < 0) {
    const auto base = static_cast<int64_t>(a);
    if (base == 1) return 1;
    if (base == -1) return (b & 1) ? ~uint64_t{0} : 1;
    return 0;
  }
  uint64_t result = 1, base = a;
  for (uint64_t e = b; e != 0; e >>= 1) {
    if (e & 1) result *= base;
    base *= base;
  }
  return result;
}
// Shift amounts are read as unsigned: a negative amount is a huge one. An
// amount of at least the width shifts every bit out.
bool shifts_out(uint64_t amount, IntType t) { return (amount & t.mask()) >= static_cast<uint64_t>(t.bits); }
uint64_t shift_left(uint64_t a, uint64_t b, IntType t) { return shifts_out(b, t) ? 0 : a << (b & t.mask()); }
uint64_t shift_right_logical(uint64_t a, uint64_t b, IntType t) {
  return shifts_out(b, t) ? 0 : (a & t.mask()) >> (b & t.mask());
}
// Unsigned operands are shifted as their two's complement bit pattern (XLA).
uint64_t shift_right_arithmetic(uint64_t a, uint64_t b, IntType t) {
  const int64_t x = t.sign_extend(a);
  if (shifts_out(b, t)) return x < 0 ? ~uint64_t{0} : 0;
  return static_cast<uint64_t>(x >> (b & t.mask()));
}

// --- elementwise drivers ------------------------------------------------------

using FloatUnary = double (*)(double);
using IntUnary = uint64_t (*)(uint64_t, IntType);
using FloatBinary = double (*)(double, double);
using IntBinary = uint64_t (*)(uint64_t, uint64_t, IntType);

// Applies `f` to float operands and `g` to integer/bool ones; a null function
// means the op does not take that kind (shape inference already refused it).
HostBuffer map_unary(const ir::Node& node, const HostBuffer& x, FloatUnary f, IntUnary g) {
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const int64_t n = x.shape().count();
  if (is_float(x.dtype())) {
    if (!f) fail("[{}] does not take {}", ir::name(node.op), name(x.dtype()));
    for (int64_t i = 0; i < n; ++i) store_value(out, i, f(load_float(x, i)));
  } else {
    if (!g) fail("[{}] does not take {}", ir::name(node.op), name(x.dtype()));
    const IntType t = int_type(x.dtype());
    for (int64_t i = 0; i < n; ++i) store_bits(out, i, g(load_bits(x, i), t));
  }
  return out;
}

HostBuffer map_binary(const ir::Node& node, const HostBuffer& x, const HostBuffer& y, FloatBinary f, IntBinary g) {
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const int64_t n = x.shape().count();
  if (is_float(x.dtype())) {
    if (!f) fail("[{}] does not take {}", ir::name(node.op), name(x.dtype()));
    for (int64_t i = 0; i < n; ++i) store_value(out, i, f(load_float(x, i), load_float(y, i)));
  } else {
    if (!g) fail("[{}] does not take {}", ir::name(node.op), name(x.dtype()));
    const IntType t = int_type(x.dtype());
    for (int64_t i = 0; i < n; ++i) store_bits(out, i, g(load_bits(x, i), load_bits(y, i), t));
  }
  return out;
}

// --- compare ------------------------------------------------------------------

template <typename T>
bool compare_values(ir::Comparison direction, T a, T b) {
  switch (direction) {
    case ir::Comparison::eq:
      return a == b;
    case ir::Comparison::ne:
      return !(a == b);
    case ir::Comparison::lt:
      return a < b;
    case ir::Comparison::le:
      return a < b || a == b;
    case ir::Comparison::gt:
      return b < a;
    case ir::Comparison::ge:
      return b < a || a == b;
  }
  return false;
}

// A float's bits mapped to an integer that sorts in IEEE total order: the
// encoding is sign-magnitude, so negative values have their magnitude bits
// flipped (-0 becomes -1, just below +0).
int64_t total_order_key(const HostBuffer& b, int64_t i) {
  const size_t size = size_of(b.dtype());
  uint64_t raw = 0;
  std::memcpy(&raw, element(b, i), size);  // little-endian host
  const IntType t{static_cast<int>(size * 8), true};
  const int64_t bits = t.sign_extend(raw);
  return bits < 0 ? bits ^ static_cast<int64_t>(t.mask() >> 1) : bits;
}

HostBuffer compare(const ir::Node& node, const HostBuffer& x, const HostBuffer& y) {
  const auto& a = node.attrs_as<ir::CompareAttrs>();
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const int64_t n = x.shape().count();
  const DType d = x.dtype();
  for (int64_t i = 0; i < n; ++i) {
    bool r;
    if (is_float(d) && a.total_order)
      r = compare_values(a.direction, total_order_key(x, i), total_order_key(y, i));
    else if (is_float(d))
      r = compare_values(a.direction, load_float(x, i), load_float(y, i));
    else if (int_type(d).is_signed)
      r = compare_values(a.direction, load_int(d, element(x, i)), load_int(d, element(y, i)));
    else
      r = compare_values(a.direction, load_bits(x, i), load_bits(y, i));
    store_bits(out, i, r ? 1 : 0);
  }
  return out;
}

// --- select, clamp --------------------------------------------------------------

HostBuffer select(const ir::Node& node, const HostBuffer& pred, const HostBuffer& on_true, const HostBuffer& on_false) {
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const size_t size = size_of(out.dtype());
  const int64_t n = out.shape().count();
  for (int64_t i = 0; i < n; ++i) {
    const bool p = load_bits(pred, broadcast_index(pred, i)) != 0;
    std::memcpy(element(out, i), element(p ? on_true : on_false, i), size);
  }
  return out;
}

HostBuffer clamp(const ir::Node& node, const HostBuffer& lo, const HostBuffer& x, const HostBuffer& hi) {
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const int64_t n = x.shape().count();
  const DType d = x.dtype();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t l = broadcast_index(lo, i), h = broadcast_index(hi, i);
    if (is_float(d)) {
      store_value(out, i, float_min(float_max(load_float(x, i), load_float(lo, l)), load_float(hi, h)));
    } else {
      const IntType t = int_type(d);
      store_bits(out, i, int_min(int_max(load_bits(x, i), load_bits(lo, l), t), load_bits(hi, h), t));
    }
  }
  return out;
}

// --- iota, convert, bitcast -----------------------------------------------------

HostBuffer iota(const ir::Node& node) {
  const auto& a = node.attrs_as<ir::IotaAttrs>();
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const Shape& s = out.shape();
  const int axis = static_cast<int>(a.axis);
  const int64_t stride = s.strides()[static_cast<size_t>(axis)], size = s.dim(axis);
  for (int64_t i = 0; i < s.count(); ++i) {
    const int64_t index = (i / stride) % size;
    if (is_float(s.dtype()))
      store_value(out, i, static_cast<double>(index));
    else
      store_bits(out, i, static_cast<uint64_t>(index));
  }
  return out;
}

// An integer as a double rounded to odd (as store_double does for f32), so a second
// rounding to a narrower float gives the correctly rounded result; a plain
// conversion would round twice (2^62 + 2^38 + 1 would become 2^62 in f32).
double int_to_double_round_to_odd(uint64_t value, bool is_signed) {
  const bool negative = is_signed && static_cast<int64_t>(value) < 0;
  uint64_t magnitude = negative ? 0 - value : value;
  const int drop = std::max(0, static_cast<int>(std::bit_width(magnitude)) - 53);
  if (drop > 0) {
    const bool inexact = (magnitude & ((uint64_t{1} << drop) - 1)) != 0;
    magnitude = (magnitude >> drop) | (inexact ? 1 : 0);
  }
  const double r = std::ldexp(static_cast<double>(magnitude), drop);
  return negative ? -r : r;
}

// StableHLO convert from a float to an integer: truncate toward zero, NaN is
// 0, values outside the type saturate at its minimum or maximum.
uint64_t float_to_int(double x, IntType t) {
  if (std::isnan(x)) return 0;
  const double upper = std::ldexp(1.0, t.is_signed ? t.bits - 1 : t.bits);  // first value too large
  const double lower = t.is_signed ? -upper : 0.0;
  if (x >= upper) return t.mask() >> (t.is_signed ? 1 : 0);
  if (x <= lower) return static_cast<uint64_t>(t.min());
  const double truncated = std::trunc(x);
  return t.is_signed ? static_cast<uint64_t>(static_cast<int64_t>(truncated)) : static_cast<uint64_t>(truncated);
}

HostBuffer convert(const ir::Node& node, const HostBuffer& x) {
  if (is_quantized(x.dtype())) {  // dequantized to f32 (exact), then rounded once to the float result
    const HostBuffer wide = dequantize(x);
    return node.results[0].dtype() == DType::f32 ? wide : convert(node, wide);
  }
  HostBuffer out = HostBuffer::allocate(node.results[0]);
  const DType from = x.dtype(), to = out.dtype();
  const int64_t n = x.shape().count();
  for (int64_t i = 0; i < n; ++i) {
    if (to == DType::bool_) {
      const bool nonzero = is_float(from) ? load_float(x, i) != 0 : load_bits(x, i) != 0;  // NaN is nonzero
      store_bits(out, i, nonzero ? 1 : 0);
    } else if (is_float(from) && is_float(to)) {
      store_value(out, i, load_float(x, i));
    } else if (is_float(from)) {
      store_bits(out, i, float_to_int(load_float(x, i), int_type(to)));
    } else if (is_float(to)) {
      const uint64_t v = load_bits(x, i);
      const bool is_signed = int_type(from).is_signed;
      if (to == DType::f64)  // one rounding already
        store_value(out, i, is_signed ? static_cast<double>(static_cast<int64_t>(v)) : static_cast<double>(v));
      else
        store_value(out, i, int_to_double_round_to_odd(v, is_signed));
    } else {
      store_bits(out, i, load_bits(x, i));  // wraps like a C cast of the two's complement value
    }
  }
  return out;
}

HostBuffer bitcast_convert(const ir::Node& node, const HostBuffer& x) {
  // Same bytes; the shape rule (infer.cpp) makes the byte counts agree, and
  // the host is little-endian like the element order StableHLO specifies.
  HostBuffer out = HostBuffer::copy_of(node.results[0], x.bytes());
  if (out.dtype() == DType::bool_)  // any nonzero byte is true; keep bools 0/1
    for (uint8_t& b : out.mutable_span<uint8_t>()) b = b != 0 ? 1 : 0;
  return out;
}

}  // namespace

Results eval_elementwise(const ir::Node& node, Operands operands) {
  const auto operand = [&](size_t i) -> const HostBuffer& { return operands[i]; };
  const auto unary = [&](FloatUnary f, IntUnary g) { return Results{map_unary(node, operand(0), f, g)}; };
  const auto binary = [&](FloatBinary f, IntBinary g) {
    return Results{map_binary(node, operand(0), operand(1), f, g)};
  };

  switch (node.op) {
    case Op::iota:
      return {iota(node)};
    case Op::convert:
      return {convert(node, operand(0))};
    case Op::bitcast_convert:
      return {bitcast_convert(node, operand(0))};

    case Op::neg:
      return unary([](double x) { return -x; }, [](uint64_t x, IntType) { return 0 - x; });
    case Op::abs:
      return unary([](double x) { return std::abs(x); },
                   [](uint64_t x, IntType) { return static_cast<int64_t>(x) < 0 ? 0 - x : x; });
    case Op::sign:
      return unary(float_sign, [](uint64_t x, IntType) -> uint64_t {
        const auto v = static_cast<int64_t>(x);
        return static_cast<uint64_t>(v > 0 ? 1 : v < 0 ? -1 : 0);
      });
    case Op::exp:
      return unary([](double x) { return std::exp(x); }, nullptr);
    case Op::expm1:
      return unary([](double x) { return std::expm1(x); }, nullptr);
    case Op::log:
      return unary([](double x) { return std::log(x); }, nullptr);
    case Op::log1p:
      return unary([](double x) { return std::log1p(x); }, nullptr);
    case Op::sqrt:
      return unary([](double x) { return std::sqrt(x); }, nullptr);
    case Op::rsqrt:
      return unary([](double x) { return 1.0 / std::sqrt(x); }, nullptr);
    case Op::cbrt:
      return unary([](double x) { return std::cbrt(x); }, nullptr);
    case Op::tanh:
      return unary([](double x) { return std::tanh(x); }, nullptr);
    case Op::logistic:
      return unary([](double x) { return 1.0 / (1.0 + std::exp(-x)); }, nullptr);
    case Op::sin:
      return unary([](double x) { return std::sin(x); }, nullptr);
    case Op::cos:
      return unary([](double x) { return std::cos(x); }, nullptr);
    case Op::tan:
      return unary([](double x) { return std::tan(x); }, nullptr);
    case Op::erf:
      return unary([](double x) { return std::erf(x); }, nullptr);
    case Op::floor:
      return unary([](double x) { return std::floor(x); }, nullptr);
    case Op::ceil:
      return unary([](double x) { return std::ceil(x); }, nullptr);
    case Op::round_nearest_even:
      return unary(round_half_even, nullptr);
    case Op::not_:
      return unary(nullptr, [](uint64_t x, IntType t) { return ~x & t.mask(); });
    case Op::is_finite:
      return unary([](double x) { return std::isfinite(x) ? 1.0 : 0.0; }, nullptr);
    case Op::popcnt:
      return unary(nullptr, [](uint64_t x, IntType t) { return static_cast<uint64_t>(std::popcount(x & t.mask())); });

    case Op::add:
      return binary([](double a, double b) { return a + b; }, [](uint64_t a, uint64_t b, IntType) { return a + b; });
    case Op::sub:
      return binary([](double a, double b) { return a - b; }, [](uint64_t a, uint64_t b, IntType) { return a - b; });
    case Op::mul:
      return binary([](double a, double b) { return a * b; }, [](uint64_t a, uint64_t b, IntType) { return a * b; });
    case Op::div:
      return binary([](double a, double b) { return a / b; }, int_div);
    case Op::rem:
      return binary([](double a, double b) { return std::fmod(a, b); }, int_rem);
    case Op::pow:
      return binary([](double a, double b) { return std::pow(a, b); }, int_pow);
    case Op::max:
      return binary(float_max, int_max);
    case Op::min:
      return binary(float_min, int_min);
    case Op::atan2:
      return binary([](double a, double b) { return std::atan2(a, b); }, nullptr);
    // Bools are 1-bit integers here, so bitwise logic is also the logical one.
    case Op::and_:
      return binary(nullptr, [](uint64_t a, uint64_t b, IntType) { return a & b; });
    case Op::or_:
      return binary(nullptr, [](uint64_t a, uint64_t b, IntType) { return a | b; });
    case Op::xor_:
      return binary(nullptr, [](uint64_t a, uint64_t b, IntType) { return a ^ b; });
    case Op::shift_left:
      return binary(nullptr, shift_left);
    case Op::shift_right_logical:
      return binary(nullptr, shift_right_logical);
    case Op::shift_right_arithmetic:
      return binary(nullptr, shift_right_arithmetic);

    case Op::compare:
      return {compare(node, operand(0), operand(1))};
    case Op::select:
      return {select(node, operand(0), operand(1), operand(2))};
    case Op::clamp:
      return {clamp(node, operand(0), operand(1), operand(2))};

    default:  // interpreter.cpp sends only this family's ops here
      break;
  }
  fail("[{}] is not an elementwise op", ir::name(node.op));
}

}  // namespace kiln::reference
