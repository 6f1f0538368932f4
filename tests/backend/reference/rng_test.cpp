// Reference rng (Philox4x32-10) against the Random123 known-answer vectors
// and the plain-Python implementation in make_op_fixtures_sorting.py
// (tests/fixtures/ops/sorting.safetensors), plus statistical sanity checks
// that need no fixture.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "kiln/backend/reference/kernels.h"
#include "kiln/core/element.h"
#include "kiln/io/buffer_store.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

using ir::RngDistribution;
using Key = std::array<uint32_t, 2>;

// The rng cases share the sorting fixture file.
constexpr const char* kFixture = "ops/sorting.safetensors";

HostBuffer key_buffer(Key key) {
  HostBuffer b = HostBuffer::allocate(Shape({2}, DType::u32));
  b.mutable_span<uint32_t>()[0] = key[0];
  b.mutable_span<uint32_t>()[1] = key[1];
  return b;
}

HostBuffer run_rng(const Platform& platform, const HostBuffer& key, RngDistribution distribution, const Shape& shape) {
  ir::Graph g;
  const ir::Value k = g.parameter(key.shape());
  g.set_outputs({g.add(ir::Op::rng, {k}, ir::RngAttrs{distribution, shape})});
  ir::verify(g);
  return testing::evaluate(platform, g, {key})[0];
}
HostBuffer run_rng(const Platform& platform, Key key, RngDistribution distribution, const Shape& shape) {
  return run_rng(platform, key_buffer(key), distribution, shape);
}

std::vector<double> values_of(const HostBuffer& buffer) {
  std::vector<double> values;
  const size_t element = size_of(buffer.dtype());
  for (int64_t i = 0; i < buffer.shape().count(); ++i)
    values.push_back(load_double(buffer.dtype(), buffer.data() + static_cast<size_t>(i) * element));
  return values;
}

