// DType table and the small-float conversions, checked against values that
// tests/fixtures/make_dtype_fixtures.py computed with NumPy (f16), PyTorch
// (bf16) and an exact rational reference (f8).
#include "kiln/core/dtype.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "kiln/io/open.h"

namespace kiln {
namespace {

const io::BufferStore& fixtures() {
  static const io::BufferStore store = io::open(KILN_FIXTURES "/dtype/conversions.safetensors");
  return store;
}

template <typename T>
std::span<const T> tensor(const char* name) {
  return fixtures().get(name).span<T>();
}

TEST(DType, TableIsConsistent) {
  EXPECT_EQ(size_of(DType::bool_), 1u);
  EXPECT_EQ(size_of(DType::bf16), 2u);
  EXPECT_EQ(size_of(DType::f64), 8u);
  EXPECT_EQ(size_of(DType::u32), 4u);
  EXPECT_EQ(size_of(DType::f8e5m2), 1u);
  EXPECT_EQ(name(DType::f8e4m3fn), "f8e4m3fn");
  EXPECT_EQ(info(DType::f8e4m3fn).safetensors, "F8_E4M3");
  EXPECT_EQ(info(DType::bool_).safetensors, "BOOL");
  for (int i = 0; i < kDTypeCount; ++i) {
    const auto d = static_cast<DType>(i);
    EXPECT_EQ(dtype_from_name(name(d)), d);
    if (is_quantized(d)) {
      EXPECT_EQ(info(d).safetensors, "");
      EXPECT_GT(block_size(d), 1);
    } else {
      EXPECT_EQ(dtype_from_safetensors(info(d).safetensors), d);
      EXPECT_EQ(block_size(d), 1);
    }
  }
  EXPECT_FALSE(dtype_from_safetensors("").has_value());
  EXPECT_EQ(size_of(DType::q4_k), 144u);  // bytes per 256-element block
  EXPECT_EQ(block_size(DType::q8_0), 32);
  EXPECT_FALSE(dtype_from_safetensors("F12").has_value());
  EXPECT_FALSE(dtype_from_name("float").has_value());
  EXPECT_TRUE(is_float(DType::bf16));
  EXPECT_TRUE(is_integer(DType::u8));
  EXPECT_TRUE(is_unsigned(DType::u64));
  EXPECT_FALSE(is_integer(DType::bool_));
}

// Compares encoded bits; for NaN inputs any NaN pattern is right.
template <typename Bits, typename Encode, typename Decode>
void check_encoding(const char* expected_name, Encode encode, Decode decode) {
  const auto inputs = tensor<float>("f32_inputs");
  const auto expected = tensor<Bits>(expected_name);
  ASSERT_EQ(inputs.size(), expected.size());
  int mismatches = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Bits got = encode(inputs[i]);
    if (std::isnan(inputs[i]) || std::isnan(decode(expected[i]))) {
      EXPECT_TRUE(std::isnan(decode(got))) << expected_name << " input " << inputs[i] << " index " << i;
      continue;
    }
    if (got != expected[i] && ++mismatches <= 10)
      ADD_FAILURE() << expected_name << ": input " << inputs[i] << " (bits 0x" << std::hex
                    << std::bit_cast<uint32_t>(inputs[i]) << ") gave 0x" << +got << ", expected 0x" << +expected[i];
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(DType, F32ToF16MatchesNumPy) { check_encoding<uint16_t>("to_f16", f32_to_f16, f16_to_f32); }
TEST(DType, F32ToBF16MatchesPyTorch) { check_encoding<uint16_t>("to_bf16", f32_to_bf16, bf16_to_f32); }
TEST(DType, F32ToF8E4M3FNMatchesReference) { check_encoding<uint8_t>("to_f8e4m3fn", f32_to_f8e4m3fn, f8e4m3fn_to_f32); }
TEST(DType, F32ToF8E5M2MatchesReference) { check_encoding<uint8_t>("to_f8e5m2", f32_to_f8e5m2, f8e5m2_to_f32); }

// Every bit pattern decodes to the reference value (NaN to NaN, -0 to -0).
template <typename Bits, typename Decode>
void check_all_decodings(std::span<const float> expected, Decode decode) {
  for (size_t bits = 0; bits < expected.size(); ++bits) {
    const float got = decode(static_cast<Bits>(bits));
    if (std::isnan(expected[bits])) {
      EXPECT_TRUE(std::isnan(got)) << "bits 0x" << std::hex << bits;
    } else {
      EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(expected[bits])) << "bits 0x" << std::hex << bits;
    }
  }
}

TEST(DType, F16ToF32AllPatterns) { check_all_decodings<uint16_t>(tensor<float>("f16_all_to_f32"), f16_to_f32); }
TEST(DType, BF16ToF32SampledPatterns) {
  const auto bits = tensor<uint16_t>("bf16_sample_bits");
  const auto expected = tensor<float>("bf16_sample_to_f32");
  ASSERT_EQ(bits.size(), expected.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    const float got = bf16_to_f32(bits[i]);
    if (std::isnan(expected[i]))
      EXPECT_TRUE(std::isnan(got)) << bits[i];
    else
      EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(expected[i])) << bits[i];
  }
}
TEST(DType, F8E4M3FNToF32AllPatterns) {
  check_all_decodings<uint8_t>(tensor<float>("f8e4m3fn_all_to_f32"), f8e4m3fn_to_f32);
}
TEST(DType, F8E5M2ToF32AllPatterns) { check_all_decodings<uint8_t>(tensor<float>("f8e5m2_all_to_f32"), f8e5m2_to_f32); }

// Round trips: every non-NaN pattern survives small -> f32 -> small.
TEST(DType, RoundTripsAreExact) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const float f = f16_to_f32(static_cast<uint16_t>(bits));
    if (!std::isnan(f)) {
      EXPECT_EQ(f32_to_f16(f), bits);
    }
    const float b = bf16_to_f32(static_cast<uint16_t>(bits));
    if (!std::isnan(b)) {
      EXPECT_EQ(f32_to_bf16(b), bits);
    }
  }
  for (uint32_t bits = 0; bits < 256; ++bits) {
    const float a = f8e4m3fn_to_f32(static_cast<uint8_t>(bits));
    if (!std::isnan(a)) {
      EXPECT_EQ(f32_to_f8e4m3fn(a), bits);
    }
    const float b = f8e5m2_to_f32(static_cast<uint8_t>(bits));
    if (!std::isnan(b)) {
      EXPECT_EQ(f32_to_f8e5m2(b), bits);
    }
  }
}

TEST(DType, InfinityAndNaNArePreserved) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(f32_to_f16(inf), 0x7C00);
  EXPECT_EQ(f32_to_f16(-inf), 0xFC00);
  EXPECT_EQ(f32_to_bf16(-inf), 0xFF80);
  EXPECT_EQ(f32_to_f8e5m2(inf), 0x7C);
  EXPECT_TRUE(std::isnan(f8e4m3fn_to_f32(f32_to_f8e4m3fn(inf))));  // e4m3fn has no inf
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(-std::nanf("")))));
  EXPECT_TRUE(std::signbit(bf16_to_f32(f32_to_bf16(-std::nanf("")))));
}

}  // namespace
}  // namespace kiln
