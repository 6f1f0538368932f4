// ir::parse: reads back what ir::print(graph, {.full_constants = true})
// writes. Each line is tokenized by hand (no regexes), every number is range
// checked, and each node goes through Graph::add, so shape inference checks
// it exactly as when it was traced; the printed result shapes must then equal
// the inferred ones.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <map>
#include <optional>
#include <typeinfo>
#include <utility>

#include "kiln/core/error.h"
#include "kiln/ir/builtin_callbacks.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/host_callback.h"

namespace kiln::ir {
namespace {

constexpr size_t kMaxStringLength = 1 << 20;

// The value of an attribute: a list of integers, a number, a word, a string,
// a hex byte string, or nothing (a flag such as has_side_effect).
struct AttrValue {
  enum class Kind : uint8_t { flag, integers, number, word, string, bytes };
  Kind kind = Kind::flag;
  std::vector<int64_t> integers;  // integers; number: one element
  std::string text;               // word, string; bytes: the decoded bytes
};

class LineParser {
 public:
  LineParser(std::string_view line, std::string_view where, size_t line_number)
      : line_(line), where_(where), line_number_(line_number) {}

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> format, Args&&... args) const {
    fail("{}:{}:{}: {}", where_, line_number_, pos_ + 1, fmt::format(format, std::forward<Args>(args)...));
  }

  void skip_spaces() {
    while (pos_ < line_.size() && line_[pos_] == ' ') ++pos_;
  }
  bool at_end() {
    skip_spaces();
    return pos_ == line_.size();
  }
  bool peek(char c) {
    skip_spaces();
    return pos_ < line_.size() && line_[pos_] == c;
  }
  bool accept(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  void expect(char c) {
    if (!accept(c)) error("expected '{}'{}", c, found());
  }
  std::string found() const {
    if (pos_ >= line_.size()) return ", found the end of the line";
    return fmt::format(", found '{}'", line_.substr(pos_, 12));
  }

  // Letters, digits, '_' and '.': op names, keys, dtype names, enum words.
  std::string_view word() {
    skip_spaces();
    const size_t start = pos_;
    while (pos_ < line_.size() &&
           (std::isalnum(static_cast<unsigned char>(line_[pos_])) || line_[pos_] == '_' || line_[pos_] == '.'))
      ++pos_;
    if (pos_ == start) error("expected a name{}", found());
    return line_.substr(start, pos_ - start);
  }

  int64_t integer() {
    skip_spaces();
    int64_t value = 0;
    const char* begin = line_.data() + pos_;
    const auto [end, ec] = std::from_chars(begin, line_.data() + line_.size(), value);
    if (ec == std::errc::result_out_of_range) error("integer out of range");
    if (ec != std::errc() || end == begin) error("expected an integer{}", found());
    pos_ += static_cast<size_t>(end - begin);
    return value;
  }
  int32_t index(std::string_view what) {
    const int64_t value = integer();
    if (value < 0 || value > std::numeric_limits<int32_t>::max()) error("{} {} is out of range", what, value);
    return static_cast<int32_t>(value);
  }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= line_.size()) error("unterminated string");
      if (out.size() > kMaxStringLength) error("string longer than {} bytes", kMaxStringLength);
      const char c = line_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= line_.size()) error("unterminated string");
      const char e = line_[pos_++];
      if (e == '"' || e == '\\') {
        out += e;
      } else if (e == 'x' && pos_ + 2 <= line_.size()) {
        out += static_cast<char>(hex_byte(line_[pos_], line_[pos_ + 1]));
        pos_ += 2;
      } else {
        error("unknown escape '\\{}' in a string", e);
      }
    }
  }

  // %N or %N#K.
  Value value() {
    expect('%');
    Value v;
    v.node = index("node");
    if (pos_ < line_.size() && line_[pos_] == '#') {
      ++pos_;
      v.output = index("result");
    }
    return v;
  }

  // {tag=4,8} f32
  Shape shape() {
    expect('{');
    std::vector<int64_t> dims;
    std::vector<std::string> tags;
    if (!accept('}')) {
      do {
        skip_spaces();
        std::string tag;
        if (pos_ < line_.size() && !std::isdigit(static_cast<unsigned char>(line_[pos_])) && line_[pos_] != '-') {
          const size_t start = pos_;
          while (pos_ < line_.size() && line_[pos_] != '=' && line_[pos_] != ',' && line_[pos_] != '}') ++pos_;
          tag = std::string(line_.substr(start, pos_ - start));
          expect('=');
        }
        const int64_t dim = integer();
        if (dim < 0) error("dimension {} is negative", dim);
        dims.push_back(dim);
        tags.push_back(std::move(tag));
      } while (accept(','));
      expect('}');
    }
    const std::string_view dtype_name = word();
    const std::optional<DType> dtype = dtype_from_name(dtype_name);
    if (!dtype) error("unknown dtype '{}'", dtype_name);
    if (dims.size() > static_cast<size_t>(kMaxRank)) error("rank {} is above {}", dims.size(), kMaxRank);
    try {
      std::vector<TaggedDim> tagged;
      for (size_t i = 0; i < dims.size(); ++i) tagged.push_back({Tag(tags[i]), dims[i]});
      return Shape(std::span<const TaggedDim>(tagged), *dtype);
    } catch (const Error& e) {
      error("{}", e.what());
    }
  }

  // {key=value, flag, ...}
  std::map<std::string, AttrValue, std::less<>> attributes() {
    std::map<std::string, AttrValue, std::less<>> out;
    if (!accept('{')) return out;
    do {
      const std::string key(word());
      AttrValue value;
      if (accept('=')) value = attribute_value();
      if (!out.emplace(key, std::move(value)).second) error("attribute '{}' is given twice", key);
    } while (accept(','));
    expect('}');
    return out;
  }

 private:
  AttrValue attribute_value() {
    AttrValue v;
    if (accept('[')) {
      v.kind = AttrValue::Kind::integers;
      if (!accept(']')) {
        do v.integers.push_back(integer());
        while (accept(','));
        expect(']');
      }
    } else if (peek('"')) {
      v.kind = AttrValue::Kind::string;
      v.text = string();
    } else if (line_.substr(pos_, 2) == "0x") {
      v.kind = AttrValue::Kind::bytes;
      pos_ += 2;
      const size_t start = pos_;
      while (pos_ < line_.size() && std::isxdigit(static_cast<unsigned char>(line_[pos_]))) ++pos_;
      if ((pos_ - start) % 2 != 0) error("odd number of hex digits");
      v.text.reserve((pos_ - start) / 2);
      for (size_t i = start; i < pos_; i += 2) v.text += static_cast<char>(hex_byte(line_[i], line_[i + 1]));
    } else if (pos_ < line_.size() && (std::isdigit(static_cast<unsigned char>(line_[pos_])) || line_[pos_] == '-')) {
      v.kind = AttrValue::Kind::number;
      v.integers.push_back(integer());
    } else {
      v.kind = AttrValue::Kind::word;
      v.text = std::string(word());
    }
    return v;
  }

  uint8_t hex_byte(char high, char low) const {
    auto digit = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      error("'{}' is not a hex digit", c);
    };
    return static_cast<uint8_t>(digit(high) * 16 + digit(low));
  }

  std::string_view line_;
  std::string_view where_;
  size_t line_number_;
  size_t pos_ = 0;
};

