// Host callbacks inside compiled graphs.
#include "kiln/frontend/callback.h"

#include <gtest/gtest.h>

#include <cmath>

#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

const Platform platform = Platform::cpu();

Buffer floats(std::vector<float> v) {
  HostBuffer b = HostBuffer::allocate(Shape({{"n", static_cast<int64_t>(v.size())}}));
  std::copy(v.begin(), v.end(), b.mutable_span<float>().begin());
  return Buffer::from(platform, b);
}
std::vector<float> values(const Buffer& b) {
  HostBuffer h = b.to_host();
  return {h.span<float>().begin(), h.span<float>().end()};
}

// A function kiln has no op for: x -> x^3 + offset, where offset is state.
struct CubePlus {
  static constexpr std::string_view name = "CubePlus";
  float offset = 0;
  void call(std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs) {
    auto x = inputs[0].span<float>();
    auto y = outputs[0].mutable_span<float>();
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * x[i] * x[i] + offset;
  }
};

auto compile_cube() {
  return compile_fn(
      platform, [](Tensor x) { return callback<CubePlus>({x * 2.0}, {x.shape()})[0] + 1.0; }, Shape({{"n", 3}}));
}

TEST(Callback, ComputesInsideTheGraph) {
  auto exe = compile_cube();
  CubePlus cube;
  exe.bind(&cube);
  // (2x)^3 + 0 + 1
  EXPECT_EQ(values(exe(floats({1, -2, 0.5f}))), (std::vector<float>{9, -63, 2}));
}

// Counts its calls; the output is the call number.
struct Counter {
  static constexpr std::string_view name = "Counter";
  static CallbackConfig config() { return {.has_side_effect = true}; }
  int calls = 0;
  void call(std::span<const HostBuffer>, std::span<HostBuffer> outputs) {
    outputs[0].mutable_span<int32_t>()[0] = ++calls;
  }
};

TEST(Callback, StateCarriesAcrossCalls) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return callback<Counter>({x}, {Shape(DType::i32)})[0]; }, Shape({1}));
  Counter counter;
  exe.bind(&counter);
  for (int expected = 1; expected <= 4; ++expected)
    EXPECT_EQ(exe(floats({0})).to_host().to_vector<int32_t>()[0], expected);
  EXPECT_EQ(counter.calls, 4);
}

TEST(Callback, EachExecutableHasItsOwnState) {
  auto a = compile_fn(
      platform, [](Tensor x) { return callback<Counter>({x}, {Shape(DType::i32)})[0]; }, Shape({1}));
  auto b = a;  // same program, separate bindings
  Counter first, second;
  a.bind(&first);
  b.bind(&second);
  a(floats({0}));
  a(floats({0}));
  b(floats({0}));
  EXPECT_EQ(first.calls, 2);
  EXPECT_EQ(second.calls, 1);
}

// A model whose forward calls back into the host.
struct CubeModel {
  Tensor scale;  // {n}
  Tensor forward(Tensor x) const { return callback<CubePlus>({x * scale.with_tags({"n"})}, {x.shape()})[0]; }
};
KILN_FIELDS(CubeModel, scale)

TEST(Callback, BindingsMadeBeforePrepareCarryOver) {
  io::BufferStore store;
  store.add("scale", HostBuffer::from_values(Shape({3}), std::vector<float>{1, 2, 3}), "test");
  auto exe = compile(platform, &CubeModel::forward, store, Shape({{"n", 3}}));
  CubePlus cube{.offset = 10};
  exe.bind(&cube);
  auto run = exe.prepare(load<CubeModel>(platform, store));
  EXPECT_EQ(values(run(floats({1, 1, 1}))), (std::vector<float>{11, 18, 37}));
  // Each executable keeps its own bindings: rebinding the prepared one
  // leaves the unprepared one as it was.
  CubePlus other{.offset = 100};
  run.bind(&other);
  EXPECT_EQ(values(run(floats({1, 1, 1}))), (std::vector<float>{101, 108, 127}));
  EXPECT_EQ(values(exe.prepare(load<CubeModel>(platform, store))(floats({1, 1, 1}))), (std::vector<float>{11, 18, 37}));
}

TEST(Callback, MissingBindNamesTheCallback) {
  auto exe = compile_cube();
  EXPECT_ERROR(exe(floats({1, 2, 3})), "[callback] 'CubePlus' has no bound state: call exe.bind<CubePlus>(&state)");
}

