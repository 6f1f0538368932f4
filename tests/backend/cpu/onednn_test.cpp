// The CPU backend's oneDNN steps beyond a plain product: matmul epilogues
// (the elementwise group after a dot computed by oneDNN post-ops), bf16
// weights computed by the f32 GEMM, and convolutions with packed weights.
// Each case checks the program's shape (which steps it made) and its values
// against the reference interpreter.
#include <gtest/gtest.h>

#include <cstdlib>
#include <random>
#include <string>

#include "kiln/backend/cpu/packed_weights.h"
#include "kiln/backend/cpu/program.h"
#include "kiln/core/element.h"
#include "kiln/frontend/trace.h"
#include "kiln/runtime/platform.h"
#include "support/compare.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_.empty())
      unsetenv(name_);
    else
      setenv(name_, old_.c_str(), 1);
  }

 private:
  const char* name_;
  std::string old_;
};

HostBuffer random_buffer(const Shape& s, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> value(-1.0, 1.0);
  HostBuffer b = HostBuffer::allocate(s);
  for (int64_t i = 0; i < s.count(); ++i)
    store_double(s.dtype(), b.mutable_data() + i * static_cast<int64_t>(size_of(s.dtype())), value(rng));
  return b;
}

struct BothRuns {
  std::shared_ptr<const backend::Program> program;
  std::vector<HostBuffer> got, expected;
  const cpu::CpuProgram& cpu() const { return dynamic_cast<const cpu::CpuProgram&>(*program); }
  // The matmul steps' epilogue lengths, and how many generated kernels the program has.
  std::vector<size_t> epilogues() const {
    std::vector<size_t> lengths;
    for (const cpu::Step& s : cpu().steps())
      if (s.kind == cpu::Step::Kind::matmul) lengths.push_back(s.matmul->shape().epilogue.size());
    return lengths;
  }
  size_t kernels() const {
    size_t n = 0;
    for (const cpu::Step& s : cpu().steps()) n += s.kind == cpu::Step::Kind::kernel;
    return n;
  }
};

// Compiles `g` on cpu with its first `weights` parameters as weights, runs
// it on random inputs, and evaluates it on the reference too.
BothRuns run_both(const ir::Graph& g, size_t weights) {
  std::vector<HostBuffer> inputs;
  for (size_t p = 0; p < g.parameters().size(); ++p)
    inputs.push_back(random_buffer(g.node(g.parameters()[p]).results[0], 17 + p));
  BothRuns r;
  r.program = Platform::cpu().backend().compile(g, weights, {});
  const auto prepared = r.program->prepare(std::span(inputs).first(weights));
  for (const Shape& s : r.program->signature().outputs) r.got.push_back(HostBuffer::allocate(s));
  r.program->run(prepared.get(), std::span(inputs).subspan(weights), r.got, {});
  const auto reference = Platform::reference().backend().compile(g, weights, {});
  const auto reference_weights = reference->prepare(std::span(inputs).first(weights));
  for (const Shape& s : reference->signature().outputs) r.expected.push_back(HostBuffer::allocate(s));
  reference->run(reference_weights.get(), std::span(inputs).subspan(weights), r.expected, {});
  return r;
}

// f32: the dot's summation order differs (K = 64 terms of at most 1);
// bf16: the epilogue rounds once where the group rounds after each op.
testing::Tolerance tolerance(DType d) {
  return d == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : testing::Tolerance{2e-2, 2e-2};
}

class Epilogue : public ::testing::TestWithParam<DType> {};

const Shape x_shape(DType d) { return Shape({{"s", 96}, {"d", 64}}, d); }
const Shape w_shape(DType d, int64_t out = 48) { return Shape({{"o", out}, {"d", 64}}, d); }

Tensor linear(const Tensor& x, const Tensor& w) { return x.dot(w, "d"); }

