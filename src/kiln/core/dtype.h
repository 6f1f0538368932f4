#pragma once
// Element types. The table in dtype.cpp is the single source of each type's
// size, printable name and safetensors code.
//
// The block-quantized types are GGML's (as GGUF files hold them): `block`
// consecutive elements along the innermost axis are stored together in
// `size` bytes (scales and packed integers), so a shape of one needs its
// innermost dimension to be a multiple of the block, its bytes come from
// Shape::byte_size(), and single elements have no address of their own.
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
  q4_0,      // 32 elements: f16 scale, 32 4-bit values
  q4_1,      // 32 elements: f16 scale and minimum, 32 4-bit values
  q5_0,      // 32 elements: f16 scale, 32 5-bit values
  q5_1,      // 32 elements: f16 scale and minimum, 32 5-bit values
  q8_0,      // 32 elements: f16 scale, 32 int8 values
  q4_k,      // 256 elements: f16 super-scale and -minimum, 8 sub-blocks of 6-bit scales/minimums, 4-bit values
  q5_k,      // 256 elements: as q4_k with 5-bit values
  q6_k,      // 256 elements: 16 sub-blocks of int8 scales, f16 super-scale, 6-bit values
};
inline constexpr int kDTypeCount = 23;

enum class DTypeKind : uint8_t { boolean, signed_int, unsigned_int, floating, quantized };

struct DTypeInfo {
  DType dtype;
  std::string_view name;         // "f32", used in shapes and IR dumps
  std::string_view safetensors;  // "F32", the code in safetensors headers ("" for the quantized types)
  uint16_t size;                 // bytes per element, or per block for the quantized types
  DTypeKind kind;
  uint16_t block = 1;  // elements per block (1 but for the quantized types)
};

const DTypeInfo& info(DType dtype);
// Bytes per element (per block for a quantized type: see Shape::byte_size()).
inline size_t size_of(DType dtype) { return info(dtype).size; }
inline bool is_quantized(DType dtype) { return info(dtype).kind == DTypeKind::quantized; }
inline int64_t block_size(DType dtype) { return info(dtype).block; }
inline std::string_view name(DType dtype) { return info(dtype).name; }
inline bool is_float(DType dtype) { return info(dtype).kind == DTypeKind::floating; }
inline bool is_integer(DType dtype) {
  auto k = info(dtype).kind;
  return k == DTypeKind::signed_int || k == DTypeKind::unsigned_int;
}
inline bool is_unsigned(DType dtype) { return info(dtype).kind == DTypeKind::unsigned_int; }

// Lookups by name; nullopt when the name is unknown (or, for safetensors,
// empty: the quantized types have no code there).
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
