#include "bench.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <numeric>
#include <thread>

#include "kiln/io/metadata.h"
#include "kiln/io/open.h"
#include "kiln/models/generate.h"

namespace kiln::tools {
namespace {

struct Test {
  std::string name;  // pp512, tg128
  int prompt = 0, generate = 0;
  std::vector<double> rates;  // tokens/s per repetition

  double mean() const { return std::accumulate(rates.begin(), rates.end(), 0.0) / static_cast<double>(rates.size()); }
  double stddev() const {
    if (rates.size() < 2) return 0;
    double sum = 0;
    for (double r : rates) sum += (r - mean()) * (r - mean());
    return std::sqrt(sum / static_cast<double>(rates.size() - 1));
  }
};

// A GGUF's general.file_type (llama.cpp's LLAMA_FTYPE numbers), -1 for a directory.
int64_t gguf_file_type(const std::filesystem::path& model) {
  if (!std::filesystem::is_regular_file(model)) return -1;
  const io::BufferStore store = io::open(model);
  return store.metadata().contains("general.file_type") ? store.metadata<int64_t>("general.file_type") : 0;
}

// The weights' type as llama-bench names it, for the model column.
std::string weight_label(int64_t file_type, DType dtype) {
  switch (file_type) {
    case 2:
      return "Q4_0";
    case 7:
      return "Q8_0";
    case 15:
      return "Q4_K_M";
    case 18:
      return "Q6_K";
    default:
      return std::string(name(dtype));
  }
}

// The checkpoint's dtype from config.json's torch_dtype (or a GGUF's file
// type): bf16 and f16 stay as they are, anything else runs in f32.
DType checkpoint_dtype(const std::filesystem::path& model, int64_t file_type) {
  if (file_type >= 0) return file_type == 1 ? DType::f16 : file_type == 32 ? DType::bf16 : DType::f32;
  io::Metadata config;
  const auto path = model / "config.json";
  if (std::filesystem::exists(path)) config = io::load_config(path);
  const std::string torch_dtype = config.contains("torch_dtype") ? config.get<std::string>("torch_dtype") : "";
  if (torch_dtype == "bfloat16") return DType::bf16;
  if (torch_dtype == "float16") return DType::f16;
  return DType::f32;
}

}  // namespace

void bench(const BenchArgs& args) {
  if (args.repetitions < 1) fail("-r must be at least 1, got {}", args.repetitions);
  for (int p : args.prompt)
    if (p < 0) fail("-p must be >= 0, got {}", p);
  for (int n : args.generate)
    if (n < 0) fail("-n must be >= 0, got {}", n);
  const int64_t file_type = gguf_file_type(args.model);  // -1 for a directory
  DType dtype = checkpoint_dtype(args.model, file_type);
  if (!args.dtype.empty()) {
    const auto chosen = dtype_from_name(args.dtype);
    if (!chosen || (*chosen != DType::f32 && *chosen != DType::bf16 && *chosen != DType::f16))
      fail("--dtype must be f32, bf16 or f16, not '{}'", args.dtype);
    dtype = *chosen;
  }
  const int threads = args.threads > 0 ? args.threads : static_cast<int>(std::thread::hardware_concurrency());
  set_cpu_threads(threads);

  if (args.quiet) setenv("KILN_QUIET", "1", 1);
  auto progress = [&](const std::string& message) {
    if (!args.quiet) fmt::print(stderr, "[kiln] {}\n", message);
  };
  models::Generator generator(Platform::cpu(), args.model, dtype, progress);

  std::vector<Test> tests;
  for (int p : args.prompt)
    if (p > 0) tests.push_back({fmt::format("pp{}", p), p, 0, {}});
  for (int n : args.generate)
    if (n > 0) tests.push_back({fmt::format("tg{}", n), 0, n, {}});
  for (Test& test : tests) {
    auto run = [&] {
      return test.prompt > 0 ? test.prompt / generator.time_prefill(test.prompt)
                             : test.generate / generator.time_decode(test.generate);
    };
    run();  // compiles, and warms the caches and the thread pool
    for (int r = 0; r < args.repetitions; ++r) test.rates.push_back(run());
    progress(fmt::format("{}: {:.2f} tokens/s", test.name, test.mean()));
  }

  const double gib = static_cast<double>(generator.weight_bytes()) / (1024.0 * 1024.0 * 1024.0);
  const double billions = static_cast<double>(generator.parameter_count()) / 1e9;
  const std::string model = fmt::format("llama {:.1f}B {}", billions, weight_label(file_type, dtype));
  if (args.json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const Test& test : tests)
      out.push_back({{"model", model},
                     {"model_size", generator.weight_bytes()},
                     {"model_n_params", generator.parameter_count()},
                     {"backend", "CPU"},
                     {"n_threads", threads},
                     {"test", test.name},
                     {"n_prompt", test.prompt},
                     {"n_gen", test.generate},
                     {"avg_ts", test.mean()},
                     {"stddev_ts", test.stddev()},
                     {"samples_ts", test.rates}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("| {:<24} | {:>10} | {:>10} | {:<7} | {:>7} | {:>8} | {:>20} |\n", "model", "size", "params", "backend",
             "threads", "test", "t/s");
  fmt::print("| {:-<24} | {:->10} | {:->10} | {:-<7} | {:->7} | {:->8} | {:->20} |\n", ":", ":", ":", ":", ":", ":",
             ":");
  for (const Test& test : tests)
    fmt::print("| {:<24} | {:>10} | {:>10} | {:<7} | {:>7} | {:>8} | {:>20} |\n", model, fmt::format("{:.2f} GiB", gib),
               fmt::format("{:.2f} B", billions), "CPU", threads, test.name,
               fmt::format("{:.2f} ± {:.2f}", test.mean(), test.stddev()));
}

}  // namespace kiln::tools