TEST_P(Epilogue, BiasAndResidualAddsAreOnePostOpEach) {
  const DType d = GetParam();
  const ir::Graph g = trace([](Tensor w, Tensor b, Tensor x, Tensor r) { return linear(x, w) + b + r; }, w_shape(d),
                            Shape({{"o", 48}}, d), x_shape(d), Shape({{"s", 96}, {"o", 48}}, d));
  const BothRuns r = run_both(g, 2);
  EXPECT_EQ(r.epilogues(), std::vector<size_t>{2}) << r.cpu().describe();
  EXPECT_EQ(r.kernels(), 0u) << r.cpu().describe();
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(d), "bias + residual"));
}

TEST_P(Epilogue, SwiGluIsSwishTimesTheUpProjection) {
  const DType d = GetParam();
  const ir::Graph g = trace([](Tensor gate, Tensor up, Tensor x) { return linear(x, gate).silu() * linear(x, up); },
                            w_shape(d), w_shape(d), x_shape(d));
  const BothRuns r = run_both(g, 2);
  // One of the two projections carries swish and the product with the other.
  auto lengths = r.epilogues();
  std::sort(lengths.begin(), lengths.end());
  EXPECT_EQ(lengths, (std::vector<size_t>{0, 2})) << r.cpu().describe();
  EXPECT_EQ(r.kernels(), 0u) << r.cpu().describe();
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(d), "swiglu"));
}

TEST_P(Epilogue, ActivationsThenADifference) {
  const DType d = GetParam();
  const ir::Graph g = trace(
      [](Tensor w, Tensor x, Tensor r) { return std::make_tuple(linear(x, w).tanh() - r, linear(x, w).sigmoid() * r); },
      w_shape(d), x_shape(d), Shape({{"s", 96}, {"o", 48}}, d));
  const BothRuns r = run_both(g, 1);
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(d), "tanh - r"));
  EXPECT_TRUE(testing::all_close(r.got[1], r.expected[1], tolerance(d), "logistic * r"));
}

TEST_P(Epilogue, AGroupWithMoreThanPostOpsStaysAKernel) {
  const DType d = GetParam();
  // r - y (the dot on the right) and an exp: neither is a post-op here.
  const ir::Graph g = trace([](Tensor w, Tensor x, Tensor r) { return r - linear(x, w).exp(); }, w_shape(d), x_shape(d),
                            Shape({{"s", 96}, {"o", 48}}, d));
  const BothRuns r = run_both(g, 1);
  EXPECT_EQ(r.epilogues(), std::vector<size_t>{0}) << r.cpu().describe();
  EXPECT_EQ(r.kernels(), 1u) << r.cpu().describe();
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(d), "r - exp(y)"));
}

TEST_P(Epilogue, ADotAlsoReturnedIsNotFused) {
  const DType d = GetParam();
  const ir::Graph g = trace(
      [](Tensor w, Tensor x, Tensor r) {
        const Tensor y = linear(x, w);
        return std::make_tuple(y, y + r);
      },
      w_shape(d), x_shape(d), Shape({{"s", 96}, {"o", 48}}, d));
  const BothRuns r = run_both(g, 1);
  EXPECT_EQ(r.epilogues(), std::vector<size_t>{0}) << r.cpu().describe();
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(d), "y"));
  EXPECT_TRUE(testing::all_close(r.got[1], r.expected[1], tolerance(d), "y + r"));
}

INSTANTIATE_TEST_SUITE_P(Dtypes, Epilogue, ::testing::Values(DType::f32, DType::bf16),
                         [](const auto& info) { return std::string(name(info.param)); });

