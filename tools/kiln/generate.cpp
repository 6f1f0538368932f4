#include "generate.h"

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "kiln/models/generate.h"

namespace kiln::tools {

namespace {

DType checked(const GenerateArgs& args) {
  if (args.tokens < 1) fail("-n must be at least 1, got {}", args.tokens);
  if (args.top_k < 0) fail("--top-k must be >= 0, got {}", args.top_k);
  if (!(args.top_p > 0 && args.top_p <= 1)) fail("--top-p must be in (0, 1], got {}", args.top_p);
  const auto dtype = dtype_from_name(args.dtype);
  if (!dtype || (*dtype != DType::f32 && *dtype != DType::bf16 && *dtype != DType::f16))
    fail("--dtype must be f32, bf16 or f16, not '{}'", args.dtype);
  return *dtype;
}

}  // namespace

void compile_steps(const GenerateArgs& args, const std::filesystem::path& out) {
  const DType dtype = checked(args);
  if (args.quiet) setenv("KILN_QUIET", "1", 1);
  auto progress = [&](const std::string& message) {
    if (!args.quiet) fmt::print(stderr, "[kiln] {}\n", message);
  };
  models::Generator generator(Platform::cpu(), args.model, dtype, progress);
  generator.save_compiled(out, {args.temperature, args.top_k, args.top_p});
}

void generate(const GenerateArgs& args) {
  const DType dtype = checked(args);
  if (args.threads < 0) fail("-t must be at least 1, got {}", args.threads);
  if (args.threads > 0) set_cpu_threads(args.threads);
  if (args.quiet) setenv("KILN_QUIET", "1", 1);  // the kernel compiler's progress lines too
  auto progress = [&](const std::string& message) {
    if (!args.quiet) fmt::print(stderr, "[kiln] {}\n", message);
  };
  models::Generator generator(Platform::cpu(), args.model, dtype, progress);
  if (!args.exe.empty()) generator.load_compiled(args.exe);
  models::GenerateOptions options;
  options.max_new_tokens = args.tokens;
  options.sampling = {args.temperature, args.top_k, args.top_p};
  options.seed = args.seed;

  if (args.json) {
    const auto result = generator.generate(args.prompt, options);
    const nlohmann::ordered_json out = {
        {"prompt_tokens", result.prompt_tokens}, {"tokens", result.tokens}, {"text", result.text}};
    fmt::print("{}\n", out.dump());
    return;
  }
  bool started = false;  // the prompt is echoed once compiling is done
  const auto result = generator.generate(args.prompt, options, [&](const std::string& text) {
    fmt::print("{}{}", started ? "" : args.prompt, text);
    started = true;
    std::fflush(stdout);
  });
  const double prefill_rate = static_cast<double>(result.prompt_tokens.size()) / result.prefill_seconds;
  const auto decoded = static_cast<double>(result.tokens.size() - 1);
  fmt::print("\n\nload {:.2f} s, prefill {} tokens at {:.1f} tokens/s, decode {} tokens at {:.1f} tokens/s\n",
             generator.load_seconds(), result.prompt_tokens.size(), prefill_rate, result.tokens.size() - 1,
             decoded > 0 ? decoded / result.decode_seconds : 0.0);
}

}  // namespace kiln::tools
