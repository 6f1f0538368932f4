// ir::parse reads back ir::print's text: the same graph (same canonical
// hash, same printed text), callbacks that bind by name, and a clear error
// with line and column for every kind of text print() cannot have written.
#include <gtest/gtest.h>

#include "kiln/core/element.h"
#include "kiln/frontend/callback.h"
#include "kiln/frontend/trace.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/hash.h"
#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

std::string full(const ir::Graph& g) { return ir::print(g, {.full_constants = true}); }

struct Doubler {
  static constexpr std::string_view name = "Doubler";
  static CallbackConfig config() { return {.has_side_effect = true, .aliases = {0}}; }
  int calls = 0;
  void call(std::span<const HostBuffer>, std::span<HostBuffer> outputs) {
    ++calls;
    for (float& v : outputs[0].mutable_span<float>()) v *= 2;
  }
};
struct Other {
  void call(std::span<const HostBuffer>, std::span<HostBuffer>) {}
};

// Constants, tags, several results per node (top_k, argmax), movement and
// contraction attributes, strings that need escaping, and a callback.
ir::Graph varied_graph() {
  return trace(
      [](Tensor x, Tensor w) {
        Tensor h = x.dot(w, "d").rename({{"o", "d"}});  // dot_general, tags
        Tensor s = (h * 0.125 + 1.0).softmax("d");      // constants, reduce, broadcast
        auto [values, indices] = s.top_k(2, "d");       // two results
        Tensor doubled = callback<Doubler>({values}, {values.shape()}, "dou\"bler\n")[0];
        return std::vector<Tensor>{doubled, indices.convert(DType::f32), s.argmax("d").convert(DType::f32)};
      },
      Shape({{"b", 3}, {"d", 4}}), Shape({{"o", 4}, {"d", 4}}));
}