// bf16 weights through the f32 GEMM (forced; by default a measurement decides).
TEST(Bf16Matmul, ComputedInF32MatchesTheReference) {
  ScopedEnv force("KILN_BF16_MATMUL", "f32");
  const ir::Graph g = trace(
      [](Tensor w, Tensor up, Tensor x, Tensor r) {
        return std::make_tuple(linear(x, w).silu() * linear(x, up), (linear(x, up) + r).convert(DType::f32));
      },
      w_shape(DType::bf16), w_shape(DType::bf16), x_shape(DType::bf16), Shape({{"s", 96}, {"o", 48}}, DType::bf16));
  const BothRuns r = run_both(g, 2);
  size_t matmuls = 0, widened = 0;
  for (const cpu::Step& s : r.cpu().steps()) {
    if (s.kind != cpu::Step::Kind::matmul) continue;
    ++matmuls;
    widened += s.matmul->shape().compute == DType::f32;
  }
  EXPECT_EQ(matmuls, 2u) << r.cpu().describe();
  EXPECT_EQ(widened, matmuls) << r.cpu().describe();
  EXPECT_EQ(r.epilogues(), (std::vector<size_t>{0, 2})) << r.cpu().describe();
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(DType::bf16), "swiglu"));
  EXPECT_TRUE(testing::all_close(r.got[1], r.expected[1], tolerance(DType::bf16), "up + r"));
}

TEST(Bf16Matmul, ForcedToBf16StaysBf16) {
  ScopedEnv force("KILN_BF16_MATMUL", "bf16");
  const ir::Graph g = trace([](Tensor w, Tensor x) { return linear(x, w); }, w_shape(DType::bf16, 256),
                            Shape({{"s", 128}, {"d", 64}}, DType::bf16));
  const BothRuns r = run_both(g, 1);
  for (const cpu::Step& s : r.cpu().steps())
    if (s.kind == cpu::Step::Kind::matmul) {
      EXPECT_EQ(s.matmul->shape().compute, DType::bf16);
    }
  EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tolerance(DType::bf16), "y"));
}

// f16 is computed in f32: a weight is widened once at prepare into oneDNN's
// packed layout, activations per call (both operands of a product of two
// activations, as attention's), and a one-row product streams the f16
// weight through the matvec kernel.
TEST(F16Matmul, WidenedToF32MatchesTheReference) {
  const Shape w = w_shape(DType::f16), activations = x_shape(DType::f16);
  const ir::Graph g = trace(
      [](Tensor w, Tensor x, Tensor y, Tensor one) {
        return std::make_tuple(linear(x, w), x.dot(y.rename({{"s", "t"}}), "d"), linear(one, w));
      },
      w, activations, activations, Shape({{"s", 1}, {"d", 64}}, DType::f16));
  const BothRuns r = run_both(g, 1);
  size_t matmuls = 0, packed = 0;
  for (const cpu::Step& s : r.cpu().steps()) {
    if (s.kind != cpu::Step::Kind::matmul) continue;
    ++matmuls;
    packed += s.packed_weight >= 0;
    EXPECT_EQ(s.matmul->shape().operand, DType::f16) << r.cpu().describe();
    EXPECT_EQ(s.matmul->shape().compute, DType::f32) << r.cpu().describe();
  }
  EXPECT_EQ(matmuls, 3u) << r.cpu().describe();
  EXPECT_EQ(packed, 1u) << r.cpu().describe();  // only the prompt-shaped weight product
  // K = 64 products of values in [-1, 1], summed in f32 and rounded once to f16.
  const testing::Tolerance f16_rounding{2e-3, 2e-3};
  for (size_t i = 0; i < 3; ++i)
    EXPECT_TRUE(testing::all_close(r.got[i], r.expected[i], f16_rounding, "output " + std::to_string(i)));
}

TEST(Bf16Matmul, AnUnknownChoiceIsAClearError) {
  ScopedEnv force("KILN_BF16_MATMUL", "fast");
  const ir::Graph g =
      trace([](Tensor w, Tensor x) { return linear(x, w); }, w_shape(DType::bf16), x_shape(DType::bf16));
  EXPECT_ERROR(Platform::cpu().backend().compile(g, 1, {}), "KILN_BF16_MATMUL is 'fast'; it takes auto, bf16 or f32");
}