using AttrMap = std::map<std::string, AttrValue, std::less<>>;

// Fills an op's attribute struct from the printed attributes and result
// shapes; every key must be used once, and every required one present.
class AttrReader {
 public:
  AttrReader(LineParser& line, AttrMap attrs, const std::vector<Shape>& results)
      : line_(line), attrs_(std::move(attrs)), results_(results) {}

  void operator()(NoAttrs&) {}
  void operator()(ParameterAttrs& a) {
    a.shape = result(0);
    if (has("name")) a.name = string("name");
  }
  void operator()(ConstantAttrs& a) {
    if (has("value") && !has("bytes"))
      line_.error("the constant was printed as a summary: print with full_constants to read it back");
    const std::string bytes = take("bytes", AttrValue::Kind::bytes).text;
    const Shape& shape = result(0);
    if (bytes.size() != shape.byte_size())
      line_.error("constant of {} needs {} bytes, has {}", shape.to_string(), shape.byte_size(), bytes.size());
    a.value = HostBuffer::copy_of(shape, std::as_bytes(std::span(bytes)));
  }
  void operator()(IotaAttrs& a) {
    a.shape = result(0);
    a.axis = number("axis");
  }
  void operator()(ConvertAttrs& a) { a.dtype = result(0).dtype(); }
  void operator()(CompareAttrs& a) {
    a.direction = choice<Comparison>("direction", {"eq", "ne", "lt", "le", "gt", "ge"});
    a.total_order = flag("total_order");
  }
  void operator()(BroadcastAttrs& a) {
    a.shape = result(0);
    a.dims = integers("dims");
  }
  void operator()(ReshapeAttrs& a) { a.shape = result(0); }
  void operator()(TransposeAttrs& a) { a.permutation = integers("permutation"); }
  void operator()(SliceAttrs& a) {
    a.start = integers("start");
    a.limit = integers("limit");
    a.stride = integers("stride");
  }
  void operator()(DynamicSliceAttrs& a) { a.sizes = integers("sizes"); }
  void operator()(ConcatenateAttrs& a) { a.axis = number("axis"); }
  void operator()(PadAttrs& a) {
    a.low = integers("low");
    a.high = integers("high");
    a.interior = integers("interior");
  }
  void operator()(ReverseAttrs& a) { a.axes = integers("axes"); }
  void operator()(GatherAttrs& a) {
    a.offset_dims = integers("offset_dims");
    a.collapsed_slice_dims = integers("collapsed_slice_dims");
    a.start_index_map = integers("start_index_map");
    a.index_vector_dim = number("index_vector_dim");
    a.slice_sizes = integers("slice_sizes");
  }
  void operator()(ScatterAttrs& a) {
    a.mode = choice<ScatterMode>("mode", {"replace", "add"});
    a.update_window_dims = integers("update_window_dims");
    a.inserted_window_dims = integers("inserted_window_dims");
    a.scatter_dims_to_operand_dims = integers("scatter_dims_to_operand_dims");
    a.index_vector_dim = number("index_vector_dim");
  }
  void operator()(ReduceAttrs& a) {
    a.kind = reduce_kind();
    a.axes = integers("axes");
    if (results_.size() > 1) a.index_dtype = results_[1].dtype();
  }
  void operator()(ReduceWindowAttrs& a) {
    a.kind = reduce_kind();
    a.window = integers("window");
    a.strides = integers("strides");
    a.padding_low = integers("padding_low");
    a.padding_high = integers("padding_high");
    a.base_dilation = integers("base_dilation");
    a.window_dilation = integers("window_dilation");
  }
  void operator()(DotAttrs& a) {
    a.lhs_batch = integers("lhs_batch");
    a.rhs_batch = integers("rhs_batch");
    a.lhs_contracting = integers("lhs_contracting");
    a.rhs_contracting = integers("rhs_contracting");
    a.result = result(0).dtype();
  }
  void operator()(ConvolutionAttrs& a) {
    a.strides = integers("strides");
    a.padding_low = integers("padding_low");
    a.padding_high = integers("padding_high");
    a.lhs_dilation = integers("lhs_dilation");
    a.rhs_dilation = integers("rhs_dilation");
    a.feature_group_count = number("feature_group_count");
  }
  void operator()(SortAttrs& a) {
    a.axis = number("axis");
    const bool descending = flag("descending"), ascending = flag("ascending");
    if (descending == ascending) line_.error("sort needs exactly one of ascending and descending");
    a.descending = descending;
    a.stable = flag("stable");
  }
  void operator()(TopKAttrs& a) { a.k = number("k"); }
  void operator()(RngAttrs& a) {
    a.distribution = choice<RngDistribution>("distribution", {"uniform", "normal"});
    a.shape = result(0);
  }
  void operator()(CustomCallAttrs& a) {
    a.target = string("target");
    a.results = results_;
    a.has_side_effect = flag("has_side_effect");
    if (!has("callback")) return;
    if (a.target != kHostCallbackTarget) line_.error("only {} custom calls name a callback", kHostCallbackTarget);
    if (has("builtin")) {
      const std::string name = string("callback"), kind = string("builtin"), type = string("type");
      const std::vector<int64_t> aliases = integers("aliases");
      const bool host_copy = !flag("no_host_copy");
      std::shared_ptr<const HostCallback> made;
      try {
        made = builtin_callback(kind, name);
      } catch (const Error& e) {
        line_.error("{}", e.what());
      }
      if (made->type_name != type || host_copy != made->copy_inputs_to_host ||
          !std::ranges::equal(aliases, made->aliases))
        line_.error("built-in callback '{}' is printed with another type, aliases or host copy than kiln's", name);
      a.payload = std::const_pointer_cast<HostCallback>(made);
      return;
    }
    HostCallback callback{.name = string("callback"),
                          .type_name = string("type"),
                          .bind_hint = "",
                          .type = std::type_index(typeid(void)),
                          .builtin_state = nullptr,
                          .copy_inputs_to_host = !flag("no_host_copy"),
                          .aliases = {},
                          .invoke = nullptr};
    for (const int64_t alias : integers("aliases")) {
      if (alias < -1 || alias > std::numeric_limits<int>::max())
        line_.error("callback alias {} is out of range", alias);
      callback.aliases.push_back(static_cast<int>(alias));
    }
    callback.bind_hint = fmt::format("exe.bind<{}>(&state, \"{}\")", callback.type_name, callback.name);
    a.payload = std::make_shared<HostCallback>(std::move(callback));
  }

