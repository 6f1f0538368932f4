#include "kiln/core/dtype.h"

#include <array>
#include <bit>
#include <cmath>

namespace kiln {
namespace {

using enum DTypeKind;
// One row per type (clang-format would pack them into columns).
// clang-format off
constexpr std::array<DTypeInfo, kDTypeCount> kTable = {{
    {DType::bool_, "bool", "BOOL", 1, boolean},
    {DType::i8, "i8", "I8", 1, signed_int},
    {DType::i16, "i16", "I16", 2, signed_int},
    {DType::i32, "i32", "I32", 4, signed_int},
    {DType::i64, "i64", "I64", 8, signed_int},
    {DType::u8, "u8", "U8", 1, unsigned_int},
    {DType::u16, "u16", "U16", 2, unsigned_int},
    {DType::u32, "u32", "U32", 4, unsigned_int},
    {DType::u64, "u64", "U64", 8, unsigned_int},
    {DType::f16, "f16", "F16", 2, floating},
    {DType::bf16, "bf16", "BF16", 2, floating},
    {DType::f32, "f32", "F32", 4, floating},
    {DType::f64, "f64", "F64", 8, floating},
    {DType::f8e4m3fn, "f8e4m3fn", "F8_E4M3", 1, floating},
    {DType::f8e5m2, "f8e5m2", "F8_E5M2", 1, floating},
    {DType::q4_0, "q4_0", "", 18, quantized, 32},
    {DType::q4_1, "q4_1", "", 20, quantized, 32},
    {DType::q5_0, "q5_0", "", 22, quantized, 32},
    {DType::q5_1, "q5_1", "", 24, quantized, 32},
    {DType::q8_0, "q8_0", "", 34, quantized, 32},
    {DType::q4_k, "q4_k", "", 144, quantized, 256},
    {DType::q5_k, "q5_k", "", 176, quantized, 256},
    {DType::q6_k, "q6_k", "", 210, quantized, 256},
}};
// clang-format on

constexpr bool table_matches_enum() {
  for (size_t i = 0; i < kTable.size(); ++i)
    if (static_cast<size_t>(kTable[i].dtype) != i) return false;
  return true;
}
static_assert(table_matches_enum(), "kTable rows must follow the DType enum order");

// A binary floating-point format narrower than f32: sign, `exp_bits` exponent
// bits, `man_bits` mantissa bits. `ieee` formats reserve the top exponent for
// inf/NaN; the "fn" (finite) formats only reserve the all-ones pattern for NaN.
struct SmallFloat {
  int exp_bits;
  int man_bits;
  bool ieee;

  constexpr int bias() const { return (1 << (exp_bits - 1)) - 1; }
  constexpr uint32_t sign_bit() const { return 1u << (exp_bits + man_bits); }
  constexpr uint32_t magnitude_mask() const { return sign_bit() - 1; }
  constexpr uint32_t inf_bits() const { return ((1u << exp_bits) - 1) << man_bits; }
  constexpr uint32_t nan_bits() const { return ieee ? inf_bits() | (1u << (man_bits - 1)) : magnitude_mask(); }
  // Largest magnitude bit pattern that is a finite number.
  constexpr uint32_t max_finite_bits() const { return ieee ? inf_bits() - 1 : magnitude_mask() - 1; }
};

constexpr SmallFloat kF16{5, 10, true};
constexpr SmallFloat kBF16{8, 7, true};
constexpr SmallFloat kF8E4M3FN{4, 3, false};
constexpr SmallFloat kF8E5M2{5, 2, true};

uint32_t encode(SmallFloat format, float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 31) ? format.sign_bit() : 0;
  const uint32_t exp_field = (bits >> 23) & 0xFF;
  uint32_t mantissa = bits & 0x7FFFFF;

  if (exp_field == 0xFF) {
    if (mantissa == 0) return sign | (format.ieee ? format.inf_bits() : format.nan_bits());
    if (!format.ieee) return sign | format.nan_bits();
    // Keep the top payload bits and force the quiet bit so the result is NaN.
    return sign | format.nan_bits() | (mantissa >> (23 - format.man_bits));
  }
  if (exp_field == 0 && mantissa == 0) return sign;

  // value = significand * 2^(exponent - 23) with a 24-bit significand.
  int exponent = static_cast<int>(exp_field) - 127;
  uint64_t significand = mantissa | (1u << 23);
  if (exp_field == 0) {  // f32 subnormal: normalize
    exponent = -126;
    significand = mantissa;
    while (!(significand & (1u << 23))) {
      significand <<= 1;
      --exponent;
    }
  }

