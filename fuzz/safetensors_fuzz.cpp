// Fuzzes the safetensors parser: any input must either parse into tensors
// (borrowed ones lying inside the input) or raise kiln::Error. Crashes, hangs,
// sanitizer reports and other exception types are bugs.
#include <cstdint>
#include <vector>

#include "kiln/io/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto bytes =
      std::vector<std::byte>(reinterpret_cast<const std::byte*>(data), reinterpret_cast<const std::byte*>(data) + size);
  try {
    auto file = kiln::io::parse_safetensors(kiln::io::from_bytes(std::move(bytes), "fuzz"));
    const auto all = file.source->bytes();
    volatile uint8_t sink = 0;
    for (const auto& t : file.tensors) {
      const auto b = t.buffer.bytes();
      // Borrowed buffers point into the input (misaligned ones are copies).
      if (t.buffer.is_borrowed() && (b.data() < all.data() || b.data() + b.size() > all.data() + all.size()))
        __builtin_trap();
      // Touch the first and last byte so ASan checks the range is readable.
      if (!b.empty()) sink = sink + static_cast<uint8_t>(b.front()) + static_cast<uint8_t>(b.back());
    }
    (void)sink;
  } catch (const kiln::Error&) {
  }
  return 0;
}
