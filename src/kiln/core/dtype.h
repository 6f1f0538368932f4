#pragma once
// Element types. The table in dtype.cpp is the single source of each type's
// size, printable name and safetensors code.
#include <cstdint>
#include <optional>
#include <string_view>

namespace kiln {

enum class DType : uint8_t {
  bool_,
  i8,
  i16,
  i32,
  i64,
  u8,
  u16,
  u32,
  u64,
  f16,
  bf16,
  f32,
  f64,
  f8e4m3fn,  // 1-4-3, bias 7, no infinities, S.1111.111 is NaN, max 448
  f8e5m2,    // 1-5-2, bias 15, IEEE-like with infinities, max 57344
};
inline constexpr int kDTypeCount = 15;

enum class DTypeKind : uint8_t { boolean, signed_int, unsigned_int, floating };

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // "f32", used in shapes and IR dumps
  std::string_view safetensors;  // "F32", the code in safetensors headers
  uint8_t size;                  // bytes per element
  DTypeKind kind;
};

const DTypeInfo& info(DType dtype);
inline size_t size_of(DType dtype) { return info(dtype).size; }
inline std::string_view name(DType dtype) { return info(dtype).name; }
inline bool is_float(DType dtype) { return info(dtype).kind == DTypeKind::floating; }
inline bool is_integer(DType dtype) {
  auto k = info(dtype).kind;
  return k == DTypeKind::signed_int || k == DTypeKind::unsigned_int;
}
inline bool is_unsigned(DType dtype) { return info(dtype).kind == DTypeKind::unsigned_int; }

// Lookups by name; nullopt when the name is unknown.
std::optional<DType> dtype_from_name(std::string_view name);
std::optional<DType> dtype_from_safetensors(std::string_view code);

// Conversions between f32 and the small float formats. f32 -> small rounds to
// nearest, ties to even; NaN stays NaN (sign kept, quiet bit set), infinities
// stay infinite where the format has them (f8e4m3fn has none: they and every
// value rounding past 448 become NaN); overflow in f16/bf16/f8e5m2 gives inf.
// small -> f32 is exact.
uint16_t f32_to_f16(float value);
uint16_t f32_to_bf16(float value);
uint8_t f32_to_f8e4m3fn(float value);
uint8_t f32_to_f8e5m2(float value);
float f16_to_f32(uint16_t bits);
float bf16_to_f32(uint16_t bits);
float f8e4m3fn_to_f32(uint8_t bits);
float f8e5m2_to_f32(uint8_t bits);

}  // namespace kiln
