// compile / prepare / call: shape-checked calls, weights bound once,
// donation, typed results.
#include <gtest/gtest.h>

#include "kiln/nn/layers.h"
#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

HostBuffer values(const Shape& shape, std::vector<float> v) { return HostBuffer::from_values(shape, v); }
std::vector<float> floats(const Buffer& b) {
  HostBuffer h = b.to_host();
  return {h.span<float>().begin(), h.span<float>().end()};
}

struct Scale {
  Tensor weight;  // {d}
  std::optional<Tensor> bias;
  Tensor forward(Tensor x) const {
    Tensor y = x * weight.with_tags({"d"});
    return bias ? y + bias->with_tags({"d"}) : y;
  }
};
KILN_FIELDS(Scale, weight, bias)

io::BufferStore scale_store() {
  io::BufferStore store;
  store.add("weight", values(Shape({3}), {1, 2, 3}), "test");
  store.add("bias", values(Shape({3}), {10, 20, 30}), "test");
  return store;
}

const Shape x_shape({{"b", 2}, {"d", 3}});

TEST(Executable, CompilePrepareCall) {
  const Platform platform = Platform::cpu();
  io::BufferStore store = scale_store();
  auto exe = compile(platform, &Scale::forward, store, x_shape);
  EXPECT_EQ(exe.parameters().size(), 3u);
  EXPECT_EQ(exe.parameters()[0].name, "weight");
  EXPECT_EQ(exe.parameters()[1].name, "bias");
  EXPECT_FALSE(exe.is_prepared());
  auto run = exe.prepare(load<Scale>(platform, store));
  EXPECT_EQ(run.argument_count(), 1u);
  Buffer y = run(Buffer::from(platform, values(x_shape, {1, 1, 1, 2, 2, 2})));
  EXPECT_EQ(y.shape(), Shape({{"b", 2}, {"d", 3}}));
  EXPECT_EQ(floats(y), (std::vector<float>{11, 22, 33, 12, 24, 36}));
  // The prepared executable is reusable; an input can be made from values directly.
  EXPECT_EQ(floats(run(Buffer::from(platform, x_shape, std::vector<float>{0, 0, 0, 1, 0, 0}))),
            (std::vector<float>{10, 20, 30, 11, 20, 30}));
}

TEST(Executable, WeightsAreZeroCopyOnTheHost) {
  const Platform platform = Platform::cpu();
  io::BufferStore store = scale_store();
  Weights<Scale> w = load<Scale>(platform, store);
  ASSERT_EQ(w.buffers.size(), 2u);
  EXPECT_EQ(w.buffers[0].memory("w").data(), store.get("weight").data());
  unload(w);
  EXPECT_TRUE(w.buffers.empty());
}

TEST(Executable, CallErrors) {
  const Platform platform = Platform::cpu();
  io::BufferStore store = scale_store();
  auto exe = compile(platform, &Scale::forward, store, x_shape);
  const Buffer x = Buffer::from(platform, values(x_shape, {1, 2, 3, 4, 5, 6}));
  EXPECT_ERROR(exe(x), "[call] bind the model's 2 weights with prepare(weights) before calling");
  auto run = exe.prepare(load<Scale>(platform, store));
  EXPECT_ERROR(run(x, x), "[call] expects 1 arguments, got 2");
  EXPECT_ERROR(run(Buffer::from(platform, values(Shape({2, 4}), std::vector<float>(8)))),
               "[call] argument 0 must be {b=2,d=3} f32, got {2,4} f32");
  EXPECT_ERROR(run(Buffer()), "argument 0 is empty");
  EXPECT_ERROR(run.prepare(load<Scale>(platform, store)), "[prepare] the weights are already bound");
}

TEST(Executable, PrepareChecksWeightShapes) {
  const Platform platform = Platform::cpu();
  auto exe = compile(platform, &Scale::forward, scale_store(), x_shape);
  io::BufferStore other;
  other.add("weight", values(Shape({4}), {1, 2, 3, 4}), "other");
  other.add("bias", values(Shape({3}), {1, 2, 3}), "other");
  EXPECT_ERROR(exe.prepare(load<Scale>(platform, other)),
               "[prepare] weight 'weight' is {4} f32 but the executable was compiled for {3} f32");
  io::BufferStore no_bias;
  no_bias.add("weight", values(Shape({3}), {1, 2, 3}), "other");
  EXPECT_ERROR(exe.prepare(load<Scale>(platform, no_bias)), "compiled with 2 weights but 1 were given");
}

