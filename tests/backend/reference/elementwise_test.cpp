// The reference interpreter's elementwise family against PyTorch/NumPy
// results in tests/fixtures/ops/elementwise.safetensors (written by
// tests/fixtures/make_op_fixtures_elementwise.py; its docstring lists the
// naming scheme and where each expected value comes from).
//
// The tests are data-driven: every tensor name "<op>.<dtype>.case<k>.<role>"
// is parsed, cases are grouped by op, and each op's test builds a one-node
// graph per case and compares with kiln::testing::all_close at the default
// tolerance of the result dtype, or exactly for the ops in kExactOps; zeros
// must also agree in sign. Nothing is skipped silently: a name that
// does not parse, an op outside the family, a role no check reads, or a
// dtype/shape the op should have been tested with but is not in the file is a
// failure. f8 dtypes are not in the fixture (torch 1.13 has none).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/core/element.h"
#include "kiln/ir/graph.h"
#include "support/compare.h"
#include "support/expect_error.h"
#include "support/graph_batch.h"
#include "support/tracked_fixture.h"

namespace kiln {
namespace {

using ir::Op;

constexpr const char* kFixture = "ops/elementwise.safetensors";

// Every op of the family, by printed name.
// clang-format off
const std::vector<std::string> kFamily = {
    "iota", "convert", "bitcast_convert",
    "neg", "abs", "sign", "exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "cbrt", "tanh", "logistic", "sin", "cos",
    "tan", "erf", "floor", "ceil", "round_nearest_even", "not", "is_finite", "popcnt",
    "add", "sub", "mul", "div", "rem", "pow", "max", "min", "atan2", "and", "or", "xor",
    "shift_left", "shift_right_logical", "shift_right_arithmetic",
    "compare", "select", "clamp",
};
// clang-format on

// The dtypes the fixture covers (all but the f8 formats).
const std::vector<DType> kFixtureDTypes = {DType::bool_, DType::i8,  DType::i16, DType::i32, DType::i64,
                                           DType::u8,    DType::u16, DType::u32, DType::u64, DType::f16,
                                           DType::bf16,  DType::f32, DType::f64};
// Dtypes for which the script also writes the rank-0 and empty cases.
const std::set<DType> kShapeDTypes = {DType::f32, DType::bf16, DType::i32, DType::u64, DType::bool_};
const std::set<DType> kConvertShapeDTypes = {DType::f32, DType::i32, DType::bool_};

Op op_from_name(const std::string& name) {
  for (size_t i = 0; i < ir::kOpCount; ++i)
    if (ir::kOps[i].name == name) return static_cast<Op>(i);
  throw std::runtime_error("unknown op " + name);
}

DType dtype_named(const std::string& name) {
  auto d = dtype_from_name(name);
  if (!d) throw std::runtime_error("unknown dtype " + name);
  return *d;
}

// What an op's type rule accepts, restated here so a fixture that forgot a
// dtype is caught.
bool accepts(ir::TypeRule rule, DType d) {
  switch (rule) {
    case ir::TypeRule::any:
      return true;
    case ir::TypeRule::numeric:
      return d != DType::bool_;
    case ir::TypeRule::floating:
      return is_float(d);
    case ir::TypeRule::signed_num:
      return is_float(d) || (is_integer(d) && !is_unsigned(d));
    case ir::TypeRule::integer:
      return is_integer(d);
    case ir::TypeRule::int_or_bool:
      return is_integer(d) || d == DType::bool_;
  }
  return false;
}

// One group of fixture tensors: "add.f32.case0" with roles lhs, rhs, out.
struct Case {
  std::string op, dtype, id;
  std::map<std::string, HostBuffer> roles;

