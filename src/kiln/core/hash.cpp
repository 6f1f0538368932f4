#include "kiln/core/hash.h"

#include <fmt/format.h>

namespace kiln {
namespace {

constexpr uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// The finaliser of SplitMix64: every input bit affects every output bit.
constexpr uint64_t avalanche(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9;
  x ^= x >> 27;
  x *= 0x94d049bb133111eb;
  return x ^ (x >> 31);
}

}  // namespace

std::string Hash128::hex() const { return fmt::format("{:016x}{:016x}", high, low); }

void Hasher::mix(uint64_t word) {
  // Two lanes with different multipliers and rotations, cross-fed, so the
  // 128 bits are not two copies of one 64-bit hash.
  a_ = rotl(a_ ^ (word * 0x9e3779b97f4a7c15), 31) * 0xc2b2ae3d27d4eb4f;
  b_ = rotl(b_ + (word * 0x165667b19e3779f9), 27) * 0x85ebca77c2b2ae63 + a_;
}

void Hasher::bytes(const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  length_ += size;
  size_t i = 0;
  for (; i < size && pending_count_ != 0; ++i) {
    pending_ |= static_cast<uint64_t>(p[i]) << (8 * pending_count_);
    if (++pending_count_ == 8) {
      mix(pending_);
      pending_ = 0;
      pending_count_ = 0;
    }
  }
  for (; i + 8 <= size; i += 8) {  // whole words (little-endian hosts only)
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    mix(word);
  }
  for (; i < size; ++i) {
    pending_ |= static_cast<uint64_t>(p[i]) << (8 * pending_count_);
    if (++pending_count_ == 8) {
      mix(pending_);
      pending_ = 0;
      pending_count_ = 0;
    }
  }
}

Hash128 Hasher::finish() const {
  Hasher h = *this;
  h.mix(h.pending_ ^ (static_cast<uint64_t>(h.pending_count_) << 56));
  h.mix(h.length_);
  return {avalanche(h.a_ ^ rotl(h.b_, 17)), avalanche(h.b_ + h.a_ * 3)};
}

Hash128 hash_bytes(std::string_view text) {
  Hasher h;
  h.bytes(text.data(), text.size());
  return h.finish();
}

}  // namespace kiln
