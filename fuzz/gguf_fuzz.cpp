// Fuzzes the GGUF parser: any input must either parse into tensors whose
// bytes lie inside the input (or are copies) or raise kiln::Error. Crashes,
// hangs, sanitizer reports and other exception types are bugs.
#include <cstdint>
#include <vector>

#include "kiln/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes =
      std::vector<std::byte>(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    auto file = kiln::io::parse_gguf(kiln::io::from_bytes(std::move(bytes), "fuzz"));
    const auto all = file.source->bytes();
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors) {
      if (!t.bytes.empty() &&
          (t.bytes.data() < all.data() || t.bytes.data() + t.bytes.size() > all.data() + all.size()))
        __builtin_trap();
      if (t.buffer && t.buffer->bytes().size() != t.bytes.size()) __builtin_trap();
      // Touch the first and last byte so ASan checks the range is readable.
      if (!t.bytes.empty()) sink = sink + static_cast<uint8_t>(t.bytes.front()) + static_cast<uint8_t>(t.bytes.back());
    }
    (void)sink;
  } catch (const kiln::Error&) {
  }
  return 0;
}
