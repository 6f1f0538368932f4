// The reference (de)quantization of the GGML block types, bit-exact against
// gguf-py's (tests/fixtures/make_quant_fixtures.py wrote the blocks, their
// dequantized values and, for the types gguf-py quantizes, inputs and their
// blocks), and the IR semantics of quantized weights: a dot dequantizes,
// convert dequantizes, gather takes whole rows.
#include "kiln/core/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>

#include "kiln/frontend/model.h"
#include "kiln/runtime/compile.h"

namespace kiln {
namespace {

const std::string kDir = KILN_FIXTURES "/quant/";

std::vector<std::byte> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << path;
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

std::vector<float> read_floats(const std::string& path) {
  const auto bytes = read_bytes(path);
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), v.size() * 4);
  return v;
}

const nlohmann::json& manifest() {
  static const nlohmann::json m = nlohmann::json::parse(std::ifstream(kDir + "MANIFEST.json"));
  return m;
}

DType dtype_named(const std::string& name) {
  const auto d = dtype_from_name(name);
  EXPECT_TRUE(d.has_value()) << name;
  return *d;
}

TEST(Quant, EveryTypeHasFixtures) {
  for (DType d :
       {DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q8_0, DType::q4_k, DType::q5_k, DType::q6_k}) {
    ASSERT_TRUE(manifest()["types"].contains(std::string(name(d)))) << name(d);
    const auto& t = manifest()["types"][std::string(name(d))];
    EXPECT_EQ(t["block_elements"].get<int64_t>(), block_size(d)) << name(d);
    EXPECT_EQ(t["block_bytes"].get<size_t>(), size_of(d)) << name(d);
  }
}

TEST(Quant, DequantizationIsBitExactWithGgufPy) {
  for (const auto& [type, t] : manifest()["types"].items()) {
    const DType d = dtype_named(type);
    const auto blocks = read_bytes(kDir + type + ".blocks");
    const auto expected = read_floats(kDir + type + ".f32");
    const int64_t count = t["blocks"].get<int64_t>() * block_size(d);
    ASSERT_EQ(blocks.size(), static_cast<size_t>(t["blocks"].get<int64_t>()) * size_of(d)) << type;
    ASSERT_EQ(expected.size(), static_cast<size_t>(count)) << type;
    std::vector<float> got(static_cast<size_t>(count));
    dequantize_row(d, blocks.data(), count, got.data());
    int mismatches = 0;
    for (size_t i = 0; i < got.size(); ++i)
      if (std::memcmp(&got[i], &expected[i], 4) != 0 && ++mismatches <= 5)
        ADD_FAILURE() << type << " element " << i << " (block " << i / static_cast<size_t>(block_size(d))
                      << "): " << got[i] << " != " << expected[i];
    EXPECT_EQ(mismatches, 0) << type;
  }
}

TEST(Quant, QuantizationIsBitExactWithGgufPyWhereItQuantizes) {
  int checked = 0;
  for (const auto& [type, t] : manifest()["types"].items()) {
    if (!t["quantize"].get<bool>()) continue;
    const DType d = dtype_named(type);
    const auto input = read_floats(kDir + type + ".input.f32");
    const auto expected = read_bytes(kDir + type + ".quantized");
    ASSERT_EQ(expected.size(), input.size() / static_cast<size_t>(block_size(d)) * size_of(d)) << type;
    std::vector<std::byte> got(expected.size());
    quantize_row(d, input.data(), static_cast<int64_t>(input.size()), got.data());
    for (size_t b = 0; b < expected.size() / size_of(d); ++b)
      EXPECT_EQ(std::memcmp(got.data() + b * size_of(d), expected.data() + b * size_of(d), size_of(d)), 0)
          << type << " block " << b;
    ++checked;
  }
  EXPECT_GE(checked, 5);  // q4_0, q4_1, q5_0, q5_1, q8_0
}

// The k-quants gguf-py cannot quantize: the round trip stays within the
// step each sub-block's scale gives (plus the 6-bit and f16 rounding of the
// scales), and an all-zero block stays zero.
TEST(Quant, KQuantsRoundTripWithinTheirStep) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0, 1);
  for (auto [d, levels] : {std::pair{DType::q4_k, 15}, {DType::q5_k, 31}, {DType::q6_k, 63}}) {
    constexpr int64_t kCount = 4 * 256;
    std::vector<float> x(kCount);
    for (int64_t i = 0; i < kCount; ++i) x[static_cast<size_t>(i)] = normal(rng) * (i < 256 ? 0.0f : 0.05f);
    std::vector<std::byte> blocks(kCount / 256 * size_of(d));
    quantize_row(d, x.data(), kCount, blocks.data());
    std::vector<float> y(kCount);
    dequantize_row(d, blocks.data(), kCount, y.data());
    for (int64_t b = 0; b < kCount / 256; ++b) {
      float lo = 0, hi = 0, worst = 0;
      for (int64_t i = b * 256; i < (b + 1) * 256; ++i) {
        lo = std::min(lo, x[static_cast<size_t>(i)]);
        hi = std::max(hi, x[static_cast<size_t>(i)]);
        worst = std::max(worst, std::fabs(x[static_cast<size_t>(i)] - y[static_cast<size_t>(i)]));
      }
      const float step = (hi - lo) / static_cast<float>(levels);
      if (b == 0) {
        EXPECT_EQ(worst, 0.0f) << name(d);
      } else {
        EXPECT_LT(worst, 1.5f * step) << name(d) << " block " << b;
        EXPECT_GT(worst, 0.0f) << name(d);  // it is lossy: a copy would be a bug too
      }
    }
  }
}