// Programs that pack one read-only weight the same way (here: products of
// 96 and 32 rows) share one packed copy; another use of it (contracting its
// other axis) packs its own, and an owned buffer is never shared.
TEST(PackedWeights, ProgramsPackingOneMappedWeightAlikeShareOneCopy) {
  const HostBuffer owned = random_buffer(w_shape(DType::f32), 5);
  const HostBuffer mapped =
      HostBuffer::borrow(owned.shape(), {owned.data(), owned.shape().byte_size()}, std::make_shared<HostBuffer>(owned));
  auto run = [](const ir::Graph& g, const HostBuffer& w) {
    auto program = Platform::cpu().backend().compile(g, 1, {});
    auto prepared = program->prepare(std::span(&w, 1));
    const HostBuffer x = random_buffer(g.node(g.parameters()[1]).results[0], 9);
    std::vector<HostBuffer> got{HostBuffer::allocate(program->signature().outputs[0])};
    program->run(prepared.get(), std::span(&x, 1), got, {});
    const auto reference = Platform::reference().backend().compile(g, 1, {});
    std::vector<HostBuffer> expected{HostBuffer::allocate(reference->signature().outputs[0])};
    reference->run(reference->prepare(std::span(&w, 1)).get(), std::span(&x, 1), expected, {});
    EXPECT_TRUE(testing::all_close(got[0], expected[0], tolerance(DType::f32), "y"));
    return std::pair{program, prepared};
  };
  auto rows = [](int64_t s) {
    return trace([](Tensor w, Tensor x) { return linear(x, w); }, w_shape(DType::f32),
                 Shape({{"s", s}, {"d", 64}}, DType::f32));
  };
  const ir::Graph transposed = trace([](Tensor w, Tensor x) { return x.dot(w, "o"); }, w_shape(DType::f32),
                                     Shape({{"s", 16}, {"o", 48}}, DType::f32));
  const size_t before = cpu::packed_weight_count();
  {
    const auto a = run(rows(96), mapped);
    const auto b = run(rows(32), mapped);
    EXPECT_EQ(cpu::packed_weight_count(), before + 1);
    const auto c = run(transposed, mapped);
    EXPECT_EQ(cpu::packed_weight_count(), before + 2);
    const auto d = run(rows(96), owned);
    EXPECT_EQ(cpu::packed_weight_count(), before + 2);
  }
  EXPECT_EQ(cpu::packed_weight_count(), before);  // the copies went with the programs
}

// A grouped, strided, padded, dilated 2-D convolution on a weight: one
// oneDNN step, its weights packed at prepare.
TEST(Convolution, WeightsArePackedAtPrepare) {
  for (const DType d : {DType::f32, DType::bf16}) {
    ir::Graph g;
    const ir::Value w = g.parameter(Shape({6, 2, 3, 3}, d));
    const ir::Value x = g.parameter(Shape({2, 4, 11, 9}, d));
    g.set_outputs(
        {g.add(ir::Op::convolution, {x, w}, ir::ConvolutionAttrs{{2, 1}, {1, 0}, {1, 2}, {1, 1}, {1, 2}, 2})});
    const BothRuns r = run_both(g, 1);
    size_t packed = 0;
    for (const cpu::Step& s : r.cpu().steps()) packed += s.kind == cpu::Step::Kind::convolution && s.packed_weight >= 0;
    EXPECT_EQ(packed, 1u) << r.cpu().describe();
    // 18 products of at most 1 per element, summed in f32.
    const testing::Tolerance tol = d == DType::f32 ? testing::Tolerance{1e-5, 1e-5} : tolerance(d);
    EXPECT_TRUE(testing::all_close(r.got[0], r.expected[0], tol, std::string("convolution ") + std::string(name(d))));
  }
}

}  // namespace
}  // namespace kiln
