// Random graphs on the optimizing CPU backend against the reference
// interpreter (as ggml's test-backend-ops does for its backends): seeded
// chains of elementwise ops with broadcasts, reductions (alone and in the
// norm/softmax shape the fuser turns into row kernels), dots, transposes,
// reshapes, slices, pads, concatenations, reversals, iota, converts, dynamic
// slices and slice updates over random shapes, dtypes and tags. A failure
// prints the seed and the graph. Graphs of one seed block are compiled
// together (one compile per block).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "kiln/backend/cpu/program.h"
#include "kiln/core/element.h"
#include "kiln/frontend/trace.h"
#include "support/compare.h"
#include "support/graph_batch.h"

namespace kiln {
namespace {

using ir::Op;
using ir::Value;

constexpr int kBlocks = 16;           // compiles
constexpr int kGraphsPerBlock = 125;  // graphs per compile

class Generator {
 public:
  explicit Generator(uint64_t seed) : rng_(seed) {}

  // A graph and its inputs; every value stays small and finite so that the
  // two backends can be compared with tight tolerances.
  std::pair<ir::Graph, std::vector<HostBuffer>> make() {
    g_ = ir::Graph();
    inputs_.clear();
    pool_.clear();
    dtype_ = pick<DType>({DType::f32, DType::f32, DType::bf16, DType::f64});
    const int parameters = uniform(1, 3);
    for (int i = 0; i < parameters; ++i) pool_.push_back(parameter(random_shape()));
    const int steps = uniform(2, 9);
    for (int i = 0; i < steps; ++i) step();
    std::vector<Value> outputs = {pool_.back()};
    if (pool_.size() > 2 && coin()) outputs.push_back(pool_[static_cast<size_t>(uniform(0, int(pool_.size()) - 2))]);
    g_.set_outputs(outputs);
    ir::verify(g_);
    return {g_, inputs_};
  }

 private:
  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return uniform(0, 1) == 1; }
  template <typename T>
  T pick(std::initializer_list<T> items) {
    return *(items.begin() + uniform(0, static_cast<int>(items.size()) - 1));
  }
  Value any() { return pool_[static_cast<size_t>(uniform(0, static_cast<int>(pool_.size()) - 1))]; }
  const Shape& shape(Value v) const { return g_.shape(v); }

  Shape random_shape() {
    const int rank = uniform(1, 4);
    std::vector<TaggedDim> dims;
    static const char* tags[] = {"a", "b", "c", "d"};
    for (int i = 0; i < rank; ++i) dims.push_back({coin() ? Tag(tags[i]) : Tag(), uniform(1, 7) + (coin() ? 0 : 9)});
    return Shape(dims, dtype_);
  }

  Value parameter(const Shape& s) {
    HostBuffer b = HostBuffer::allocate(s);
    std::uniform_real_distribution<double> value(-2.0, 2.0);
    for (int64_t i = 0; i < s.count(); ++i)
      store_double(s.dtype(), b.mutable_data() + i * static_cast<int64_t>(size_of(s.dtype())), value(rng_));
    inputs_.push_back(b);
    return g_.parameter(s);
  }
  Value scalar_i32(int32_t v) {
    HostBuffer b = HostBuffer::allocate(Shape(DType::i32));
    b.mutable_span<int32_t>()[0] = v;
    inputs_.push_back(b);
    return g_.parameter(b.shape());
  }
  Value constant(double v, DType d) {
    HostBuffer b = HostBuffer::allocate(Shape(d));
    store_double(d, b.mutable_data(), v);
    return g_.add(Op::constant, {}, ir::ConstantAttrs{b});
  }
  Value bounded(Value v) { return g_.add(Op::tanh, {v}); }  // keeps chains from growing

  // `v` broadcast to `target`'s dims (v's dims must be a subsequence).
  Value broadcast_to(Value v, const Shape& target, const ir::Axes& dims) {
    return g_.add(Op::broadcast_in_dim, {v}, ir::BroadcastAttrs{target.with_dtype(shape(v).dtype()), dims});
  }
  // A second operand with x's dims: a pool value of those dims, a broadcast
  // of a reduced copy, a scalar constant or a fresh parameter.
  Value partner(Value x) {
    const Shape s = shape(x);  // a copy: adding nodes moves the graph's storage
    std::vector<Value> same;
    for (Value v : pool_)
      if (std::ranges::equal(shape(v).dims(), s.dims()) && shape(v).dtype() == s.dtype()) same.push_back(v);
    switch (uniform(0, 3)) {
      case 0:
        if (!same.empty()) return same[static_cast<size_t>(uniform(0, static_cast<int>(same.size()) - 1))];
        [[fallthrough]];
      case 1: {  // a lower-rank parameter broadcast along some axes
        ir::Axes kept;
        std::vector<int64_t> dims;
        for (int i = 0; i < s.rank(); ++i)
          if (coin()) kept.push_back(i), dims.push_back(s.dim(i));
        return broadcast_to(parameter(Shape(dims, s.dtype())), s, kept);
      }
      case 2:
        return broadcast_to(constant(uniform(-3, 3) * 0.5, s.dtype()), s, {});
      default:
        return parameter(Shape(s.dims(), s.dtype()));
    }
  }