TEST(RefRng, PhiloxKnownAnswers) {
  const io::BufferStore& store = testing::fixture(kFixture);
  const auto counters = store.get("philox.kat.counter").span<uint32_t>();
  const auto keys = store.get("philox.kat.key").span<uint32_t>();
  const auto words = store.get("philox.kat.words").span<uint32_t>();
  const size_t rows = store.get("philox.kat.words").shape().dim(0);
  ASSERT_GE(rows, 3u);
  for (size_t r = 0; r < rows; ++r) {
    const auto got =
        reference::philox4x32_10({counters[4 * r], counters[4 * r + 1], counters[4 * r + 2], counters[4 * r + 3]},
                                 {keys[2 * r], keys[2 * r + 1]});
    for (size_t w = 0; w < 4; ++w) EXPECT_EQ(got[w], words[4 * r + w]) << "row " << r << " word " << w;
  }
  // The first published Random123 vector, independent of the fixture file.
  EXPECT_EQ(reference::philox4x32_10({0, 0, 0, 0}, {0, 0}),
            (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
}

// Raw words of elements 0..n-1, and the op's f64 uniforms built from them.
class RefRngOn : public testing::OnEveryBackend {};
KILN_ON_EVERY_BACKEND(RefRngOn);

TEST_P(RefRngOn, ElementWordsMatchFixture) {
  testing::TrackedFixture fixture(kFixture);
  int cases = 0;
  for (const std::string& prefix : fixture.case_prefixes("rng")) {
    if (!fixture.contains(prefix + "words")) continue;
    SCOPED_TRACE(prefix);
    ++cases;
    const HostBuffer& key = fixture.get(prefix + "key");
    const Key k = {key.span<uint32_t>()[0], key.span<uint32_t>()[1]};
    const HostBuffer& words = fixture.get(prefix + "words");
    const int64_t n = words.shape().dim(0);
    const auto w = words.span<uint32_t>();
    const std::vector<double> uniform =
        values_of(run_rng(platform(), key, RngDistribution::uniform, Shape({n}, DType::f64)));
    for (int64_t i = 0; i < n; ++i) {
      const auto index = static_cast<size_t>(i);
      const auto got = reference::philox4x32_10({static_cast<uint32_t>(i), 0, 0, 0}, k);
      for (size_t j = 0; j < 4; ++j) EXPECT_EQ(got[j], w[4 * index + j]) << "element " << i;
      const uint64_t bits = (static_cast<uint64_t>(w[4 * index]) << 32 | w[4 * index + 1]) >> 11;
      EXPECT_EQ(uniform[index], std::ldexp(static_cast<double>(bits), -53)) << "element " << i;
    }
  }
  EXPECT_GE(cases, 3);
}

TEST_P(RefRngOn, MatchesFixture) {
  testing::TrackedFixture fixture(kFixture);
  const std::vector<std::string> prefixes = fixture.case_prefixes("rng");
  ASSERT_EQ(static_cast<int64_t>(prefixes.size()), fixture.store().metadata<int64_t>("rng_cases"));
  int outputs = 0;
  for (const std::string& prefix : prefixes) {
    SCOPED_TRACE(prefix);
    const HostBuffer& key = fixture.get(prefix + "key");
    for (const std::string& name : fixture.names_under(prefix)) {
      const std::string what = name.substr(prefix.size());
      if (what == "key" || what == "words") continue;  // words: ElementWordsMatchFixture
      const HostBuffer& expected = fixture.get(name);
      RngDistribution distribution;
      testing::Tolerance tolerance{};  // uniforms are exact in every dtype
      if (what.rfind("uniform_", 0) == 0) {
        distribution = RngDistribution::uniform;
      } else if (what.rfind("normal_", 0) == 0) {
        distribution = RngDistribution::normal;
        tolerance = testing::default_tolerance(expected.dtype());  // libm's log/cos may differ by an ulp
      } else {
        ADD_FAILURE() << "unknown fixture tensor " << name;
        continue;
      }
      EXPECT_EQ(name.substr(name.find('_', prefix.size()) + 1), kiln::name(expected.dtype())) << name;
      ++outputs;
      const HostBuffer got = run_rng(platform(), key, distribution, Shape(expected.shape().dims(), expected.dtype()));
      EXPECT_TRUE(testing::all_close(got, expected, tolerance, name));
    }
  }
  EXPECT_GE(outputs, 10);
}

TEST_P(RefRngOn, UniformStatistics) {
  const std::vector<double> u =
      values_of(run_rng(platform(), {1234, 5678}, RngDistribution::uniform, Shape({100000}, DType::f32)));
  double sum = 0;
  for (double v : u) {
    ASSERT_GE(v, 0.0);
    ASSERT_LT(v, 1.0);
    sum += v;
  }
  EXPECT_NEAR(sum / static_cast<double>(u.size()), 0.5, 0.01);
}

// Narrow dtypes round some uniforms to 1.0; those must be clamped below 1.
TEST_P(RefRngOn, UniformStaysBelowOneInNarrowDtypes) {
  const std::array<std::pair<DType, double>, 4> cases = {{{DType::bf16, 1.0 - 0x1p-8},
                                                          {DType::f16, 1.0 - 0x1p-11},
                                                          {DType::f8e4m3fn, 1.0 - 0x1p-4},
                                                          {DType::f8e5m2, 1.0 - 0x1p-3}}};
  for (const auto& [dtype, below_one] : cases) {
    SCOPED_TRACE(std::string(name(dtype)));
    const std::vector<double> u =
        values_of(run_rng(platform(), {99, 1}, RngDistribution::uniform, Shape({100000}, dtype)));
    double largest = 0;
    for (double v : u) {
      ASSERT_GE(v, 0.0);
      ASSERT_LT(v, 1.0);
      largest = std::max(largest, v);
    }
    // 1e5 draws reach the top value (u >= 1 - 2^-12 has probability 2^-12).
    EXPECT_EQ(largest, below_one);
  }
}

TEST_P(RefRngOn, NormalStatistics) {
  const std::vector<double> z =
      values_of(run_rng(platform(), {1234, 5678}, RngDistribution::normal, Shape({100000}, DType::f32)));
  double sum = 0, sum_sq = 0;
  for (double v : z) {
    ASSERT_TRUE(std::isfinite(v));
    sum += v;
  }
  const double mean = sum / static_cast<double>(z.size());
  for (double v : z) sum_sq += (v - mean) * (v - mean);
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(sum_sq / static_cast<double>(z.size() - 1), 1.0, 0.03);
}

TEST_P(RefRngOn, KeysSelectStreams) {
  const Shape shape({1000}, DType::f32);
  const std::array<Key, 4> keys = {{{1, 2}, {2, 1}, {1, 3}, {0x80000001, 2}}};
  std::vector<std::vector<double>> streams;
  for (const Key& key : keys) streams.push_back(values_of(run_rng(platform(), key, RngDistribution::uniform, shape)));
  for (size_t a = 0; a < streams.size(); ++a) {
    for (size_t b = a + 1; b < streams.size(); ++b) {
      int equal = 0;
      for (size_t i = 0; i < streams[a].size(); ++i) equal += streams[a][i] == streams[b][i];
      EXPECT_LT(equal, 5) << "keys " << a << " and " << b;
    }
  }
}

TEST_P(RefRngOn, SameKeySameNumbers) {
  for (RngDistribution distribution : {RngDistribution::uniform, RngDistribution::normal}) {
    const HostBuffer first = run_rng(platform(), {7, 7}, distribution, Shape({3, 50}, DType::f32));
    const HostBuffer second = run_rng(platform(), {7, 7}, distribution, Shape({3, 50}, DType::f32));
    EXPECT_TRUE(testing::all_close(first, second, testing::Tolerance{}));
    // Element i depends on (key, i) only: a smaller shape is a prefix.
    const HostBuffer prefix = run_rng(platform(), {7, 7}, distribution, Shape({20}, DType::f32));
    EXPECT_TRUE(
        testing::all_close(prefix, first.reshape(Shape({150}, DType::f32)).slice(0, 0, 20), testing::Tolerance{}));
  }
}

TEST(RefRng, Errors) {
  ir::Graph g;
  const ir::Value f32_key = g.parameter(Shape({2}, DType::f32));
  const ir::Value long_key = g.parameter(Shape({3}, DType::u32));
  const ir::Value matrix_key = g.parameter(Shape({1, 2}, DType::u32));
  const ir::Value key = g.parameter(Shape({2}, DType::u32));
  const ir::RngAttrs attrs{RngDistribution::uniform, Shape({4}, DType::f32)};
  EXPECT_ERROR(g.add(ir::Op::rng, {f32_key}, attrs), "[rng]");
  EXPECT_ERROR(g.add(ir::Op::rng, {long_key}, attrs), "[rng]");
  EXPECT_ERROR(g.add(ir::Op::rng, {matrix_key}, attrs), "[rng]");
  EXPECT_ERROR(g.add(ir::Op::rng, {key}, ir::RngAttrs{RngDistribution::normal, Shape({4}, DType::i32)}), "[rng]");

  // The kernel itself never reads a key that is not two u32 words.
  ir::Node node{ir::Op::rng, {}, {Shape({4}, DType::f32)}, attrs};
  const std::vector<HostBuffer> operands = {HostBuffer::allocate(Shape({1}, DType::u32))};
  EXPECT_ERROR(reference::eval_rng(node, operands), "[rng]");
}

}  // namespace
}  // namespace kiln