TEST(Callback, SameTypeTwiceWithNamedStates) {
  auto exe = compile_fn(
      platform,
      [](Tensor x) {
        Tensor a = callback<Counter>({x}, {Shape(DType::i32)}, "left")[0];
        Tensor b = callback<Counter>({x}, {Shape(DType::i32)}, "right")[0];
        return std::make_tuple(a, b);
      },
      Shape({1}));
  Counter left, right;
  right.calls = 100;
  EXPECT_ERROR(exe(floats({0})), "[callback] 'left' has no bound state: call exe.bind<Counter>(&state, \"left\")");
  exe.bind(&left, "left").bind(&right, "right");
  auto [a, b] = exe(floats({0}));
  EXPECT_EQ(a.to_host().to_vector<int32_t>()[0], 1);
  EXPECT_EQ(b.to_host().to_vector<int32_t>()[0], 101);
}

TEST(Callback, StateOfTheWrongTypeIsRefused) {
  auto exe = compile_cube();
  Counter counter;
  exe.bind(&counter, "CubePlus");
  EXPECT_ERROR(exe(floats({1, 2, 3})), "[callback] 'CubePlus' is bound to a state of another type");
}

// No `name` member: known by its demangled C++ type name.
struct Unnamed {
  void call(std::span<const HostBuffer>, std::span<HostBuffer>) {}
};

TEST(Callback, TypesWithoutANameUseTheirCppName) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return callback<Unnamed>({x}, {x.shape()})[0]; }, Shape({{"n", 1}}));
  EXPECT_ERROR(exe(floats({1})),
               "[callback] 'kiln::(anonymous namespace)::Unnamed' has no bound state: call "
               "exe.bind<Unnamed>(&state)");
}

struct Thrower {
  static constexpr std::string_view name = "Thrower";
  bool fail = true;
  void call(std::span<const HostBuffer> inputs, std::span<HostBuffer> outputs) {
    if (fail) throw std::runtime_error("the library said no");
    outputs[0] = inputs[0].copy();
  }
};

TEST(Callback, ExceptionsSurfaceAndTheExecutableStaysUsable) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return callback<Thrower>({x}, {x.shape()})[0]; }, Shape({{"n", 2}}));
  Thrower thrower;
  exe.bind(&thrower);
  EXPECT_ERROR(exe(floats({1, 2})), "[callback] 'Thrower' threw: the library said no");
  thrower.fail = false;
  EXPECT_EQ(values(exe(floats({3, 4}))), (std::vector<float>{3, 4}));
}

TEST(Callback, SideEffectsRunEvenWhenTheResultIsUnused) {
  auto exe = compile_fn(
      platform,
      [](Tensor x) {
        callback<Counter>({x}, {Shape(DType::i32)});  // result dropped
        return x * 2.0;
      },
      Shape({{"n", 1}}));
  Counter counter;
  exe.bind(&counter);
  EXPECT_EQ(values(exe(floats({5}))), (std::vector<float>{10}));
  exe(floats({5}));
  EXPECT_EQ(counter.calls, 2);
}

TEST(Callback, PureCallbacksWithUnusedResultsAreRemoved) {
  // CubePlus declares no side effect: nothing uses it, so it is compiled away
  // and needs no bound state.
  auto exe = compile_fn(
      platform,
      [](Tensor x) {
        callback<CubePlus>({x}, {x.shape()});
        return x + 1.0;
      },
      Shape({{"n", 1}}));
  EXPECT_EQ(values(exe(floats({1}))), (std::vector<float>{2}));
}

struct Increment {
  static CallbackConfig config() { return {.aliases = {0}}; }
  void call(std::span<const HostBuffer>, std::span<HostBuffer> outputs) {
    for (float& v : outputs[0].mutable_span<float>()) v += 1;  // in place on the copy of input 0
  }
};

TEST(Callback, AliasesStartFromTheInput) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return callback<Increment>({x}, {x.shape()})[0]; }, Shape({{"n", 2}}));
  Increment inc;
  exe.bind(&inc);
  EXPECT_EQ(values(exe(floats({1, 2}))), (std::vector<float>{2, 3}));
}

TEST(Callback, PrintShowsLabelShapeAndValuesAndKeepsTheResult) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return (x * 3.0).print("tripled") + 1.0; }, Shape({{"n", 3}}));
  ::testing::internal::CaptureStdout();
  Buffer y = exe(floats({1, 2, 3}));
  const std::string printed = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(printed, "tripled: {n=3} f32 [3, 6, 9]\n");
  EXPECT_EQ(values(y), (std::vector<float>{4, 7, 10}));
}

TEST(Callback, PrintSummarisesLargeTensors) {
  auto exe = compile_fn(
      platform, [](Tensor x) { return x.print("big"); }, Shape({{"n", 20}}));
  ::testing::internal::CaptureStdout();
  exe(floats(std::vector<float>(20, 0.5f)));
  EXPECT_EQ(::testing::internal::GetCapturedStdout(),
            "big: {n=20} f32 [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, ... (20 values)]\n");
}

TEST(Callback, OutsideATraceIsAnError) {
  EXPECT_ERROR((callback<Counter>({}, {Shape(DType::i32)})), "[callback] 'Counter' can only be added inside");
}

}  // namespace
}  // namespace kiln
