#pragma once
#include <filesystem>
#include <string>

namespace kiln::tools {

struct QuantizeArgs {
  std::filesystem::path in, out;
  std::string type = "q8_0";
  bool quiet = false;
};

// Writes a GGUF of the LLaMA model `in` (a directory or a GGUF) with its
// weights in `type`, showing a progress bar on stderr.
void quantize(const QuantizeArgs& args);

}  // namespace kiln::tools