  const int min_exponent = 1 - format.bias();
  uint64_t result;
  int shift;  // low significand bits dropped by rounding
  if (exponent >= min_exponent) {
    shift = 23 - format.man_bits;
    const uint64_t biased = static_cast<uint64_t>(exponent + format.bias());
    if (biased > (1u << format.exp_bits)) return sign | (format.ieee ? format.inf_bits() : format.nan_bits());
    result = (biased << format.man_bits) | ((significand & 0x7FFFFF) >> shift);
  } else {
    shift = std::min(23 - format.man_bits + (min_exponent - exponent), 25);
    result = significand >> shift;
  }
  // Round to nearest, ties to even. A carry out of the mantissa correctly
  // bumps the exponent (or turns the largest subnormal into the smallest normal).
  const uint64_t remainder = significand & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  if (remainder > half || (remainder == half && (result & 1))) ++result;

  if (result > format.max_finite_bits()) return sign | (format.ieee ? format.inf_bits() : format.nan_bits());
  return sign | static_cast<uint32_t>(result);
}

float decode(SmallFloat format, uint32_t bits) {
  const bool negative = bits & format.sign_bit();
  const uint32_t magnitude = bits & format.magnitude_mask();
  const uint32_t exp_field = magnitude >> format.man_bits;
  const uint32_t mantissa = magnitude & ((1u << format.man_bits) - 1);
  float value;
  if (format.ieee && exp_field == (1u << format.exp_bits) - 1) {
    value = mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else if (!format.ieee && magnitude == format.nan_bits()) {
    value = std::numeric_limits<float>::quiet_NaN();
  } else if (exp_field == 0) {
    value = std::ldexp(static_cast<float>(mantissa), 1 - format.bias() - format.man_bits);
  } else {
    value = std::ldexp(static_cast<float>(mantissa | (1u << format.man_bits)),
                       static_cast<int>(exp_field) - format.bias() - format.man_bits);
  }
  return negative ? -value : value;
}

}  // namespace

const DTypeInfo& info(DType dtype) { return kTable[static_cast<size_t>(dtype)]; }

std::optional<DType> dtype_from_name(std::string_view name) {
  for (const auto& row : kTable)
    if (row.name == name) return row.dtype;
  return std::nullopt;
}

std::optional<DType> dtype_from_safetensors(std::string_view code) {
  if (code.empty()) return std::nullopt;
  for (const auto& row : kTable)
    if (row.safetensors == code) return row.dtype;
  return std::nullopt;
}

// f16 stores and loads run per element in kernels and weight conversion,
// so finite values take bit arithmetic (NaN and infinity the general path).
uint16_t f32_to_f16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude >= 0x7F800000u) return static_cast<uint16_t>(encode(kF16, value));
  if (magnitude >= 0x477FF000u) return sign | 0x7C00u;  // 65520 and up round to infinity
  if (magnitude >= 0x38800000u) {                       // normal: rebias, round to nearest even on the bits
    const uint32_t rebiased = magnitude - (112u << 23);
    return sign | static_cast<uint16_t>((rebiased + 0xFFFu + ((rebiased >> 13) & 1u)) >> 13);
  }
  // Subnormal (or zero): adding 0.5 puts the 2^-24 unit in the last mantissa
  // bit, so the float addition itself rounds to nearest even.
  const float shifted = std::bit_cast<float>(magnitude) + 0.5f;
  return sign | static_cast<uint16_t>(std::bit_cast<uint32_t>(shifted) - 0x3F000000u);
}
// bf16 keeps f32's exponent, so rounding to nearest even is an add on the
// bits (a carry bumps the exponent, up to infinity, as it should); NaNs keep
// their top payload and get the quiet bit (checked against PyTorch's bits,
// ties and subnormals included). Kernels' bf16 stores call this per
// element, so it does not go through the general encode().
uint16_t f32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}
uint8_t f32_to_f8e4m3fn(float value) { return static_cast<uint8_t>(encode(kF8E4M3FN, value)); }
uint8_t f32_to_f8e5m2(float value) { return static_cast<uint8_t>(encode(kF8E5M2, value)); }

float f16_to_f32(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exp_field = (bits >> 10) & 0x1Fu, mantissa = bits & 0x3FFu;
  if (exp_field == 0x1F) return decode(kF16, bits);
  if (exp_field == 0)  // zero or subnormal: mantissa x 2^-24, exact in f32
    return std::bit_cast<float>(sign | std::bit_cast<uint32_t>(static_cast<float>(mantissa) * 0x1p-24f));
  return std::bit_cast<float>(sign | ((exp_field + 112u) << 23) | (mantissa << 13));
}
// bf16 is the top half of an f32, so widening is a shift.
float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
float f8e4m3fn_to_f32(uint8_t bits) { return decode(kF8E4M3FN, bits); }
float f8e5m2_to_f32(uint8_t bits) { return decode(kF8E5M2, bits); }

}  // namespace kiln
