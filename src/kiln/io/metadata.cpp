#include "kiln/io/metadata.h"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <nlohmann/json.hpp>

namespace kiln::io {
namespace {

template <typename... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

std::optional<int64_t> parse_int(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

std::optional<double> parse_double(std::string_view text) {
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

[[noreturn]] void wrong_type(std::string_view key, const MetaValue& value, std::string_view wanted) {
  fail("metadata '{}' is {} {}, not {}", key, type_name(value), to_string(value), wanted);
}

template <typename T>
std::optional<T> scalar_as(const MetaValue& value) {
  if constexpr (std::is_same_v<T, bool>) {
    if (auto* b = std::get_if<bool>(&value)) return *b;
    if (auto* s = std::get_if<std::string>(&value)) {
      if (*s == "true") return true;
      if (*s == "false") return false;
    }
  } else if constexpr (std::is_integral_v<T>) {
    std::optional<int64_t> v;
    if (auto* i = std::get_if<int64_t>(&value)) v = *i;
    if (auto* s = std::get_if<std::string>(&value)) v = parse_int(*s);
    if (v && *v >= std::numeric_limits<T>::min() && *v <= std::numeric_limits<T>::max()) return static_cast<T>(*v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (auto* d = std::get_if<double>(&value)) return static_cast<T>(*d);
    if (auto* i = std::get_if<int64_t>(&value)) return static_cast<T>(*i);
    if (auto* s = std::get_if<std::string>(&value))
      if (auto d = parse_double(*s)) return static_cast<T>(*d);
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (auto* s = std::get_if<std::string>(&value)) return *s;
  }
  return std::nullopt;
}

template <typename T>
std::string_view wanted_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_integral_v<T>)
    return "int";
  else if constexpr (std::is_floating_point_v<T>)
    return "float";
  else
    return "string";
}

// Scalar value of a JSON node, or nullopt if it is an object or array.
std::optional<MetaValue> json_scalar(const nlohmann::json& node) {
  switch (node.type()) {
    case nlohmann::json::value_t::null:
      return MetaValue{};
    case nlohmann::json::value_t::boolean:
      return MetaValue{node.get<bool>()};
    case nlohmann::json::value_t::number_integer:
      return MetaValue{node.get<int64_t>()};
    case nlohmann::json::value_t::number_unsigned: {
      auto u = node.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return MetaValue{static_cast<double>(u)};
      return MetaValue{static_cast<int64_t>(u)};
    }
    case nlohmann::json::value_t::number_float:
      return MetaValue{node.get<double>()};
    case nlohmann::json::value_t::string:
      return MetaValue{node.get<std::string>()};
    default:
      return std::nullopt;
  }
}

// Arrays of scalars become typed arrays: all ints, all numbers (-> float),
// all bools or all strings. Empty arrays are int[].
std::optional<MetaValue> json_array(const nlohmann::json& array) {
  bool ints = true, numbers = true, bools = true, strings = true;
  for (const auto& item : array) {
    ints &= item.is_number_integer();
    numbers &= item.is_number();
    bools &= item.is_boolean();
    strings &= item.is_string();
  }
  if (ints) {
    std::vector<int64_t> out;
    for (const auto& item : array) out.push_back(std::get<int64_t>(*json_scalar(item)));
    return out;
  }
  if (numbers) {
    std::vector<double> out;
    for (const auto& item : array) out.push_back(item.get<double>());
    return out;
  }
  if (bools) return std::vector<bool>(array.begin(), array.end());
  if (strings) return std::vector<std::string>(array.begin(), array.end());
  return std::nullopt;
}

// Real configs nest a few levels; the bound keeps hostile input from
// exhausting the stack.
constexpr int kMaxDepth = 32;

void flatten_into(const nlohmann::json& node, const std::string& key, std::string_view where, int depth,
                  Metadata& out) {
  if (depth > kMaxDepth) fail("{}: '{}' is nested more than {} levels deep", where, key, kMaxDepth);
  if (node.is_object()) {
    for (const auto& [child, value] : node.items())
      flatten_into(value, key.empty() ? child : key + "." + child, where, depth + 1, out);
  } else if (node.is_array()) {
    if (auto typed = json_array(node)) {
      out.set(key, std::move(*typed));
      return;
    }
    bool all_containers = true;
    for (const auto& item : node) all_containers &= item.is_object() || item.is_array();
    if (!all_containers) fail("{}: '{}' mixes values of different types in one array", where, key);
    for (size_t i = 0; i < node.size(); ++i) flatten_into(node[i], fmt::format("{}.{}", key, i), where, depth + 1, out);
  } else {
    out.set(key, *json_scalar(node));
  }
}

}  // namespace

std::string_view type_name(const MetaValue& value) {
  constexpr std::string_view names[] = {"null",  "int",     "float",  "bool",    "string",
                                        "int[]", "float[]", "bool[]", "string[]"};
  return names[value.index()];
}

nlohmann::json as_json(const MetaValue& value) {
  return std::visit(Overloaded{
                        [](std::monostate) -> nlohmann::json { return nullptr; },
                        [](const auto& v) -> nlohmann::json { return v; },
                    },
                    value);
}

// Strings from weight files need not be valid UTF-8: bad bytes print as U+FFFD.
std::string to_string(const MetaValue& value) {
  return as_json(value).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const MetaValue& Metadata::at(std::string_view key) const {
  auto it = values_.find(key);
  if (it == values_.end()) {
    if (!missing_key_hint_.empty()) fail("no metadata key '{}' ({})", key, missing_key_hint_);
    if (values_.empty()) fail("no metadata key '{}' (the store has no metadata: no config.json was read)", key);
    fail("no metadata key '{}'", key);
  }
  return it->second;
}

void Metadata::merge(const Metadata& other) {
  for (const auto& [key, value] : other.values_) values_[key] = value;
}

void Metadata::fail_out_of_range(std::string_view key, int64_t value, std::string_view type) {
  fail("metadata '{}' is {}, out of range for {}", key, value, type);
}

template <typename T>
T Metadata::get_stored(std::string_view key) const {
  const MetaValue& value = at(key);
  if constexpr (IsVector<T>::value) {
    using E = typename T::value_type;
    auto convert_all = [&](const auto& items) {
      T out;
      for (const auto& item : items) {
        auto converted = scalar_as<E>(MetaValue{item});
        if (!converted) wrong_type(key, value, fmt::format("{}[]", wanted_name<E>()));
        out.push_back(*converted);
      }
      return out;
    };
    return std::visit(Overloaded{
                          [&](const std::vector<int64_t>& v) { return convert_all(v); },
                          [&](const std::vector<double>& v) { return convert_all(v); },
                          [&](const std::vector<bool>& v) { return convert_all(v); },
                          [&](const std::vector<std::string>& v) { return convert_all(v); },
                          [&](const auto&) -> T { wrong_type(key, value, fmt::format("{}[]", wanted_name<E>())); },
                      },
                      value);
  } else {
    auto converted = scalar_as<T>(value);
    if (!converted) wrong_type(key, value, wanted_name<T>());
    return *converted;
  }
}

template int64_t Metadata::get_stored<int64_t>(std::string_view) const;
template double Metadata::get_stored<double>(std::string_view) const;
template bool Metadata::get_stored<bool>(std::string_view) const;
template std::string Metadata::get_stored<std::string>(std::string_view) const;
template std::vector<int64_t> Metadata::get_stored<std::vector<int64_t>>(std::string_view) const;
template std::vector<double> Metadata::get_stored<std::vector<double>>(std::string_view) const;
template std::vector<bool> Metadata::get_stored<std::vector<bool>>(std::string_view) const;
template std::vector<std::string> Metadata::get_stored<std::vector<std::string>>(std::string_view) const;

nlohmann::json parse_json(std::string_view text, std::string_view where) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: not valid JSON ({})", where, e.what());
  }
}

void flatten_json(const nlohmann::json& object, std::string_view where, Metadata& out) {
  if (!object.is_object()) fail("{}: expected a JSON object at the top level", where);
  flatten_into(object, "", where, 0, out);
}

Metadata parse_json_metadata(std::string_view text, std::string_view where) {
  Metadata out;
  flatten_json(parse_json(text, where), where, out);
  return out;
}

}  // namespace kiln::io
