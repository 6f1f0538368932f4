#pragma once
// THE op table. Every op of the IR is one row:
//   X(id, "printed name", operand count (-1: variadic), attribute struct, dtype rule, family)
// The Op enum, names, arities, attribute types and families below are
// generated from it; shape inference, the printer, the verifier and every backend switch
// over Op without a default case, so a new row that is not handled
// everywhere fails to compile (-Werror=switch).
// The op set follows StableHLO so that an exporter is a printer.
#include <array>
#include <cstdint>
#include <string_view>

#include "kiln/ir/attributes.h"

namespace kiln::ir {

// Which operand dtypes an op accepts (result dtype rules live in infer.cpp).
enum class TypeRule : uint8_t {
  any,          // every dtype
  numeric,      // integers and floats, not bool
  floating,     // floats only
  signed_num,   // floats and signed integers
  integer,      // integers only
  int_or_bool,  // integers and bool (bitwise logic)
};

// What kind of computation an op is. Shape inference, the interpreter's
// dispatch and the CPU backend's fusion rules switch over families instead
// of listing ops by hand.
enum class Family : uint8_t {
  leaf,         // parameter, constant: values that exist before the graph runs
  generator,    // iota: a value computed from its index alone
  conversion,   // convert, bitcast_convert
  unary,        // one operand, elementwise
  binary,       // two operands of one shape, elementwise (compare included)
  ternary,      // select, clamp: elementwise, scalar operands broadcast
  movement,     // elements moved or copied, never changed
  indexing,     // gather, scatter: positions read from an operand
  reduction,    // reduce, reduce_window
  contraction,  // dot_general, convolution
  sorting,      // sort, top_k
  random,       // rng
  custom,       // custom_call (host callbacks)
  barrier,      // optimization_barrier
};

// clang-format off
#define KILN_IR_OPS(X)                                                                                  \
  /* leaves */                                                                                          \
  X(parameter,               "parameter",               0, ParameterAttrs,     any,         leaf)       \
  X(constant,                "constant",                0, ConstantAttrs,      any,         leaf)       \
  X(iota,                    "iota",                    0, IotaAttrs,          numeric,     generator)  \
  /* conversions */                                                                                     \
  X(convert,                 "convert",                 1, ConvertAttrs,       any,         conversion) \
  X(bitcast_convert,         "bitcast_convert",         1, ConvertAttrs,       any,         conversion) \
  /* unary elementwise */                                                                               \
  X(neg,                     "neg",                     1, NoAttrs,            signed_num,  unary)      \
  X(abs,                     "abs",                     1, NoAttrs,            signed_num,  unary)      \
  X(sign,                    "sign",                    1, NoAttrs,            signed_num,  unary)      \
  X(exp,                     "exp",                     1, NoAttrs,            floating,    unary)      \
  X(expm1,                   "expm1",                   1, NoAttrs,            floating,    unary)      \
  X(log,                     "log",                     1, NoAttrs,            floating,    unary)      \
  X(log1p,                   "log1p",                   1, NoAttrs,            floating,    unary)      \
  X(sqrt,                    "sqrt",                    1, NoAttrs,            floating,    unary)      \
  X(rsqrt,                   "rsqrt",                   1, NoAttrs,            floating,    unary)      \
  X(cbrt,                    "cbrt",                    1, NoAttrs,            floating,    unary)      \
  X(tanh,                    "tanh",                    1, NoAttrs,            floating,    unary)      \
  X(logistic,                "logistic",                1, NoAttrs,            floating,    unary)      \
  X(sin,                     "sin",                     1, NoAttrs,            floating,    unary)      \
  X(cos,                     "cos",                     1, NoAttrs,            floating,    unary)      \
  X(tan,                     "tan",                     1, NoAttrs,            floating,    unary)      \
  X(erf,                     "erf",                     1, NoAttrs,            floating,    unary)      \
  X(floor,                   "floor",                   1, NoAttrs,            floating,    unary)      \
  X(ceil,                    "ceil",                    1, NoAttrs,            floating,    unary)      \
  X(round_nearest_even,      "round_nearest_even",      1, NoAttrs,            floating,    unary)      \
  X(not_,                    "not",                     1, NoAttrs,            int_or_bool, unary)      \
  X(is_finite,               "is_finite",               1, NoAttrs,            floating,    unary)      \
  X(popcnt,                  "popcnt",                  1, NoAttrs,            integer,     unary)      \
  /* binary elementwise */                                                                              \
  X(add,                     "add",                     2, NoAttrs,            numeric,     binary)     \
  X(sub,                     "sub",                     2, NoAttrs,            numeric,     binary)     \
  X(mul,                     "mul",                     2, NoAttrs,            numeric,     binary)     \
  X(div,                     "div",                     2, NoAttrs,            numeric,     binary)     \
  X(rem,                     "rem",                     2, NoAttrs,            numeric,     binary)     \
  X(pow,                     "pow",                     2, NoAttrs,            numeric,     binary)     \
  X(max,                     "max",                     2, NoAttrs,            any,         binary)     \
  X(min,                     "min",                     2, NoAttrs,            any,         binary)     \
  X(atan2,                   "atan2",                   2, NoAttrs,            floating,    binary)     \
  X(and_,                    "and",                     2, NoAttrs,            int_or_bool, binary)     \
  X(or_,                     "or",                      2, NoAttrs,            int_or_bool, binary)     \
  X(xor_,                    "xor",                     2, NoAttrs,            int_or_bool, binary)     \
  X(shift_left,              "shift_left",              2, NoAttrs,            integer,     binary)     \
  X(shift_right_logical,     "shift_right_logical",     2, NoAttrs,            integer,     binary)     \
  X(shift_right_arithmetic,  "shift_right_arithmetic",  2, NoAttrs,            integer,     binary)     \
  X(compare,                 "compare",                 2, CompareAttrs,       any,         binary)     \
  X(select,                  "select",                  3, NoAttrs,            any,         ternary)    \
  X(clamp,                   "clamp",                   3, NoAttrs,            any,         ternary)    \
  /* data movement */                                                                                   \
  X(broadcast_in_dim,        "broadcast_in_dim",        1, BroadcastAttrs,     any,         movement)   \
  X(reshape,                 "reshape",                 1, ReshapeAttrs,       any,         movement)   \
  X(transpose,               "transpose",               1, TransposeAttrs,     any,         movement)   \
  X(slice,                   "slice",                   1, SliceAttrs,         any,         movement)   \
  X(dynamic_slice,           "dynamic_slice",          -1, DynamicSliceAttrs,  any,         movement)   \
  X(dynamic_update_slice,    "dynamic_update_slice",   -1, NoAttrs,            any,         movement)   \
  X(concatenate,             "concatenate",            -1, ConcatenateAttrs,   any,         movement)   \
  X(pad,                     "pad",                     2, PadAttrs,           any,         movement)   \
  X(reverse,                 "reverse",                 1, ReverseAttrs,       any,         movement)   \
  X(gather,                  "gather",                  2, GatherAttrs,        any,         indexing)   \
  X(scatter,                 "scatter",                 3, ScatterAttrs,       any,         indexing)   \
  /* reductions and contractions */                                                                     \
  X(reduce,                  "reduce",                  1, ReduceAttrs,        any,         reduction)  \
  X(reduce_window,           "reduce_window",           1, ReduceWindowAttrs,  numeric,     reduction)  \
  X(dot_general,             "dot_general",             2, DotAttrs,           numeric,     contraction)\
  X(convolution,             "convolution",             2, ConvolutionAttrs,   numeric,     contraction)\
  X(sort,                    "sort",                   -1, SortAttrs,          any,         sorting)    \
  X(top_k,                   "top_k",                   1, TopKAttrs,          numeric,     sorting)    \
  /* other */                                                                                           \
  X(rng,                     "rng",                     1, RngAttrs,           any,         random)     \
  X(custom_call,             "custom_call",            -1, CustomCallAttrs,    any,         custom)     \
  X(optimization_barrier,    "optimization_barrier",   -1, NoAttrs,            any,         barrier)    \
// clang-format on

enum class Op : uint8_t {
#define KILN_IR_ENUM(id, name, arity, attrs, rule, family) id,
  KILN_IR_OPS(KILN_IR_ENUM)
#undef KILN_IR_ENUM
};

struct OpInfo {
  std::string_view name;
  int arity;  // -1: variadic
  TypeRule rule;
  Family family;
  size_t attrs_index;  // index of the op's attribute type in Attributes
};

namespace detail {
template <typename T, typename Variant>
struct VariantIndex;
template <typename T, typename... Ts>
struct VariantIndex<T, std::variant<Ts...>> {
  static constexpr size_t value = [] {
    constexpr bool matches[] = {std::is_same_v<T, Ts>...};
    for (size_t i = 0; i < sizeof...(Ts); ++i)
      if (matches[i]) return i;
    return sizeof...(Ts);
  }();
  static_assert(value < sizeof...(Ts), "an op's attribute struct is missing from ir::Attributes");
};
}  // namespace detail

inline constexpr std::array kOps = {
#define KILN_IR_INFO(id, name, arity, attrs, rule, family) \
  OpInfo{name, arity, TypeRule::rule, Family::family, detail::VariantIndex<attrs, Attributes>::value},
    KILN_IR_OPS(KILN_IR_INFO)
#undef KILN_IR_INFO
};
inline constexpr size_t kOpCount = kOps.size();

inline const OpInfo& info(Op op) { return kOps[static_cast<size_t>(op)]; }
inline std::string_view name(Op op) { return info(op).name; }
inline Family family(Op op) { return info(op).family; }
// Elementwise in the fusion sense: each result element depends only on the
// operand elements at the same index (scalars of select/clamp broadcast).
inline bool is_elementwise(Op op) {
  const Family f = family(op);
  return f == Family::conversion || f == Family::unary || f == Family::binary || f == Family::ternary;
}

}  // namespace kiln::ir