  ir::Axes random_axes(int rank, bool nonempty) {
    ir::Axes axes;
    for (int i = 0; i < rank; ++i)
      if (coin()) axes.push_back(i);
    if (axes.empty() && nonempty) axes.push_back(uniform(0, rank - 1));
    return axes;
  }
  ir::Axes kept_axes(int rank, const ir::Axes& reduced) {
    ir::Axes kept;
    for (int i = 0; i < rank; ++i)
      if (std::find(reduced.begin(), reduced.end(), i) == reduced.end()) kept.push_back(i);
    return kept;
  }

  void step() {
    Value x = any();
    while (shape(x).rank() == 0) x = any();  // the parameters have rank >= 1
    const Shape s = shape(x);                // a copy: adding nodes moves the graph's storage
    Value y;
    switch (uniform(0, 16)) {
      case 0:
      case 1: {
        const Op op = pick<Op>({Op::neg, Op::abs, Op::tanh, Op::logistic, Op::sin, Op::exp, Op::floor, Op::sign});
        y = g_.add(op, {op == Op::exp ? bounded(x) : x});
        break;
      }
      case 2:
      case 3: {
        const Op op = pick<Op>({Op::add, Op::sub, Op::mul, Op::max, Op::min});
        y = g_.add(op, {x, partner(x)});
        break;
      }
      case 4: {  // x / (|p| + 1) and sqrt(|x|): no division by zero, no NaN
        const Value p = g_.add(Op::add, {g_.add(Op::abs, {partner(x)}), broadcast_to(constant(1, s.dtype()), s, {})});
        y = coin() ? g_.add(Op::div, {x, p}) : g_.add(Op::sqrt, {g_.add(Op::abs, {x})});
        break;
      }
      case 5: {  // a reduction
        const auto kind = pick<ir::ReduceKind>({ir::ReduceKind::sum, ir::ReduceKind::max, ir::ReduceKind::min});
        y = g_.add(Op::reduce, {x}, ir::ReduceAttrs{kind, random_axes(s.rank(), false)});
        break;
      }
      case 6: {  // softmax over trailing or random axes (a row kernel)
        const ir::Axes axes = coin() ? ir::Axes{s.rank() - 1} : random_axes(s.rank(), true);
        const ir::Axes kept = kept_axes(s.rank(), axes);
        const Value m = g_.add(Op::reduce, {x}, ir::ReduceAttrs{ir::ReduceKind::max, axes});
        const Value e = g_.add(Op::exp, {g_.add(Op::sub, {x, broadcast_to(m, s, kept)})});
        const Value sum = g_.add(Op::reduce, {e}, ir::ReduceAttrs{ir::ReduceKind::sum, axes});
        y = g_.add(Op::div, {e, broadcast_to(sum, s, kept)});
        break;
      }
      case 7: {  // RMSNorm-like: x * rsqrt(mean(x^2) + eps) * w
        const ir::Axes axes = {s.rank() - 1};
        const ir::Axes kept = kept_axes(s.rank(), axes);
        const Value ss = g_.add(Op::reduce, {g_.add(Op::mul, {x, x})}, ir::ReduceAttrs{ir::ReduceKind::sum, axes});
        const Value r =
            g_.add(Op::rsqrt, {g_.add(Op::add, {ss, broadcast_to(constant(1e-3, s.dtype()), shape(ss), {})})});
        y = g_.add(Op::mul, {g_.add(Op::mul, {x, broadcast_to(r, s, kept)}), partner(x)});
        break;
      }
      case 8: {  // transpose
        ir::Axes perm(static_cast<size_t>(s.rank()));
        std::iota(perm.begin(), perm.end(), 0);
        std::shuffle(perm.begin(), perm.end(), rng_);
        y = g_.add(Op::transpose, {x}, ir::TransposeAttrs{perm});
        break;
      }
      case 9: {  // reshape: merge two adjacent axes, or split one
        std::vector<int64_t> dims(s.dims().begin(), s.dims().end());
        if (dims.size() >= 2 && coin()) {
          const size_t i = static_cast<size_t>(uniform(0, static_cast<int>(dims.size()) - 2));
          dims[i] *= dims[i + 1];
          dims.erase(dims.begin() + static_cast<std::ptrdiff_t>(i) + 1);
        } else if (dims.size() < 4) {
          const size_t i = static_cast<size_t>(uniform(0, static_cast<int>(dims.size()) - 1));
          for (int64_t f : {2, 3})
            if (dims[i] % f == 0 && dims[i] > f) {
              dims[i] /= f;
              dims.insert(dims.begin() + static_cast<std::ptrdiff_t>(i), f);
              break;
            }
        }
        y = g_.add(Op::reshape, {x}, ir::ReshapeAttrs{Shape(dims, s.dtype())});
        break;
      }
      case 10: {  // slice
        ir::Axes start, limit, stride;
        for (int i = 0; i < s.rank(); ++i) {
          const int d = static_cast<int>(s.dim(i));
          const int a = uniform(0, d - 1), b = uniform(a + 1, d);
          start.push_back(a), limit.push_back(b), stride.push_back(uniform(1, 2));
        }
        y = g_.add(Op::slice, {x}, ir::SliceAttrs{start, limit, stride});
        break;
      }
      case 11: {  // pad (negative low/high crop) or reverse
        if (coin()) {
          ir::Axes lo, hi, interior;
          for (int i = 0; i < s.rank(); ++i) {
            lo.push_back(uniform(s.dim(i) > 1 ? -1 : 0, 2)), hi.push_back(uniform(0, 2)),
                interior.push_back(uniform(0, 1));
          }
          y = g_.add(Op::pad, {x, constant(0.25, s.dtype())}, ir::PadAttrs{lo, hi, interior});
        } else {
          y = g_.add(Op::reverse, {x}, ir::ReverseAttrs{random_axes(s.rank(), true)});
        }
        break;
      }
      case 12: {  // concatenate with a partner along a random axis
        y = g_.add(Op::concatenate, {x, partner(x)}, ir::ConcatenateAttrs{uniform(0, s.rank() - 1)});
        break;
      }
      case 13: {  // dot over the last axis with a fresh weight, or a batched dot with a partner
        const int64_t k = s.dim(-1);
        if (coin() || s.rank() < 2) {
          const Value w = parameter(Shape({uniform(1, 9), k}, s.dtype()));
          y = g_.add(Op::dot_general, {x, w}, ir::DotAttrs{{}, {}, {s.rank() - 1}, {1}, dot_result()});
        } else {
          const Value p = partner(x);
          y = g_.add(Op::dot_general, {x, p}, ir::DotAttrs{{0}, {0}, {s.rank() - 1}, {s.rank() - 1}, dot_result()});
        }
        if (shape(y).dtype() != s.dtype()) y = g_.add(Op::convert, {y}, ir::ConvertAttrs{s.dtype()});
        break;
      }
      case 14: {  // iota along an axis, or a round trip through another dtype
        if (coin()) {
          const Value i = g_.add(Op::iota, {}, ir::IotaAttrs{Shape(s.dims(), s.dtype()), uniform(0, s.rank() - 1)});
          y = g_.add(Op::add, {x, g_.add(Op::mul, {i, broadcast_to(constant(0.125, s.dtype()), s, {})})});
        } else {
          const DType other = pick<DType>({DType::f32, DType::bf16, DType::f16, DType::i32});
          const Value scaled = g_.add(Op::mul, {x, broadcast_to(constant(4, s.dtype()), s, {})});
          y = g_.add(Op::convert, {g_.add(Op::convert, {scaled}, ir::ConvertAttrs{other})},
                     ir::ConvertAttrs{s.dtype()});
        }
        break;
      }
      case 15: {  // select on a comparison
        const Value p = partner(x);
        const Value c = g_.add(Op::compare, {x, p},
                               ir::CompareAttrs{pick<ir::Comparison>({ir::Comparison::lt, ir::Comparison::ge})});
        y = g_.add(Op::select, {c, x, p});
        break;
      }
      default: {  // dynamic slice, or an update of a slice of x at run-time starts
        std::vector<Value> operands = {x};
        ir::Axes sizes;
        std::vector<int64_t> dims;
        for (int i = 0; i < s.rank(); ++i) {
          sizes.push_back(uniform(1, static_cast<int>(s.dim(i))));
          dims.push_back(sizes.back());
        }
        std::vector<Value> starts;
        for (int i = 0; i < s.rank(); ++i) starts.push_back(scalar_i32(uniform(-2, static_cast<int>(s.dim(i)) + 2)));
        if (coin()) {
          operands.insert(operands.end(), starts.begin(), starts.end());
          y = g_.add(Op::dynamic_slice, operands, ir::DynamicSliceAttrs{sizes});
        } else {
          operands.push_back(parameter(Shape(dims, s.dtype())));
          operands.insert(operands.end(), starts.begin(), starts.end());
          y = g_.add(Op::dynamic_update_slice, operands);
        }
        break;
      }
    }
    if (shape(y).count() > 4096) y = g_.add(Op::reduce, {y}, ir::ReduceAttrs{ir::ReduceKind::max, {0}});
    pool_.push_back(y);
  }

