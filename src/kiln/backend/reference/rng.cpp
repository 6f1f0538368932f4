// Reference kernel for rng: counter-based random numbers.
//
// Generator: Philox4x32-10 (Salmon, Moraes, Dror, Shaw, "Parallel random
// numbers: as easy as 1, 2, 3", SC11; the Random123 library). State is a
// 128-bit counter (c0, c1, c2, c3) and a 64-bit key (k0, k1). One round:
//   (hi0, lo0) = 0xD2511F53 * c0    (32x32 -> 64-bit product, split in halves)
//   (hi1, lo1) = 0xCD9E8D57 * c2
//   c = (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
// after which the key is bumped by the Weyl constants (k0 += 0x9E3779B9,
// k1 += 0xBB67AE85, mod 2^32). Ten rounds; the output words x0..x3 are the
// final counter. Checked against Random123's known-answer vectors
// (tests/fixtures/make_op_fixtures_sorting.py and rng_test.cpp).
//
// Counter layout: element i of the result (row-major flat index) uses
// counter (low 32 bits of i, high 32 bits of i, 0, 0) and key (k0, k1) = the
// u32 [2] operand. So every element depends only on (key, i): results do not
// depend on how the work is split, and a prefix of a larger shape gives the
// same numbers as a smaller shape with the same key. Only x0 and x1 are used.
//
// Float conversion:
//   uniform, f64: (((uint64)x0 << 32 | x1) >> 11) * 2^-53, in [0, 1).
//   uniform, other floats: u = (x0 >> 8) * 2^-24, exact in f32, rounded to
//     nearest even in the result dtype. Narrow dtypes (f16, bf16, f8) can
//     round u up to 1.0; those results are clamped to the largest value below
//     1 in the dtype so that the range stays [0, 1).
//   normal (every float dtype): Box-Muller with u1 = ((x0 >> 8) + 1) * 2^-24
//     in (0, 1] (so log(u1) is finite) and u2 = (x1 >> 8) * 2^-24;
//     z = sqrt(-2 ln u1) * cos(2 pi u2), computed in double and rounded once.
#include <array>
#include <cmath>
#include <cstdint>
#include <numbers>

#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/core/error.h"

namespace kiln::reference {

std::array<uint32_t, 4> philox4x32_10(std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
  constexpr uint64_t kMul0 = 0xD2511F53, kMul1 = 0xCD9E8D57;
  constexpr uint32_t kBump0 = 0x9E3779B9, kBump1 = 0xBB67AE85;
  std::array<uint32_t, 4> x = counter;
  uint32_t k0 = key[0], k1 = key[1];
  for (int round = 0; round < 10; ++round) {
    const uint64_t p0 = kMul0 * x[0];
    const uint64_t p1 = kMul1 * x[2];
    x = {static_cast<uint32_t>(p1 >> 32) ^ x[1] ^ k0, static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ x[3] ^ k1, static_cast<uint32_t>(p0)};
    k0 += kBump0;
    k1 += kBump1;
  }
  return x;
}

namespace {

// The largest value below 1 in a float dtype: 1 - 2^-(mantissa bits + 1).
double largest_below_one(DType dtype) {
  switch (dtype) {
    case DType::f16:
      return 1.0 - 0x1p-11;
    case DType::bf16:
      return 1.0 - 0x1p-8;
    case DType::f32:
      return 1.0 - 0x1p-24;
    case DType::f64:
      return 1.0 - 0x1p-53;
    case DType::f8e4m3fn:
      return 1.0 - 0x1p-4;
    case DType::f8e5m2:
      return 1.0 - 0x1p-3;
    case DType::bool_:
    case DType::i8:
    case DType::i16:
    case DType::i32:
    case DType::i64:
    case DType::u8:
    case DType::u16:
    case DType::u32:
    case DType::u64:
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
  fail("[rng] generates floats, not {}", name(dtype));
}

void store_uniform(DType dtype, std::byte* p, const std::array<uint32_t, 4>& x) {
  if (dtype == DType::f64) {
    const uint64_t bits = (static_cast<uint64_t>(x[0]) << 32 | x[1]) >> 11;
    store_double(dtype, p, static_cast<double>(bits) * 0x1p-53);
    return;
  }
  store_double(dtype, p, static_cast<double>(x[0] >> 8) * 0x1p-24);
  if (load_double(dtype, p) >= 1.0) store_double(dtype, p, largest_below_one(dtype));
}

void store_normal(DType dtype, std::byte* p, const std::array<uint32_t, 4>& x) {
  const double u1 = static_cast<double>((x[0] >> 8) + 1) * 0x1p-24;
  const double u2 = static_cast<double>(x[1] >> 8) * 0x1p-24;
  store_double(dtype, p, std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2));
}

}  // namespace

Results eval_rng(const ir::Node& node, Operands operands) {
  const auto& attrs = node.attrs_as<ir::RngAttrs>();
  const HostBuffer& key_buffer = operands[0];
  // Inference already checks this; the kernel must not read past the key.
  if (key_buffer.dtype() != DType::u32 || key_buffer.shape().count() != 2)
    fail("[rng] the key must be u32 [2], got {}", key_buffer.shape().to_string());
  const auto key_words = key_buffer.span<uint32_t>();
  const std::array<uint32_t, 2> key = {key_words[0], key_words[1]};

  HostBuffer result = HostBuffer::allocate(node.results[0]);
  const DType dtype = result.dtype();
  if (!is_float(dtype)) fail("[rng] generates floats, not {}", name(dtype));
  const size_t element = size_of(dtype);
  std::byte* out = result.mutable_data();
  const int64_t count = result.shape().count();
  for (int64_t i = 0; i < count; ++i) {
    const auto index = static_cast<uint64_t>(i);
    const auto x = philox4x32_10({static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), 0, 0}, key);
    std::byte* p = out + static_cast<size_t>(i) * element;
    switch (attrs.distribution) {
      case ir::RngDistribution::uniform:
        store_uniform(dtype, p, x);
        break;
      case ir::RngDistribution::normal:
        store_normal(dtype, p, x);
        break;
    }
  }
  return {result};
}

}  // namespace kiln::reference