TEST(Quant, BuffersRoundTripAndRefuseWhatIsNotBlocks) {
  std::vector<float> values(2 * 64);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 17) - 8.0f;
  const HostBuffer f32 = HostBuffer::from_values(Shape({2, 64}), values);
  const HostBuffer q = quantize(f32, DType::q8_0);
  EXPECT_EQ(q.shape(), Shape({2, 64}, DType::q8_0));
  EXPECT_EQ(q.shape().byte_size(), 4 * size_of(DType::q8_0));
  const HostBuffer back = dequantize(q);
  EXPECT_EQ(back.dtype(), DType::f32);
  for (size_t i = 0; i < values.size(); ++i) EXPECT_NEAR(back.span<float>()[i], values[i], 8.0 / 127) << i;
  EXPECT_THROW(quantize(HostBuffer::from_values(Shape({2, 48}), std::vector<float>(96)), DType::q8_0), Error);
  EXPECT_THROW(dequantize(f32), Error);
  EXPECT_THROW(quantize(f32, DType::f16), Error);
  std::vector<float> out(31);
  EXPECT_THROW(dequantize_row(DType::q4_0, q.data(), 31, out.data()), Error);
}

// --- quantized weights in graphs ---------------------------------------------

HostBuffer random_f32(const Shape& shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0, 1);
  std::vector<float> v(static_cast<size_t>(shape.count()));
  for (float& x : v) x = normal(rng);
  return HostBuffer::from_values(shape, v);
}

// dot(x, W) with W quantized is dot(x, dequantize(W)) in f32, on every
// backend (the reference defines it; the CPU backend's kernels must agree).
TEST(QuantizedGraph, DotDequantizesItsRhs) {
  for (const DType d : {DType::q8_0, DType::q4_0, DType::q4_k, DType::q6_k}) {
    const Shape w_shape({{"n", 24}, {"k", 256}});
    const HostBuffer w = quantize(random_f32(w_shape, 1), d);
    const HostBuffer w_f32 = dequantize(w);
    const HostBuffer x = random_f32(Shape({{"m", 3}, {"k", 256}}), 2);
    auto fn = [](Tensor a, Tensor b) { return a.dot(b, "k"); };
    const Platform platform = Platform::reference();
    auto quantized = compile_fn(platform, fn, x.shape(), w.shape());
    auto plain = compile_fn(platform, fn, x.shape(), w_f32.shape());
    const HostBuffer got = quantized(Buffer::from(platform, x), Buffer::from(platform, w)).to_host();
    const HostBuffer want = plain(Buffer::from(platform, x), Buffer::from(platform, w_f32)).to_host();
    ASSERT_EQ(got.shape(), want.shape());
    for (int64_t i = 0; i < got.shape().count(); ++i)
      EXPECT_EQ(got.span<float>()[static_cast<size_t>(i)], want.span<float>()[static_cast<size_t>(i)]) << name(d);
  }
}

TEST(QuantizedGraph, GatherTakesWholeRowsAndConvertDequantizes) {
  const HostBuffer table = quantize(random_f32(Shape({{"v", 10}, {"d", 64}}), 3), DType::q5_0);
  const HostBuffer ids = HostBuffer::from_values(Shape({{"s", 3}}, DType::i32), std::vector<int32_t>{7, 0, 7});
  const Platform platform = Platform::reference();
  auto rows = compile_fn(
      platform, [](Tensor t, Tensor i) { return t.gather("v", i).convert(DType::f32); }, table.shape(), ids.shape());
  const HostBuffer got = rows(Buffer::from(platform, table), Buffer::from(platform, ids)).to_host();
  const HostBuffer all = dequantize(table);
  ASSERT_EQ(got.shape(), Shape({{"s", 3}, {"d", 64}}));
  const int32_t picked[] = {7, 0, 7};
  for (int s = 0; s < 3; ++s)
    for (int e = 0; e < 64; ++e)
      EXPECT_EQ(got.span<float>()[static_cast<size_t>(s * 64 + e)],
                all.span<float>()[static_cast<size_t>(picked[s] * 64 + e)]);
}

TEST(QuantizedGraph, OtherUsesAreClearErrors) {
  const Shape w({{"n", 4}, {"k", 32}}, DType::q8_0);
  const Platform platform = Platform::reference();
  auto expect_error = [](const std::function<void()>& compile, const std::string& needle) {
    try {
      compile();
      ADD_FAILURE() << "no error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(
      [&] {
        compile_fn(
            platform, [](Tensor t) { return t + t; }, w);
      },
      "q8_0");
  expect_error(
      [&] {
        compile_fn(
            platform,
            [](Tensor t) {
              return t.transpose({"k", "n"});
            },
            w);
      },
      "q8_0");
  // Contracting over the axis the blocks do not run along.
  expect_error(
      [&] {
        compile_fn(
            platform, [](Tensor x, Tensor t) { return x.dot(t, "n"); }, Shape({{"n", 4}}), w);
      },
      "innermost");
  // A quantized lhs.
  expect_error(
      [&] {
        compile_fn(
            platform, [](Tensor t, Tensor x) { return t.dot(x, "k"); }, w, Shape({{"k", 32}}));
      },
      "q8_0");
}

}  // namespace
}  // namespace kiln
