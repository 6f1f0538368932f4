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
#include <utility>
#include <variant>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::io {

using MetaValue = std::variant<std::monostate, int64_t, double, bool, std::string, std::vector<int64_t>,
                               std::vector<double>, std::vector<bool>, std::vector<std::string>>;

// "null", "int", "float", "bool", "string", "int[]", ...
std::string_view type_name(const MetaValue& value);
// JSON text: 42, 1.5, true, "pt", [1,2] (invalid UTF-8 replaced).
std::string to_string(const MetaValue& value);
// The value as JSON (null for none).
nlohmann::json as_json(const MetaValue& value);

class Metadata {
 public:
  bool contains(std::string_view key) const { return values_.find(key) != values_.end(); }
  const MetaValue& at(std::string_view key) const;  // throws naming the key
  void set(std::string key, MetaValue value) { values_[std::move(key)] = std::move(value); }
  // Adds every entry of `other`, replacing existing keys.
  void merge(const Metadata& other);
  const std::map<std::string, MetaValue, std::less<>>& entries() const { return values_; }
  bool empty() const { return values_.empty(); }
  // Said after "no metadata key 'x'": why the key may be absent (open() sets
  // it when no config.json was found beside the weights).
  void set_missing_key_hint(std::string hint) { missing_key_hint_ = std::move(hint); }

  // The value of `key` as T: any integer type (ints, and strings holding an
  // integer, since safetensors metadata is all strings; out of T's range is
  // an error), any floating-point type (ints and floats, or numeric
  // strings), bool, std::string, or a std::vector of those. A missing key or
  // a value of another type is an error naming the key.
  template <typename T>
  T get(std::string_view key) const {
    if constexpr (std::is_same_v<T, bool> || std::is_same_v<T, std::string> || std::is_same_v<T, int64_t> ||
                  std::is_same_v<T, double>) {
      return get_stored<T>(key);
    } else if constexpr (std::is_integral_v<T>) {
      return narrow<T>(key, get_stored<int64_t>(key));
    } else if constexpr (std::is_floating_point_v<T>) {
      return static_cast<T>(get_stored<double>(key));
    } else if constexpr (IsVector<T>::value) {
      using E = typename T::value_type;
      if constexpr (std::is_same_v<E, bool> || std::is_same_v<E, std::string> || std::is_same_v<E, int64_t> ||
                    std::is_same_v<E, double>) {
        return get_stored<T>(key);
      } else if constexpr (std::is_integral_v<E> || std::is_floating_point_v<E>) {
        using Stored = std::conditional_t<std::is_integral_v<E>, int64_t, double>;
        T out;
        for (Stored v : get_stored<std::vector<Stored>>(key)) {
          if constexpr (std::is_integral_v<E>)
            out.push_back(narrow<E>(key, v));
          else
            out.push_back(static_cast<E>(v));
        }
        return out;
      } else {
        static_assert(sizeof(T) == 0, "metadata<std::vector<E>>: E must be an integer, floating-point, bool or string");
      }
    } else {
      static_assert(sizeof(T) == 0,
                    "metadata<T>: T must be an integer, floating-point, bool, std::string or a std::vector of one");
    }
  }

 private:
  template <typename T>
  struct IsVector : std::false_type {};
  template <typename E>
  struct IsVector<std::vector<E>> : std::true_type {};

  // T is int64_t, double, bool, std::string or a std::vector of one.
  template <typename T>
  T get_stored(std::string_view key) const;
  [[noreturn]] static void fail_out_of_range(std::string_view key, int64_t value, std::string_view type);
  template <typename T>
  static T narrow(std::string_view key, int64_t value) {
    if (!std::in_range<T>(value)) fail_out_of_range(key, value, type_name_of<T>());
    return static_cast<T>(value);
  }
  template <typename T>
  static std::string_view type_name_of() {
    return std::is_signed_v<T> ? (sizeof(T) == 1   ? "i8"
                                  : sizeof(T) == 2 ? "i16"
                                  : sizeof(T) == 4 ? "i32"
                                                   : "i64")
                               : (sizeof(T) == 1   ? "u8"
                                  : sizeof(T) == 2 ? "u16"
                                  : sizeof(T) == 4 ? "u32"
                                                   : "u64");
  }

  std::map<std::string, MetaValue, std::less<>> values_;
  std::string missing_key_hint_;
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