TEST(IrParse, PrintParsePrintIsTheIdentityAndKeepsTheHash) {
  const ir::Graph g = varied_graph();
  const std::string text = full(g);
  const ir::Graph parsed = ir::parse(text, "varied");
  EXPECT_EQ(full(parsed), text);
  EXPECT_EQ(ir::hash(parsed), ir::hash(g));
  EXPECT_NE(text.find(R"(callback="dou\"bler\x0a")"), std::string::npos) << text;
  EXPECT_NE(text.find("bytes=0x0000003e"), std::string::npos) << text;  // 0.125f, little-endian
}

TEST(IrParse, ReadBackCallbacksRunTheStateBoundByName) {
  const ir::Graph parsed =
      ir::parse(full(trace([](Tensor x) { return callback<Doubler>({x + 1.0}, {x.shape()})[0]; }, Shape({{"n", 3}}))),
                "callback graph");
  for (const char* backend : {"reference", "cpu"}) {
    SCOPED_TRACE(backend);
    const Platform platform = Platform::get(backend);
    Executable<Buffer> exe(detail::make_core(platform, parsed, 0, {}));
    const Buffer x = Buffer::from(platform, Shape({{"n", 3}}), std::vector<float>{1, 2, 3});
    EXPECT_ERROR(
        exe(x),
        "'Doubler' has no bound state: call exe.bind<kiln::(anonymous namespace)::Doubler>(&state, \"Doubler\")");
    Other other;
    exe.bind<Other>(&other, "Doubler");
    EXPECT_ERROR(exe(x), "'Doubler' is bound to a state of type kiln::(anonymous namespace)::Other");
    Doubler doubler;
    exe.bind<Doubler>(&doubler);
    const HostBuffer y = exe(x).to_host();
    EXPECT_EQ(doubler.calls, 1);
    EXPECT_EQ(std::vector<float>(y.span<float>().begin(), y.span<float>().end()), (std::vector<float>{4, 6, 8}));
  }
}

TEST(IrParse, SummarizedConstantsAreRefused) {
  const ir::Graph g = trace([](Tensor x) { return x * 3.0; }, Shape({{"n", 2}}));
  EXPECT_ERROR(ir::parse(ir::print(g), "dump"), "printed as a summary");
}

TEST(IrParse, BuiltinCallbacksAreMadeAgainFromTheirKind) {
  const ir::Graph g = trace([](Tensor x) { return (x * 3.0).print("x (tripled)"); }, Shape({{"n", 2}}));
  const std::string text = full(g);
  const std::string printed =
      R"~(callback="print(x (tripled))", type="kiln::ir::PrintCallback", aliases=[0], builtin="print")~";
  EXPECT_NE(text.find(printed), std::string::npos) << text;
  EXPECT_EQ(full(ir::parse(text, "t.ir")), text);
  auto replace = [&](std::string_view from, std::string_view to) {
    std::string edited = text;
    edited.replace(edited.find(from), from.size(), to);
    return edited;
  };
  EXPECT_ERROR(ir::parse(replace(R"(builtin="print")", R"(builtin="beep")"), "t.ir"),
               "no built-in callback of kind 'beep'");
  EXPECT_ERROR(ir::parse(replace(R"~(callback="print(x (tripled))")~", R"(callback="x")"), "t.ir"),
               "a built-in print callback is named print(<label>), not 'x'");
  EXPECT_ERROR(ir::parse(replace("aliases=[0]", "aliases=[-1]"), "t.ir"),
               "is printed with another type, aliases or host copy than kiln's");
}

struct BadText {
  const char* text;
  const char* error;
};

TEST(IrParse, MalformedTextIsAClearErrorWithLineAndColumn) {
  const BadText cases[] = {
      {"", "t.ir: no 'return' line"},
      {"%0 = frobnicate() : {} f32\nreturn %0\n", "t.ir:1:16: unknown op 'frobnicate'"},
      {"%1 = parameter() : {} f32\nreturn\n", "t.ir:1:3: expected node %0 next"},
      {"%0 = parameter( : {} f32\n", "expected '%'"},
      {"%0 = parameter() : {n=4} f33\n", "unknown dtype 'f33'"},
      {"%0 = parameter() : {n=-4} f32\n", "dimension -4 is negative"},
      {"%0 = parameter() : {1,1,1,1,1,1,1,1,1} f32\n", "rank 9 is above 8"},
      {"%0 = parameter() : {n=4,n=4} f32\n", "duplicate axis tag 'n'"},
      {"%0 = parameter() : {n=99999999999999999999} f32\n", "integer out of range"},
      {"%0 = parameter() {name=\"abc} : {} f32\n", "unterminated string"},
      {"%0 = parameter() {name=\"a\\qb\"} : {} f32\n", "unknown escape"},
      {"%0 = parameter() {size=4} : {} f32\n", "unknown attribute 'size'"},
      {"%0 = parameter() {name=\"a\", name=\"b\"} : {} f32\n", "attribute 'name' is given twice"},
      {"%0 = parameter() {name=4} : {} f32\n", "attribute 'name' has a value of the wrong kind"},
      {"%0 = constant() {bytes=0x000} : {} f32\n", "odd number of hex digits"},
      {"%0 = constant() {bytes=0x0000} : {} f32\n", "needs 4 bytes, has 2"},
      {"%0 = constant() : {} f32\n", "missing attribute 'bytes'"},
      {"%0 = neg(%0) : {} f32\n", "does not exist"},
      {"%0 = neg() : {} f32\n", "neg takes 1 operands, has 0"},
      {"%0 = parameter() : {n=4} f32\n%1 = neg(%0#3) : {n=4} f32\n", "%0#3 does not exist"},
      {"%0 = parameter() : {n=4} f32\n%1 = neg(%0) : {n=5} f32\n",
       "printed result shapes differ from the inferred {n=4} f32"},
      {"%0 = parameter() : {n=4} f32\n%1 = compare(%0, %0) {direction=sideways} : {n=4} bool\n",
       "'sideways' is not a value of attribute 'direction'"},
      {"%0 = parameter() : {n=4} f32\n%1 = sort(%0) {axis=0} : {n=4} f32\n", "exactly one of ascending and descending"},
      {"%0 = parameter() : {n=4} f32\n%1 = transpose(%0) {permutation=[1]} : {n=4} f32\n", "t.ir:2:"},
      {"%0 = parameter() : {n=4} f32\nreturn %0\n%1 = neg(%0) : {n=4} f32\n", "text after the return line"},
      {"%0 = parameter() : {n=4} f32 junk\n", "unexpected text"},
      {"%0 = parameter() : {n=4} f32\nreturn %7\n", "t.ir:2:"},
      {"%0 = custom_call() {target=\"other\", callback=\"x\", type=\"T\", aliases=[]} : {} f32\n",
       "only kiln.host_callback custom calls name a callback"},
  };
  for (const BadText& c : cases) {
    SCOPED_TRACE(c.text);
    EXPECT_ERROR(ir::parse(c.text, "t.ir"), c.error);
  }
}

}  // namespace
}  // namespace kiln