  const HostBuffer& role(const std::string& r) const {
    auto it = roles.find(r);
    if (it == roles.end()) throw std::runtime_error(id + " has no tensor '" + r + "'");
    return it->second;
  }
};

struct ParsedFixture {
  std::map<std::string, std::vector<Case>> by_op;
  std::vector<std::string> bad_names;  // names that are not op.dtype.caseK.role
};

const ParsedFixture& parsed() {
  static const ParsedFixture result = [] {
    const io::BufferStore& store = testing::fixture(kFixture);
    std::map<std::string, Case> groups;
    ParsedFixture p;
    for (const std::string& name : store.names()) {
      std::vector<std::string> parts;
      size_t begin = 0;
      for (size_t dot; (dot = name.find('.', begin)) != std::string::npos; begin = dot + 1)
        parts.push_back(name.substr(begin, dot - begin));
      parts.push_back(name.substr(begin));
      if (parts.size() != 4 || parts[2].rfind("case", 0) != 0) {
        p.bad_names.push_back(name);
        continue;
      }
      const std::string id = parts[0] + "." + parts[1] + "." + parts[2];
      Case& c = groups[id];
      c.op = parts[0];
      c.dtype = parts[1];
      c.id = id;
      c.roles[parts[3]] = store.get(name);
    }
    for (auto& [id, c] : groups) p.by_op[c.op].push_back(c);
    return p;
  }();
  return result;
}

// A graph with one parameter per input and the single node `op`.
ir::Graph one_node(Op op, const std::vector<HostBuffer>& inputs, ir::Attributes attrs) {
  ir::Graph g;
  std::vector<ir::Value> params;
  for (const HostBuffer& b : inputs) params.push_back(g.parameter(b.shape()));
  g.set_outputs({g.add(op, params, std::move(attrs))});
  ir::verify(g);
  return g;
}

// all_close treats -0 and +0 as equal; the family has rules about the sign of
// zero (sign(-0) = -0, max(-0, +0) = +0, round(-0.4) = -0, ...), so where both
// values are zero their signs must agree too.
::testing::AssertionResult same_zero_signs(const HostBuffer& got, const HostBuffer& expected) {
  if (!is_float(expected.dtype()) || got.dtype() != expected.dtype() || got.shape().count() != expected.shape().count())
    return ::testing::AssertionSuccess();
  const HostBuffer a = got.copy(), b = expected.copy();
  const size_t size = size_of(a.dtype());
  for (int64_t i = 0; i < a.shape().count(); ++i) {
    const double x = load_double(a.dtype(), a.data() + i * size), y = load_double(b.dtype(), b.data() + i * size);
    if (x == 0 && y == 0 && std::signbit(x) != std::signbit(y))
      return ::testing::AssertionFailure() << "[" << i << "] got " << (std::signbit(x) ? "-0" : "+0") << ", expected "
                                           << (std::signbit(y) ? "-0" : "+0");
  }
  return ::testing::AssertionSuccess();
}

// Ops whose float results are exact functions of the inputs are compared
// exactly (tighter than the default): the fixture computes them with one
// correct rounding too (torch's f32 + - * / sqrt of f16/bf16 values rounded to
// the dtype is correctly rounded, since f32 has more than twice their
// precision), so any difference is a real bug, e.g. a double rounding.
const std::set<Op> kExactOps = {Op::iota,  Op::convert, Op::bitcast_convert,
                                Op::neg,   Op::abs,     Op::sign,
                                Op::floor, Op::ceil,    Op::round_nearest_even,
                                Op::add,   Op::sub,     Op::mul,
                                Op::div,   Op::rem,     Op::sqrt,
                                Op::max,   Op::min,     Op::select,
                                Op::clamp};

void expect_matches(Op op, const HostBuffer& got, const HostBuffer& expected, const std::string& what) {
  const testing::Tolerance tol =
      kExactOps.count(op) ? testing::Tolerance{0, 0} : testing::default_tolerance(expected.dtype());
  EXPECT_TRUE(testing::all_close(got, expected, tol, what));
  EXPECT_TRUE(same_zero_signs(got, expected)) << what;
}

// Runs `op` on `inputs` in `batch` and compares its result with `expected`.
void run_and_expect(testing::GraphBatch& batch, Op op, const std::vector<HostBuffer>& inputs, ir::Attributes attrs,
                    const HostBuffer& expected, const std::string& what) {
  batch.add(one_node(op, inputs, std::move(attrs)), inputs,
            [=](const std::vector<HostBuffer>& out) { expect_matches(op, out[0], expected, what); });
}

// Queues one case in `batch`, reading the case's tensors through `fixture` so
// the caller can tell which roles were checked.
void check_case(testing::GraphBatch& batch, testing::TrackedFixture& fixture, const Case& c) {
  const Op op = op_from_name(c.op);
  auto in = [&](const std::string& role) -> const HostBuffer& { return fixture.get(c.id + "." + role); };
  // Ifs rather than a switch: the generic unary/binary path covers most ops
  // and a switch over ir::Op must not have a default.
  if (op == Op::iota) {
    const HostBuffer& out = in("out");
    const int64_t axis = in("axis").span<int64_t>()[0];
    run_and_expect(batch, op, {}, ir::IotaAttrs{out.shape(), axis}, out, c.id);
  } else if (op == Op::convert) {
    for (const auto& [role, expected] : c.roles) {
      if (role.rfind("out_", 0) != 0) continue;
      const DType to = dtype_named(role.substr(4));
      if (to != expected.dtype()) throw std::runtime_error(c.id + "." + role + " has the wrong dtype");
      run_and_expect(batch, op, {in("operand")}, ir::ConvertAttrs{to}, in(role), c.id + " -> " + role.substr(4));
    }
  } else if (op == Op::bitcast_convert) {
    run_and_expect(batch, op, {in("operand")}, ir::ConvertAttrs{in("out").dtype()}, in("out"), c.id);
  } else if (op == Op::compare) {
    const std::pair<const char*, ir::Comparison> directions[] = {
        {"eq", ir::Comparison::eq}, {"ne", ir::Comparison::ne}, {"lt", ir::Comparison::lt},
        {"le", ir::Comparison::le}, {"gt", ir::Comparison::gt}, {"ge", ir::Comparison::ge}};
    for (const auto& [name, direction] : directions) {
      run_and_expect(batch, op, {in("lhs"), in("rhs")}, ir::CompareAttrs{direction, false}, in(name),
                     c.id + " " + name);
      if (is_float(in("lhs").dtype())) {
        const std::string total = std::string("total_") + name;
        run_and_expect(batch, op, {in("lhs"), in("rhs")}, ir::CompareAttrs{direction, true}, in(total),
                       c.id + " " + total);
      }
    }
  } else if (op == Op::select) {
    run_and_expect(batch, op, {in("pred"), in("on_true"), in("on_false")}, ir::NoAttrs{}, in("out"), c.id);
  } else if (op == Op::clamp) {
    run_and_expect(batch, op, {in("min"), in("operand"), in("max")}, ir::NoAttrs{}, in("out"), c.id);
  } else if (ir::info(op).arity == 1) {
    run_and_expect(batch, op, {in("operand")}, ir::NoAttrs{}, in("out"), c.id);
  } else {
    run_and_expect(batch, op, {in("lhs"), in("rhs")}, ir::NoAttrs{}, in("out"), c.id);
  }
}

// The cases each (op, dtype) must have: case0 (non-empty, rank >= 1) for
// every dtype the op accepts; a rank-0 case and an empty case for the
// kShapeDTypes ones.
void check_coverage(const std::string& op_name, const std::vector<Case>& cases) {
  const Op op = op_from_name(op_name);
  std::map<std::string, std::vector<const Case*>> by_dtype;
  for (const Case& c : cases) by_dtype[c.dtype].push_back(&c);
  auto shape_of = [](const Case& c) -> const Shape& {
    return c.roles.count("operand") ? c.role("operand").shape()
           : c.roles.count("lhs")   ? c.role("lhs").shape()
           : c.roles.count("out")   ? c.role("out").shape()
                                    : c.role("on_true").shape();
  };
  auto check_shapes = [&](const std::string& dtype, bool want_scalar, bool want_empty) {
    bool main = false, scalar = false, empty = false;
    for (const Case* c : by_dtype[dtype]) {
      const Shape& s = shape_of(*c);
      main |= s.rank() >= 1 && s.count() > 0;
      scalar |= s.rank() == 0;
      empty |= s.count() == 0;
    }
    EXPECT_TRUE(main) << op_name << " " << dtype << " has no non-empty case";
    EXPECT_TRUE(scalar || !want_scalar) << op_name << " " << dtype << " has no rank-0 case";
    EXPECT_TRUE(empty || !want_empty) << op_name << " " << dtype << " has no empty case";
  };

  if (op == Op::bitcast_convert) {
    const char* required[] = {"f32_to_u32", "u32_to_f32", "f32_to_i32", "i32_to_f32", "f32_to_u8",
                              "u8_to_f32",  "f32_to_u16", "u16_to_f32", "f64_to_u64", "bf16_to_u16"};
    for (const char* pair : required) EXPECT_TRUE(by_dtype.count(pair)) << "bitcast_convert " << pair << " missing";
    check_shapes("f32_to_u8", true, true);
    check_shapes("u8_to_f32", false, true);
    return;
  }
  for (DType d : kFixtureDTypes) {
    const std::string dt(name(d));
    if (op == Op::convert) {
      EXPECT_TRUE(by_dtype.count(dt)) << "convert from " << dt << " missing";
      for (const Case* c : by_dtype[dt])
        for (DType to : kFixtureDTypes)
          EXPECT_TRUE(c->roles.count("out_" + std::string(name(to)))) << c->id << " lacks out_" << name(to);
      check_shapes(dt, kConvertShapeDTypes.count(d) > 0, kConvertShapeDTypes.count(d) > 0);
      continue;
    }
    const bool wanted = accepts(ir::info(op).rule, d);
    EXPECT_EQ(by_dtype.count(dt) > 0, wanted) << op_name << " " << dt << (wanted ? " missing" : " unexpected");
    // iota has no rank 0 (it needs an axis)
    if (wanted) check_shapes(dt, kShapeDTypes.count(d) > 0 && op != Op::iota, kShapeDTypes.count(d) > 0);
  }
  if (op == Op::select) {  // a scalar pred with non-scalar operands
    bool found = false;
    for (const Case& c : cases) found |= c.role("pred").shape().rank() == 0 && c.role("on_true").shape().rank() > 0;
    EXPECT_TRUE(found) << "select has no scalar-pred case";
  }
  if (op == Op::clamp) {
    bool found = false;
    for (const Case& c : cases) found |= c.role("min").shape().rank() == 0 && c.role("operand").shape().rank() > 0;
    EXPECT_TRUE(found) << "clamp has no scalar-bounds case";
  }
}

// Every op's cases run on each backend: the reference interpreter and the
// optimizing CPU backend (all of an op's cases in one compile).
class RefElementwiseFixture : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {};

TEST_P(RefElementwiseFixture, MatchesTorchAndNumpy) {
  const auto& [op, backend] = GetParam();
  const auto& by_op = parsed().by_op;
  auto it = by_op.find(op);
  ASSERT_NE(it, by_op.end()) << "the fixture has no cases for " << op;
  testing::TrackedFixture fixture(kFixture);
  testing::GraphBatch batch;
  for (const Case& c : it->second) {
    check_case(batch, fixture, c);
    EXPECT_TRUE(fixture.all_read_under(c.id + ".")) << "a role of " << c.id << " was not checked";
  }
  batch.run(Platform::get(backend));
  check_coverage(op, it->second);
}

INSTANTIATE_TEST_SUITE_P(RefElementwise, RefElementwiseFixture,
                         ::testing::Combine(::testing::ValuesIn(kFamily), ::testing::ValuesIn(testing::all_backends())),
                         [](const auto& info) { return std::get<0>(info.param) + "_" + std::get<1>(info.param); });

TEST(RefElementwiseFixtureFile, EveryTensorBelongsToACheckedOp) {
  const ParsedFixture& p = parsed();
  EXPECT_TRUE(p.bad_names.empty()) << "unparsed name: " << p.bad_names.front();
  size_t cases = 0;
  for (const auto& [op, list] : p.by_op) {
    EXPECT_NE(std::find(kFamily.begin(), kFamily.end(), op), kFamily.end()) << op << " is not in the family";
    cases += list.size();
  }
  EXPECT_EQ(p.by_op.size(), kFamily.size());
  EXPECT_GT(cases, 600u);  // 648 when written; guards against a truncated file
}

// --- dtype rules: a wrong dtype is an error naming the op ------------------------

struct Rejection {
  std::string op;
  std::vector<Shape> operands;
  ir::Attributes attrs;
};

// One wrong-dtype (or, for ops that take every dtype, wrong-combination) use
// per op.
std::vector<Rejection> rejections() {
  const Shape f32({3}, DType::f32), i32({3}, DType::i32), u32({3}, DType::u32), bool3({3}, DType::bool_);
  std::vector<Rejection> r = {
      {"iota", {}, ir::IotaAttrs{Shape({3}, DType::bool_), 0}},
      {"convert", {f32}, ir::NoAttrs{}},                         // every dtype converts; attrs must be ConvertAttrs
      {"bitcast_convert", {f32}, ir::ConvertAttrs{DType::f64}},  // f32 -> f64 needs a last axis of 2
      {"not", {f32}, ir::NoAttrs{}},
      {"popcnt", {bool3}, ir::NoAttrs{}},
      {"is_finite", {i32}, ir::NoAttrs{}},
      {"max", {f32, i32}, ir::NoAttrs{}},
      {"min", {i32, u32}, ir::NoAttrs{}},
      {"compare", {f32, i32}, ir::CompareAttrs{ir::Comparison::lt, false}},
      {"select", {Shape({3}, DType::i32), f32, f32}, ir::NoAttrs{}},  // pred must be bool
      {"clamp", {i32, f32, f32}, ir::NoAttrs{}},
  };
  for (const char* op : {"neg", "abs", "sign"}) r.push_back({op, {u32}, ir::NoAttrs{}});
  for (const char* op : {"exp", "expm1", "log", "log1p", "sqrt", "rsqrt", "cbrt", "tanh", "logistic", "sin", "cos",
                         "tan", "erf", "floor", "ceil", "round_nearest_even"})
    r.push_back({op, {i32}, ir::NoAttrs{}});
  for (const char* op : {"add", "sub", "mul", "div", "rem", "pow"}) r.push_back({op, {bool3, bool3}, ir::NoAttrs{}});
  r.push_back({"atan2", {i32, i32}, ir::NoAttrs{}});
  for (const char* op : {"and", "or", "xor"}) r.push_back({op, {f32, f32}, ir::NoAttrs{}});
  for (const char* op : {"shift_left", "shift_right_logical", "shift_right_arithmetic"})
    r.push_back({op, {f32, f32}, ir::NoAttrs{}});
  return r;
}

class RefElementwiseDtypeRule : public ::testing::TestWithParam<std::string> {};

TEST_P(RefElementwiseDtypeRule, RejectsWrongDtypeNamingTheOp) {
  const std::string& op = GetParam();
  int found = 0;
  for (const Rejection& r : rejections()) {
    if (r.op != op) continue;
    ++found;
    ir::Graph g;
    std::vector<ir::Value> params;
    for (const Shape& s : r.operands) params.push_back(g.parameter(s));
    EXPECT_ERROR(g.add(op_from_name(op), params, r.attrs), "[" + op + "]");
  }
  EXPECT_EQ(found, 1) << "no rejection case for " << op;
}

INSTANTIATE_TEST_SUITE_P(RefElementwise, RefElementwiseDtypeRule, ::testing::ValuesIn(kFamily),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// --- f8 (not in the elementwise fixture) -------------------------------------------

// convert between f32 and the small formats against the dtype fixture
// (numpy f16, torch bf16, an exact Fraction reference for f8; see
// tests/fixtures/make_dtype_fixtures.py). NaN inputs must give some NaN.
class RefElementwiseSmallFloats : public testing::OnEveryBackend {};

TEST_P(RefElementwiseSmallFloats, ConvertMatchesDtypeFixture) {
  const Platform platform = Platform::get(GetParam());
  auto run = [&](Op op, std::vector<HostBuffer> inputs, ir::Attributes attrs) {
    return testing::evaluate(platform, one_node(op, inputs, std::move(attrs)), inputs);
  };
  const io::BufferStore& f = testing::fixture("dtype/conversions.safetensors");
  const HostBuffer& x = f.get("f32_inputs");
  const auto is_nan_input = f.get("is_nan_input").span<uint8_t>();
  const std::pair<DType, const char*> targets[] = {
      {DType::f16, "to_f16"}, {DType::bf16, "to_bf16"}, {DType::f8e4m3fn, "to_f8e4m3fn"}, {DType::f8e5m2, "to_f8e5m2"}};
  for (const auto& [dtype, tensor] : targets) {
    const HostBuffer got = run(Op::convert, {x}, ir::ConvertAttrs{dtype})[0];
    const HostBuffer& expected = f.get(tensor);
    const size_t size = size_of(dtype);
    int mismatches = 0;
    for (int64_t i = 0; i < x.shape().count(); ++i) {
      const std::byte* g = got.data() + i * static_cast<int64_t>(size);
      const bool ok = is_nan_input[static_cast<size_t>(i)] ? std::isnan(load_double(dtype, g))
                                                           : std::memcmp(g, expected.data() + i * size, size) == 0;
      if (!ok && ++mismatches <= 5)
        ADD_FAILURE() << tensor << "[" << i << "]: input " << x.span<float>()[static_cast<size_t>(i)];
    }
    EXPECT_EQ(mismatches, 0) << tensor;
  }
  // Every f8 code back to f32 (exact).
  const std::pair<DType, const char*> tables[] = {{DType::f8e4m3fn, "f8e4m3fn_all_to_f32"},
                                                  {DType::f8e5m2, "f8e5m2_all_to_f32"}};
  for (const auto& [dtype, tensor] : tables) {
    HostBuffer codes = HostBuffer::allocate(Shape({256}, dtype));
    for (int i = 0; i < 256; ++i) codes.mutable_span<uint8_t>()[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    EXPECT_TRUE(testing::all_close(run(Op::convert, {codes}, ir::ConvertAttrs{DType::f32})[0], f.get(tensor),
                                   testing::Tolerance{0, 0}, tensor));
  }
}

KILN_ON_EVERY_BACKEND(RefElementwiseSmallFloats);

}  // namespace
}  // namespace kiln
