// Fuzzes the llama2.c readers and the SentencePiece vocabulary built from
// untrusted pieces: the input is a checkpoint (first byte even) or a
// tokenizer.bin of a vocabulary size taken from the first two bytes (odd),
// whose vocabulary then goes through Tokenizer::from_vocabulary and encodes
// a short text. Anything but kiln::Error (crashes, sanitizer reports, other
// exceptions, views outside the input) is a bug.
#include <cstdint>
#include <vector>

#include "kiln/models/llama2c.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool tokenizer = (data[0] & 1) != 0;
  const int64_t vocab = 1 + ((static_cast<int64_t>(data[0]) << 8 | data[1]) >> 1) % 512;
  auto bytes = std::vector<std::byte>(reinterpret_cast<const std::byte*>(data) + 2,
                                      reinterpret_cast<const std::byte*>(data) + size);
  const auto source = kiln::io::from_bytes(std::move(bytes), "fuzz");
  try {
    if (!tokenizer) {
      const kiln::io::BufferStore store = kiln::models::llama::parse_llama2c(source);
      const auto all = source->bytes();
      for (const auto& name : store.names()) {
        const auto b = store.get(name).bytes();
        if (!b.empty() && (b.data() < all.data() || b.data() + b.size() > all.data() + all.size())) __builtin_trap();
      }
    } else {
      const auto v = kiln::models::llama::parse_llama2c_tokenizer(*source, vocab);
      const auto t = kiln::models::Tokenizer::from_vocabulary(v, "fuzz");
      (void)t.encode("And God said, \xe6\x97\xa5 ok");
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