TEST(Executable, DonationReusesMemoryAndConsumesTheBuffer) {
  const Platform platform = Platform::cpu();
  // A cache update: write `entry` at position `pos` of `cache`.
  auto exe = compile_fn(
      platform,
      [](Tensor cache, Tensor entry, Tensor pos) {
        return cache.dynamic_update_slice({{"t", pos}}, entry);
      },
      Shape({{"t", 4}, {"d", 2}}), Shape({{"t", 1}, {"d", 2}}), Shape(DType::i32));
  Buffer cache = Buffer::from(platform, values(Shape({{"t", 4}, {"d", 2}}), std::vector<float>(8, 0)));
  const std::byte* memory = cache.memory("cache").data();
  HostBuffer pos = HostBuffer::allocate(Shape(DType::i32));
  pos.mutable_span<int32_t>()[0] = 2;
  Buffer updated = exe(donate(cache), Buffer::from(platform, values(Shape({{"t", 1}, {"d", 2}}), {7, 8})),
                       Buffer::from(platform, pos));
  EXPECT_EQ(floats(updated), (std::vector<float>{0, 0, 0, 0, 7, 8, 0, 0}));
  EXPECT_EQ(updated.memory("updated").data(), memory);  // the cache's memory was reused
  EXPECT_TRUE(cache.is_donated());
  EXPECT_ERROR(cache.to_host(), "was donated to an earlier call and can no longer be used");
  EXPECT_ERROR(exe(cache, updated, Buffer::from(platform, pos)), "argument 0 was donated");
}

TEST(Executable, DefaultConstructedIsEmptyAndAssignable) {
  const Platform platform = Platform::cpu();
  struct Holder {
    Executable<Buffer> exe;  // no std::optional needed
  } holder;
  EXPECT_ERROR(holder.exe(Buffer::from(platform, values(Shape({{"n", 1}}), {1}))),
               "[call] this executable is empty (default-constructed)");
  holder.exe = compile_fn(
      platform, [](Tensor x) { return x * 2.0; }, Shape({{"n", 1}}));
  EXPECT_EQ(floats(holder.exe(Buffer::from(platform, values(Shape({{"n", 1}}), {3})))), std::vector<float>{6});
}

template <typename T>
struct SumAndProduct {
  T sum, product;
  BOOST_DESCRIBE_CLASS(SumAndProduct, (), (sum, product), (), ())
};

TEST(Executable, StructResults) {
  const Platform platform = Platform::cpu();
  auto exe = compile_fn(
      platform,
      [](Tensor a, Tensor b) {
        return SumAndProduct<Tensor>{a + b, a * b};
      },
      Shape({2}), Shape({2}));
  SumAndProduct<Buffer> out =
      exe(Buffer::from(platform, values(Shape({2}), {2, 3})), Buffer::from(platform, values(Shape({2}), {4, 5})));
  EXPECT_EQ(floats(out.sum), (std::vector<float>{6, 8}));
  EXPECT_EQ(floats(out.product), (std::vector<float>{8, 15}));
}

TEST(Executable, TupleAndVectorResults) {
  const Platform platform = Platform::cpu();
  auto exe = compile_fn(
      platform, [](Tensor a, Tensor b) { return std::make_tuple(a + b, a * b); }, Shape({2}), Shape({2}));
  auto [sum, product] =
      exe(Buffer::from(platform, values(Shape({2}), {2, 3})), Buffer::from(platform, values(Shape({2}), {4, 5})));
  EXPECT_EQ(floats(sum), (std::vector<float>{6, 8}));
  EXPECT_EQ(floats(product), (std::vector<float>{8, 15}));
  auto many = compile_fn(
      platform,
      [](Tensor a) {
        return std::vector<Tensor>{a, -a, a * 2.0};
      },
      Shape({1}));
  std::vector<Buffer> outs = many(Buffer::from(platform, values(Shape({1}), {3})));
  ASSERT_EQ(outs.size(), 3u);
  EXPECT_EQ(floats(outs[2]), (std::vector<float>{6}));
}

// Plain described structs, arrays and any nesting come back mirrored.
struct Stats {
  Tensor mean;
  std::vector<Tensor> powers;
  std::array<Tensor, 2> extremes;
};
KILN_FIELDS(Stats, mean, powers, extremes)

