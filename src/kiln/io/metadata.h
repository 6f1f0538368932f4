#pragma once
// Typed metadata: the values found in a safetensors `__metadata__` block, an
// index file's "metadata" and a model's config.json, flattened to dotted keys
// ("rope_scaling.factor"). Values are null, int, float, bool, string, or an
// array of one of those.
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::io {

using MetaValue = std::variant<std::monostate, int64_t, double, bool, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<bool>, std::vector<std::string>>;

// "null", "int", "float", "bool", "string", "int[]", ...
std::string_view type_name(const MetaValue& value);
// JSON-like text: 42, 1.5, true, "pt", [1,2].
std::string to_string(const MetaValue& value);

class Metadata {
 public:
  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  const MetaValue& at(std::string_view key) const;  // throws naming the key
  void set(std::string key, MetaValue value) { values_[std::move(key)] = std::move(value); }
  // Adds every entry of `other`, replacing existing keys.
  void merge(const Metadata& other);
  const std::map<std::string, MetaValue, std::less<>>& entries() const { return values_; }
  bool empty() const { return values_.empty(); }

  // The value of `key` as T: int64_t/int (ints, and strings holding an
  // integer, since safetensors metadata is all strings), double (ints and
  // floats, or numeric strings), bool, std::string, or a std::vector of those.
  // A missing key or a value of another type is an error naming the key.
  template <typename T>
  T get(std::string_view key) const;

 private:
  std::map<std::string, MetaValue, std::less<>> values_;
};

// Parses JSON text; throws naming `where` (a file) with the parser's position.
nlohmann::json parse_json(std::string_view text, std::string_view where);
// Flattens a JSON object into `out`: nested objects become dotted keys and
// arrays of objects get their index as a key component ("layers.0.type").
// `where` names the file in errors.
void flatten_json(const nlohmann::json& object, std::string_view where, Metadata& out);
// Parses JSON text and flattens it. Throws naming `where` on invalid JSON.
Metadata parse_json_metadata(std::string_view text, std::string_view where);

}  // namespace kiln::io
