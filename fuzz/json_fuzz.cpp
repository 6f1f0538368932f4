// Fuzzes the JSON inputs beside the weights: config.json flattening (typed
// metadata) and the sharded index layout checks. Any input must either be
// accepted or raise kiln::Error.
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string_view>

#include "kiln/io/metadata.h"
#include "kiln/io/open.h"
#include "kiln/io/safetensors.h"

namespace {

// A directory holding one valid shard; each input becomes its index.
const std::filesystem::path& index_dir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("kiln_json_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    auto shard = kiln::io::serialize_safetensors({{"a", kiln::HostBuffer::allocate(kiln::Shape({2}))}});
    std::ofstream(d / "model-00001-of-00001.safetensors", std::ios::binary)
        .write(reinterpret_cast<const char*>(shard.data()), static_cast<std::streamsize>(shard.size()));
    return d;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto metadata = kiln::io::parse_json_metadata(text, "config.json");
    for (const auto& [key, value] : metadata.entries()) (void)kiln::io::to_string(value);
  } catch (const kiln::Error&) {
  }
  try {
    const auto index = index_dir() / "model.safetensors.index.json";
    std::ofstream(index, std::ios::binary | std::ios::trunc).write(text.data(), static_cast<std::streamsize>(size));
    (void)kiln::io::open(index, {.load_config = false});
  } catch (const kiln::Error&) {
  }
  return 0;
}