  DType dot_result() { return dtype_ == DType::bf16 && coin() ? DType::f32 : dtype_; }

  std::mt19937_64 rng_;
  ir::Graph g_;
  std::vector<HostBuffer> inputs_;
  std::vector<Value> pool_;
  DType dtype_ = DType::f32;
};

// Tolerances between two implementations of the same graph: f32 dots
// accumulate in f32 on cpu, transcendental functions differ in the last
// bits, and a bf16 value may round the other way after that.
testing::Tolerance tolerance(DType d) {
  switch (d) {
    case DType::f64:
      return {1e-9, 1e-9};
    case DType::f32:
      return {2e-4, 2e-4};
    case DType::bf16:
    case DType::f16:
      return {4e-2, 4e-2};
    default:
      return {0, 0};
  }
}

TEST(RandomGraphs, CpuMatchesReference) {
  const Platform cpu = Platform::cpu(), reference = Platform::reference();
  int graphs = 0;
  for (int block = 0; block < kBlocks; ++block) {
    testing::GraphBatch batch;
    for (int i = 0; i < kGraphsPerBlock; ++i) {
      const uint64_t seed = static_cast<uint64_t>(block) * 100000 + static_cast<uint64_t>(i);
      Generator generator(seed);
      auto [graph, inputs] = generator.make();
      const std::vector<HostBuffer> expected = testing::evaluate(reference, graph, inputs);
      const std::string text = ir::print(graph);
      batch.add(graph, inputs, [=](const std::vector<HostBuffer>& got) {
        ASSERT_EQ(got.size(), expected.size());
        for (size_t o = 0; o < got.size(); ++o) {
          const auto close =
              testing::all_close(got[o], expected[o], tolerance(expected[o].dtype()), "output " + std::to_string(o));
          EXPECT_TRUE(close) << "seed " << seed << ", graph:\n" << text;
        }
      });
      ++graphs;
    }
    batch.run(cpu);
    if (HasFailure()) break;  // one block's failures are enough to read
  }
  EXPECT_EQ(graphs, kBlocks * kGraphsPerBlock);
}

// Donation: a cache updated in place by a slice update, the result written
// straight into the donated argument, equal to the reference's fresh result.
TEST(RandomGraphs, DonatedSliceUpdatesMatchReference) {
  const Platform cpu = Platform::cpu(), reference = Platform::reference();
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 40; ++trial) {
    const int64_t rows = 3 + trial % 5, cols = 1 + trial % 4, n = 1 + trial % 3;
    ir::Graph g;
    const Value cache = g.parameter(Shape({{"t", rows}, {"d", cols}}));
    const Value update = g.parameter(Shape({{"t", n}, {"d", cols}}));
    const Value pos = g.parameter(Shape(DType::i32));
    const Value zero = g.add(Op::constant, {}, ir::ConstantAttrs{HostBuffer::allocate(Shape(DType::i32))});
    const Value updated = g.add(Op::dynamic_update_slice, {cache, g.add(Op::exp, {update}), pos, zero});
    // Read the updated cache afterwards too (as attention reads the KV cache).
    const Value total = g.add(Op::reduce, {updated}, ir::ReduceAttrs{ir::ReduceKind::sum, {0}});
    g.set_outputs({updated, total});
    std::uniform_real_distribution<float> value(-1, 1);
    auto random = [&](const Shape& s) {
      HostBuffer b = HostBuffer::allocate(s);
      for (float& f : b.mutable_span<float>()) f = value(rng);
      return b;
    };
    HostBuffer c = random(g.shape(cache)), u = random(g.shape(update)), p = HostBuffer::allocate(Shape(DType::i32));
    p.mutable_span<int32_t>()[0] = static_cast<int32_t>(trial % (rows + 2)) - 1;
    const auto expected = testing::evaluate(reference, g, {c, u, p});

    const auto program = cpu.backend().compile(g, 0, {});
    ASSERT_EQ(program->signature().output_alias[0], 0) << "the updated cache must alias the cache parameter";
    std::vector<HostBuffer> args = {c.copy(), u, p};
    std::vector<HostBuffer> outputs = {args[0], HostBuffer::allocate(program->signature().outputs[1])};
    program->run(nullptr, args, outputs, {});
    EXPECT_EQ(outputs[0].data(), args[0].data());
    EXPECT_TRUE(testing::all_close(outputs[0], expected[0], tolerance(DType::f32), "donated cache"));
    EXPECT_TRUE(testing::all_close(outputs[1], expected[1], tolerance(DType::f32), "sum of the updated cache"));
    // Without donation the argument is left as it was.
    const HostBuffer before = c.copy();
    std::vector<HostBuffer> fresh = {HostBuffer::allocate(program->signature().outputs[0]),
                                     HostBuffer::allocate(program->signature().outputs[1])};
    program->run(nullptr, std::vector<HostBuffer>{c, u, p}, fresh, {});
    EXPECT_TRUE(testing::all_close(fresh[0], expected[0], tolerance(DType::f32), "fresh output"));
    EXPECT_TRUE(testing::all_close(c, before, {0, 0}, "undonated argument"));
  }
}

