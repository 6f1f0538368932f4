#include "quantize.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "kiln/core/error.h"
#include "kiln/models/llama_gguf.h"

namespace kiln::tools {

void quantize(const QuantizeArgs& args) {
  models::llama::QuantizeOptions options;
  options.type = models::llama::quantize_type_from_name(args.type);
  const bool terminal = isatty(fileno(stderr)) != 0;
  const auto start = std::chrono::steady_clock::now();
  int last_percent = -1;
  if (!args.quiet)
    options.progress = [&](size_t done, size_t total, const std::string& tensor) {
      const int percent = static_cast<int>(100 * done / total);
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(kWidth * done / total);
      if (terminal) {
        fmt::print(stderr, "\rquantizing [{}{}] {:3}% {}/{} {:<32.32}", std::string(filled, '#'),
                   std::string(kWidth - filled, '.'), percent, done, total, tensor);
        if (done == total) fmt::print(stderr, "\n");
      } else if (percent / 10 != last_percent / 10 || done == total) {  // a line every 10% in logs
        fmt::print(stderr, "quantizing {:3}% ({}/{} tensors)\n", percent, done, total);
      }
      last_percent = percent;
    };
  models::llama::quantize(args.in, args.out, options);
  if (!args.quiet) {
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print(stderr, "wrote {} ({:.1f} MiB, {}) in {:.1f} s\n", args.out.string(),
               static_cast<double>(std::filesystem::file_size(args.out)) / (1 << 20), args.type, seconds);
  }
}

}  // namespace kiln::tools