  // After the visit: a key nothing read is an error.
  void check_all_used() const {
    if (!attrs_.empty()) line_.error("unknown attribute '{}' for this op", attrs_.begin()->first);
  }

 private:
  bool has(std::string_view key) const { return attrs_.contains(key); }
  AttrValue take(std::string_view key, AttrValue::Kind kind) {
    const auto it = attrs_.find(key);
    if (it == attrs_.end()) line_.error("missing attribute '{}'", key);
    if (it->second.kind != kind) line_.error("attribute '{}' has a value of the wrong kind", key);
    AttrValue v = std::move(it->second);
    attrs_.erase(it);
    return v;
  }
  Axes integers(std::string_view key) { return take(key, AttrValue::Kind::integers).integers; }
  int64_t number(std::string_view key) { return take(key, AttrValue::Kind::number).integers[0]; }
  std::string string(std::string_view key) { return take(key, AttrValue::Kind::string).text; }
  bool flag(std::string_view key) {
    if (!has(key)) return false;
    take(key, AttrValue::Kind::flag);
    return true;
  }
  template <typename Enum>
  Enum choice(std::string_view key, std::initializer_list<std::string_view> names) {
    const std::string word = take(key, AttrValue::Kind::word).text;
    size_t i = 0;
    for (const std::string_view n : names) {
      if (n == word) return static_cast<Enum>(i);
      ++i;
    }
    line_.error("'{}' is not a value of attribute '{}'", word, key);
  }
  ReduceKind reduce_kind() {
    return choice<ReduceKind>("kind", {"sum", "prod", "max", "min", "and", "or", "argmax", "argmin"});
  }
  const Shape& result(size_t i) const {
    if (i >= results_.size()) line_.error("expected {} result shapes", i + 1);
    return results_[i];
  }