// The stacked KV cache as the LLaMA model threads it through its layers:
// per layer a slice of the cache, a row update, and the layer written back.
// On cpu the updates merge into one in-place row update per layer on the
// donated cache: no copy of the cache in the arena, values equal to the
// reference's.
TEST(RandomGraphs, StackedCacheUpdatesRowsInPlace) {
  const int64_t layers = 3, t = 64, d = 8;
  const Shape cache_shape({{"layer", layers}, {"t", t}, {"d", d}});
  const ir::Graph g = trace(
      [&](Tensor cache, Tensor rows, Tensor pos, Tensor probe) {
        Tensor total = scalar(0.0, DType::f32);
        for (int64_t l = 0; l < layers; ++l) {
          const Tensor layer = cache.slice("layer", l, l + 1).squeeze("layer");
          const Tensor updated = layer.dynamic_update_slice({{"t", pos}}, rows * static_cast<double>(l + 1));
          // Read after the update through a dot, as attention reads it (a fused
          // elementwise read could be delayed to the end by the fuser).
          total = total + updated.dot(probe, "d").sum("t");
          cache = cache.dynamic_update_slice({{"layer", scalar(static_cast<double>(l), DType::i32)}},
                                             updated.insert_axis(0, "layer"));
        }
        return std::make_tuple(cache, total);
      },
      cache_shape, Shape({{"t", 2}, {"d", d}}), Shape(DType::i32), Shape({{"d", d}}));
  HostBuffer cache = HostBuffer::allocate(cache_shape), rows = HostBuffer::allocate(Shape({{"t", 2}, {"d", d}}));
  for (size_t i = 0; i < cache.mutable_span<float>().size(); ++i) cache.mutable_span<float>()[i] = 0.01f * (i % 97);
  for (size_t i = 0; i < rows.mutable_span<float>().size(); ++i) rows.mutable_span<float>()[i] = 1.0f + i;
  HostBuffer pos = HostBuffer::allocate(Shape(DType::i32));
  pos.mutable_span<int32_t>()[0] = 5;
  HostBuffer probe = HostBuffer::allocate(Shape({{"d", d}}));
  for (size_t i = 0; i < probe.mutable_span<float>().size(); ++i) probe.mutable_span<float>()[i] = 0.5f - 0.1f * i;
  const auto expected = testing::evaluate(Platform::reference(), g, {cache, rows, pos, probe});

  const auto program = Platform::cpu().backend().compile(g, 0, {});
  ASSERT_EQ(program->signature().output_alias[0], 0);
  const auto* cpu = dynamic_cast<const cpu::CpuProgram*>(program.get());
  ASSERT_NE(cpu, nullptr);
  EXPECT_LT(cpu->arena_bytes(), cache_shape.byte_size()) << cpu->describe();
  std::vector<HostBuffer> args = {cache.copy(), rows, pos, probe};
  std::vector<HostBuffer> outputs = {args[0], HostBuffer::allocate(program->signature().outputs[1])};
  program->run(nullptr, args, outputs, {});
  EXPECT_TRUE(testing::all_close(outputs[0], expected[0], testing::Tolerance{0, 0}, "cache"));
  EXPECT_TRUE(testing::all_close(outputs[1], expected[1], tolerance(DType::f32), "sums read after each update"));
}

}  // namespace
}  // namespace kiln
