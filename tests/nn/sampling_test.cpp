// Sampling: frequencies over many draws follow softmax(logits / T)
// restricted by top-k / top-p, computed here from the probabilities; the
// same key gives the same draws.
#include "kiln/nn/sampling.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln::nn {
namespace {

const Platform platform = Platform::cpu();
const std::vector<double> kProbabilities = {0.1, 0.2, 0.3, 0.25, 0.15};
constexpr int64_t kDraws = 4000;

// Draws kDraws tokens at once (one row per draw, same logits) and returns
// the frequency of each token.
std::vector<double> frequencies(const SamplingOptions& options, uint32_t seed = 1) {
  const int64_t voc = static_cast<int64_t>(kProbabilities.size());
  auto exe = compile_fn(
      platform,
      [&](Tensor logits, Tensor key) {
        return sample(logits.broadcast(Shape({{"draw", kDraws}, {"voc", voc}})), key, options);
      },
      Shape({{"voc", voc}}), Shape({2}, DType::u32));
  HostBuffer logits = HostBuffer::allocate(Shape({{"voc", voc}}));
  for (size_t i = 0; i < kProbabilities.size(); ++i)
    logits.mutable_span<float>()[i] = static_cast<float>(std::log(kProbabilities[i]));
  HostBuffer key = HostBuffer::allocate(Shape({2}, DType::u32));
  key.mutable_span<uint32_t>()[0] = seed;
  const HostBuffer tokens = exe(Buffer::from(platform, logits), Buffer::from(platform, key)).to_host();
  EXPECT_EQ(tokens.dtype(), DType::i64);
  std::vector<int64_t> counts(kProbabilities.size(), 0);
  for (int64_t t : tokens.span<int64_t>()) ++counts.at(static_cast<size_t>(t));
  std::vector<double> out;
  for (int64_t c : counts) out.push_back(static_cast<double>(c) / kDraws);
  return out;
}

// Expected frequencies: p^(1/T) restricted to `kept`, renormalised.
std::vector<double> expected(double temperature, std::vector<int> kept) {
  std::vector<double> out(kProbabilities.size(), 0);
  double total = 0;
  for (int i : kept) total += out[i] = std::pow(kProbabilities[i], 1 / temperature);
  for (double& v : out) v /= total;
  return out;
}

// 4000 draws: one standard deviation is at most 0.008, so 0.035 is > 4 sigma.
void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 0.035) << "token " << i;
}

TEST(Sampling, FollowsSoftmax) { expect_near(frequencies({1.0, 0, 1.0}), expected(1.0, {0, 1, 2, 3, 4})); }

TEST(Sampling, TemperatureSharpens) { expect_near(frequencies({0.5, 0, 1.0}), expected(0.5, {0, 1, 2, 3, 4})); }

TEST(Sampling, TopKKeepsTheKMostLikely) {
  const auto f = frequencies({1.0, 2, 1.0});
  EXPECT_EQ(f[0] + f[1] + f[4], 0.0);
  expect_near(f, expected(1.0, {2, 3}));
}

TEST(Sampling, TopPKeepsTheSmallestSetReachingP) {
  // Sorted: 0.3, 0.25 (together 0.55 >= 0.5), so 0.2 and below are dropped.
  const auto f = frequencies({1.0, 0, 0.5});
  EXPECT_EQ(f[0] + f[1] + f[4], 0.0);
  expect_near(f, expected(1.0, {2, 3}));
  // 0.8 needs 0.3 + 0.25 + 0.2 + 0.15.
  expect_near(frequencies({1.0, 0, 0.8}), expected(1.0, {1, 2, 3, 4}));
}

// top-p then walks the top-k renormalized: 0.3, 0.25, 0.2 become 0.4,
// 0.33, 0.27, and the first two (0.73) reach 0.6.
TEST(Sampling, TopPWithinTopK) {
  const auto f = frequencies({1.0, 3, 0.6});
  EXPECT_EQ(f[0] + f[1] + f[4], 0.0);
  expect_near(f, expected(1.0, {2, 3}));
}

TEST(Sampling, GreedyTakesTheArgmax) {
  const auto f = frequencies({0.0, 0, 1.0});
  EXPECT_EQ(f[2], 1.0);
}

TEST(Sampling, SameKeySameDrawsOtherKeyOthers) {
  EXPECT_EQ(frequencies({1.0, 0, 1.0}, 5), frequencies({1.0, 0, 1.0}, 5));
  EXPECT_NE(frequencies({1.0, 0, 1.0}, 5), frequencies({1.0, 0, 1.0}, 6));
}

TEST(Sampling, RejectsBadTopP) {
  EXPECT_ERROR(frequencies({1.0, 0, 1.5}), "[sample] top_p must be in (0, 1], got 1.5");
}

}  // namespace
}  // namespace kiln::nn
