#include "kiln/core/element.h"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "kiln/core/host_buffer.h"

namespace kiln {
namespace {

template <typename T>
T load(const std::byte* p) {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

template <typename T>
void store(std::byte* p, T value) {
  std::memcpy(p, &value, sizeof(T));
}

// Float to integer like StableHLO convert: truncate toward zero, NaN to 0,
// saturating at the type's range.
int64_t saturate_to_int(double value) {
  if (std::isnan(value)) return 0;
  if (value >= 9223372036854775807.0) return INT64_MAX;
  if (value <= -9223372036854775808.0) return INT64_MIN;
  return static_cast<int64_t>(value);
}

// Rounds to f32 "to odd": truncate, then set the last mantissa bit if any
// nonzero bits were dropped. Rounding that to nearest-even in a format of at
// most 22 significant bits (f16, bf16, f8) equals rounding `x` there
// directly, so double -> f32 -> small rounds once, not twice.
float round_to_odd_f32(double x) {
  const float nearest = static_cast<float>(x);
  if (std::isnan(x) || std::isinf(nearest) || static_cast<double>(nearest) == x) return nearest;
  uint32_t bits = std::bit_cast<uint32_t>(nearest);
  if (std::abs(static_cast<double>(nearest)) > std::abs(x)) bits -= 1;  // back to the truncated magnitude
  return std::bit_cast<float>(bits | 1u);
}

}  // namespace

double load_double(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::bool_:
      return load<uint8_t>(p) != 0;
    case DType::i8:
      return load<int8_t>(p);
    case DType::i16:
      return load<int16_t>(p);
    case DType::i32:
      return load<int32_t>(p);
    case DType::i64:
      return static_cast<double>(load<int64_t>(p));
    case DType::u8:
      return load<uint8_t>(p);
    case DType::u16:
      return load<uint16_t>(p);
    case DType::u32:
      return load<uint32_t>(p);
    case DType::u64:
      return static_cast<double>(load<uint64_t>(p));
    case DType::f16:
      return f16_to_f32(load<uint16_t>(p));
    case DType::bf16:
      return bf16_to_f32(load<uint16_t>(p));
    case DType::f32:
      return load<float>(p);
    case DType::f64:
      return load<double>(p);
    case DType::f8e4m3fn:
      return f8e4m3fn_to_f32(load<uint8_t>(p));
    case DType::f8e5m2:
      return f8e5m2_to_f32(load<uint8_t>(p));
    case DType::q4_0:
    case DType::q4_1:
    case DType::q5_0:
    case DType::q5_1:
    case DType::q8_0:
    case DType::q4_k:
    case DType::q5_k:
    case DType::q6_k:
      break;
  }
  fail("{} elements are stored in blocks and have no value of their own", name(dtype));
}

int64_t load_int(DType dtype, const std::byte* p) {
  switch (dtype) {
    case DType::i64:
      return load<int64_t>(p);
    case DType::u64:
      return static_cast<int64_t>(load<uint64_t>(p));
    default:
      return is_float(dtype) ? saturate_to_int(load_double(dtype, p)) : static_cast<int64_t>(load_double(dtype, p));
  }
}

void store_double(DType dtype, std::byte* p, double value) {
  if (is_quantized(dtype)) fail("{} elements are stored in blocks and cannot be written one by one", name(dtype));
  switch (dtype) {
    case DType::f16:
      return store(p, f32_to_f16(round_to_odd_f32(value)));
    case DType::bf16:
      return store(p, f32_to_bf16(round_to_odd_f32(value)));
    case DType::f32:
      return store(p, static_cast<float>(value));
    case DType::f64:
      return store(p, value);
    case DType::f8e4m3fn:
      return store(p, f32_to_f8e4m3fn(round_to_odd_f32(value)));
    case DType::f8e5m2:
      return store(p, f32_to_f8e5m2(round_to_odd_f32(value)));
    case DType::bool_:
      return store<uint8_t>(p, value != 0 ? 1 : 0);
    default:
      return store_int(dtype, p, saturate_to_int(value));
  }
}

void store_int(DType dtype, std::byte* p, int64_t value) {
  switch (dtype) {
    case DType::bool_:
      return store<uint8_t>(p, value != 0 ? 1 : 0);
    case DType::i8:
      return store(p, static_cast<int8_t>(value));
    case DType::i16:
      return store(p, static_cast<int16_t>(value));
    case DType::i32:
      return store(p, static_cast<int32_t>(value));
    case DType::i64:
      return store(p, value);
    case DType::u8:
      return store(p, static_cast<uint8_t>(value));
    case DType::u16:
      return store(p, static_cast<uint16_t>(value));
    case DType::u32:
      return store(p, static_cast<uint32_t>(value));
    case DType::u64:
      return store(p, static_cast<uint64_t>(value));
    default:
      return store_double(dtype, p, static_cast<double>(value));
  }
}

std::string summarize(const HostBuffer& buffer, size_t max_elements) {
  const HostBuffer flat = buffer.is_contiguous() ? buffer : buffer.copy();
  const DType dtype = flat.dtype();
  const size_t count = static_cast<size_t>(flat.shape().count());
  if (is_quantized(dtype)) return fmt::format("[{} bytes of {} blocks]", flat.shape().byte_size(), name(dtype));
  const size_t element = size_of(dtype);
  std::string out = "[";
  for (size_t i = 0; i < std::min(count, max_elements); ++i) {
    if (i) out += ", ";
    const std::byte* p = flat.data() + i * element;
    if (dtype == DType::bool_)
      out += load<uint8_t>(p) ? "true" : "false";
    else if (is_float(dtype))
      out += fmt::format("{:g}", load_double(dtype, p));
    else if (dtype == DType::u64)
      out += fmt::format("{}", load<uint64_t>(p));
    else
      out += fmt::format("{}", load_int(dtype, p));
  }
  if (count > max_elements) out += fmt::format(", ... ({} values)", count);
  return out + "]";
}

}  // namespace kiln