TEST(Executable, AnyNestingOfResults) {
  const Platform platform = Platform::cpu();
  const Shape n({{"n", 2}});
  Buffer x = Buffer::from(platform, n, std::vector<float>{2, 4});

  auto stats = compile_fn(
      platform,
      [](Tensor a) {
        return Stats{a.mean("n"), {a, a * a, a * a * a}, {a.max("n"), a.min("n")}};
      },
      n);
  Outputs<Stats> out = stats(x);
  EXPECT_EQ(floats(out[&Stats::mean]), std::vector<float>{3});
  ASSERT_EQ(out[&Stats::powers].size(), 3u);
  EXPECT_EQ(floats(out[&Stats::powers][2]), (std::vector<float>{8, 64}));
  EXPECT_EQ(floats(out[&Stats::extremes][1]), std::vector<float>{2});

  auto mixed = compile_fn(
      platform,
      [](Tensor a) {
        return std::make_tuple(a + 1.0, std::vector<Tensor>{a * 2.0, a * 3.0}, std::array<Tensor, 1>{-a});
      },
      n);
  auto [plus, times, negated] = mixed(x);
  EXPECT_EQ(floats(plus), (std::vector<float>{3, 5}));
  ASSERT_EQ(times.size(), 2u);
  EXPECT_EQ(floats(times[1]), (std::vector<float>{6, 12}));
  EXPECT_EQ(floats(negated[0]), (std::vector<float>{-2, -4}));

  // Vectors of structs, with the vector lengths fixed by the trace.
  auto layers = compile_fn(
      platform,
      [](Tensor a) {
        return std::vector<SumAndProduct<Tensor>>{{a + a, a * a}, {a + 1.0, a * 1.0}};
      },
      n);
  std::vector<SumAndProduct<Buffer>> per_layer = layers(x);
  ASSERT_EQ(per_layer.size(), 2u);
  EXPECT_EQ(floats(per_layer[0].product), (std::vector<float>{4, 16}));
  EXPECT_EQ(floats(per_layer[1].sum), (std::vector<float>{3, 5}));
}

TEST(Executable, CompileAndLoadTakeAPrefix) {
  const Platform platform = Platform::cpu();
  io::BufferStore store;
  store.add("model.weight", values(Shape({3}), {1, 2, 3}), "test");
  store.add("model.bias", values(Shape({3}), {10, 20, 30}), "test");
  auto exe = compile(platform, &Scale::forward, store, "model", x_shape);
  auto run = exe.prepare(load<Scale>(platform, store, "model"));
  EXPECT_EQ(floats(run(Buffer::from(platform, x_shape, std::vector<float>{1, 1, 1, 0, 0, 0}))),
            (std::vector<float>{11, 22, 33, 10, 20, 30}));
  auto strict = compile(platform, &Scale::forward, store,
                        LoadOptions{.prefix = "model", .unused = UnusedWeights::error}, x_shape);
  EXPECT_EQ(strict.parameters()[0].name, "weight");
}

TEST(Executable, ATensorKeptAfterItsTraceIsAClearError) {
  Tensor kept;
  trace(
      [&](Tensor a) {
        kept = a * 2.0;
        return kept;
      },
      Shape({{"n", 2}}));
  EXPECT_ERROR(kept.shape(), "this Tensor belongs to a trace that has ended");
  // Not even a later trace, whose graph may sit at the same address, takes it.
  EXPECT_ERROR(trace([&](Tensor a) { return a + kept; }, Shape({{"n", 2}})),
               "this Tensor belongs to a trace that has ended");
}

struct Embed {
  nn::Embedding tokens;
  nn::Linear head;
  Tensor forward(Tensor ids) const { return head(tokens(ids)); }
};
KILN_FIELDS(Embed, tokens, head)

TEST(Executable, ErrorsNameTheWeightAndHintAtUntaggedArguments) {
  const Platform platform = Platform::cpu();
  io::BufferStore store;
  store.add("tokens.weight", values(Shape({4, 2}), {0, 0, 0, 0, 0, 0, 0, 0}), "test");
  store.add("head.weight", values(Shape({3, 5}), std::vector<float>(15)), "test");  // wants d=2, has 5
  const Shape ids({{"b", 1}, {"s", 2}}, DType::i32);
  EXPECT_ERROR(compile(platform, &Embed::forward, store, ids),
               "[Linear] the input's axis 'd' has 2 but the weight 'head.weight' {3,5} f32 takes 5");
  // An untagged argument: the error deep inside says which argument lacks tags.
  EXPECT_ERROR(compile_fn(
                   platform, [](Tensor x) { return x.softmax("s"); }, Shape({2, 5})),
               "[softmax] no axis tagged 's' in shape {2,5} f32\n  note: argument 0 is {2,5} f32 with untagged axes");

  io::BufferStore bf16;
  bf16.add("tokens.weight", HostBuffer::allocate(Shape({4, 2}, DType::bf16)), "test");
  bf16.add("head.weight", values(Shape({3, 2}), std::vector<float>(6)), "test");
  try {
    compile(platform, &Embed::forward, bf16, ids);
    ADD_FAILURE() << "a bf16 input and f32 weights compiled";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("[Linear] the input {b=1,s=2,d=2} bf16 and the weight 'head.weight' {3,2} f32 differ in "
                           "dtype"),
              std::string::npos)
        << message;
    EXPECT_EQ(message.find("_out"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace kiln
