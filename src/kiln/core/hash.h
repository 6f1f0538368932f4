#pragma once
// A stable 128-bit content hash (not cryptographic): the same bytes give the
// same hash on every machine and in every kiln version that keeps this
// file, so it can name cache entries and saved programs.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

namespace kiln {

struct Hash128 {
  uint64_t high = 0, low = 0;
  std::string hex() const;  // 32 lowercase hex digits
  friend bool operator==(const Hash128&, const Hash128&) = default;
};

class Hasher {
 public:
  void bytes(const void* data, size_t size);
  void bytes(std::span<const std::byte> data) { bytes(data.data(), data.size()); }
  // A length-prefixed string, so that ("ab","c") and ("a","bc") differ.
  void string(std::string_view text) {
    value(static_cast<uint64_t>(text.size()));
    bytes(text.data(), text.size());
  }
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void value(const T& v) { bytes(&v, sizeof(T)); }
  Hash128 finish() const;

 private:
  void mix(uint64_t word);
  uint64_t a_ = 0x243f6a8885a308d3, b_ = 0x13198a2e03707344;
  uint64_t pending_ = 0;  // bytes not yet mixed, little end first
  int pending_count_ = 0;
  uint64_t length_ = 0;
};

Hash128 hash_bytes(std::string_view text);

}  // namespace kiln