  LineParser& line_;
  AttrMap attrs_;
  const std::vector<Shape>& results_;
};

// A default-constructed alternative `index` of Attributes.
template <size_t... I>
Attributes make_attributes(size_t index, std::index_sequence<I...>) {
  Attributes out;
  ((index == I ? (out.emplace<I>(), 0) : 0), ...);
  return out;
}

std::optional<Op> op_named(std::string_view name) {
  for (size_t i = 0; i < kOpCount; ++i)
    if (kOps[i].name == name) return static_cast<Op>(i);
  return std::nullopt;
}

}  // namespace

Graph parse(std::string_view text, std::string_view where) {
  Graph graph;
  bool returned = false;
  size_t line_number = 0;
  while (!text.empty()) {
    const size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line_text = text.substr(0, end);
    text.remove_prefix(std::min(end + 1, text.size()));
    ++line_number;
    LineParser line(line_text, where, line_number);
    if (line.at_end()) continue;
    if (returned) line.error("text after the return line");
    if (line.peek('r')) {
      if (line.word() != "return") line.error("expected a node or 'return'");
      std::vector<Value> outputs;
      if (!line.at_end()) {
        do outputs.push_back(line.value());
        while (line.accept(','));
      }
      if (!line.at_end()) line.error("unexpected text{}", line.found());
      try {
        graph.set_outputs(std::move(outputs));
      } catch (const Error& e) {
        line.error("{}", e.what());
      }
      returned = true;
      continue;
    }
    const Value id = line.value();
    if (id.output != 0 || static_cast<size_t>(id.node) != graph.nodes().size())
      line.error("expected node %{} next", graph.nodes().size());
    line.expect('=');
    const std::string_view op_name = line.word();
    const std::optional<Op> op = op_named(op_name);
    if (!op) line.error("unknown op '{}'", op_name);
    line.expect('(');
    std::vector<Value> operands;
    if (!line.accept(')')) {
      do operands.push_back(line.value());
      while (line.accept(','));
      line.expect(')');
    }
    AttrMap attrs = line.attributes();
    line.expect(':');
    std::vector<Shape> results;
    if (line.accept('(')) {
      do results.push_back(line.shape());
      while (line.accept(','));
      line.expect(')');
    } else {
      results.push_back(line.shape());
    }
    if (!line.at_end()) line.error("unexpected text{}", line.found());

    const int arity = info(*op).arity;
    if (arity >= 0 && operands.size() != static_cast<size_t>(arity))
      line.error("{} takes {} operands, has {}", op_name, arity, operands.size());
    Attributes attributes =
        make_attributes(info(*op).attrs_index, std::make_index_sequence<std::variant_size_v<Attributes>>());
    try {
      AttrReader reader(line, std::move(attrs), results);
      std::visit(reader, attributes);
      reader.check_all_used();
      if (*op == Op::parameter) {
        graph.parameter(results[0], std::get<ParameterAttrs>(attributes).name);
      } else {
        graph.add(*op, std::move(operands), std::move(attributes));
      }
    } catch (const Error& e) {
      if (std::string_view(e.what()).starts_with(where)) throw;
      line.error("{}", e.what());
    }
    const Node& added = graph.node(id.node);
    if (added.results != results) {
      std::string inferred;
      for (const Shape& s : added.results) inferred += (inferred.empty() ? "" : ", ") + s.to_string();
      line.error("printed result shapes differ from the inferred {}", inferred);
    }
  }
  if (!returned) fail("{}: no 'return' line", where);
  return graph;
}

}  // namespace kiln::ir
