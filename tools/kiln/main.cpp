// The kiln command line.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "bench.h"
#include "generate.h"
#include "inspect.h"
#include "kiln/core/error.h"
#include "kiln/version.h"
#include "quantize.h"

// What -m takes, for every subcommand that runs a model.
constexpr const char* kModelHelp =
    "model directory (config.json, *.safetensors, tokenizer.model), a LLaMA .gguf, or a llama2.c .bin "
    "(tokenizer.bin beside it)";

int main(int argc, char** argv) {
  CLI::App app{"kiln: compile and run ML models written as C++ structs"};
  app.set_version_flag("--version", "kiln " KILN_VERSION_STRING);
  app.require_subcommand(1);

  std::string inspect_path;
  bool inspect_json = false;
  auto* inspect = app.add_subcommand("inspect", "List the tensors and metadata of safetensors or GGUF weights");
  inspect
      ->add_option(
          "PATH", inspect_path,
          "a .safetensors file, a *.safetensors.index.json, a model directory, a .gguf file or a saved executable")
      ->required();
  inspect->add_flag("--json", inspect_json, "print {\"tensors\":[...],\"metadata\":{...}} for scripts");

  kiln::tools::GenerateArgs gen;
  auto* generate = app.add_subcommand("generate", "Generate text with a LLaMA model (directory or GGUF)");
  generate->add_option("-m,--model", gen.model, kModelHelp)->required();
  generate->add_option("-p,--prompt", gen.prompt, "the prompt text")->required();
  generate->add_option("-n,--tokens", gen.tokens, "how many tokens to generate at most")->capture_default_str();
  generate->add_option("--temp", gen.temperature, "sampling temperature; 0 is greedy")->capture_default_str();
  generate->add_option("--top-k", gen.top_k, "sample from the k most likely tokens; 0 keeps all")
      ->capture_default_str();
  generate->add_option("--top-p", gen.top_p, "sample from the smallest set reaching this probability")
      ->capture_default_str();
  generate->add_option("--seed", gen.seed, "random seed (same seed, same text)")->capture_default_str();
  generate->add_option("--dtype", gen.dtype, "compute dtype: f32, bf16 or f16")->capture_default_str();
  generate->add_flag("--json", gen.json,
                     "print {\"prompt_tokens\":[...],\"tokens\":[...],\"text\":\"...\"} for scripts");
  generate->add_option("-t,--threads", gen.threads, "CPU threads (default: one per core)");
  generate->add_flag("-q,--quiet", gen.quiet, "no progress lines on stderr");
  generate->add_option("--exe", gen.exe,
                       "steps compiled by `kiln compile` for this model, dtype and sampling: nothing is compiled "
                       "(no C++ compiler needed)");

  kiln::tools::GenerateArgs comp;
  std::filesystem::path comp_out;
  auto* compile = app.add_subcommand(
      "compile", "Compile generation ahead of time (prefill chunks, decode step, sampler) into one file for --exe");
  compile->add_option("-m,--model", comp.model, kModelHelp)->required();
  compile->add_option("-o,--output", comp_out, "the file to write")->required();
  compile->add_option("--dtype", comp.dtype, "compute dtype: f32, bf16 or f16")->capture_default_str();
  compile->add_option("--temp", comp.temperature, "the sampling temperature generate will use; 0 is greedy")
      ->capture_default_str();
  compile->add_option("--top-k", comp.top_k, "the top-k generate will use; 0 keeps all")->capture_default_str();
  compile->add_option("--top-p", comp.top_p, "the top-p generate will use")->capture_default_str();
  compile->add_flag("-q,--quiet", comp.quiet, "no progress lines on stderr");

  kiln::tools::BenchArgs bench_args;
  auto* bench = app.add_subcommand(
      "bench", "Time prefill (ppN) and decode (tgN) of a LLaMA model (directory or GGUF), as llama-bench does");
  bench->add_option("-m,--model", bench_args.model, kModelHelp)->required();
  bench->add_option("-p,--n-prompt", bench_args.prompt, "prefill lengths, comma-separated (0 skips)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("-n,--n-gen", bench_args.generate, "decode lengths, comma-separated (0 skips)")
      ->delimiter(',')
      ->capture_default_str();
  bench->add_option("-t,--threads", bench_args.threads, "CPU threads (default: one per core)");
  bench->add_option("-r,--repetitions", bench_args.repetitions, "timed runs per test, after one warm-up")
      ->capture_default_str();
  bench->add_option("--dtype", bench_args.dtype, "compute dtype: f32, bf16 or f16 (default: the checkpoint's)");
  bench->add_flag("--json", bench_args.json, "print the results as JSON");
  bench->add_flag("-q,--quiet", bench_args.quiet, "no progress lines on stderr");

  kiln::tools::QuantizeArgs quant;
  auto* quantize = app.add_subcommand(
      "quantize", "Write a LLaMA model as GGUF (llama.* and tokenizer.ggml.* metadata), its weights converted");
  quantize
      ->add_option("IN", quant.in,
                   "model directory (config.json, *.safetensors, tokenizer.model), a .gguf or a llama2.c .bin")
      ->required();
  quantize->add_option("OUT", quant.out, "the GGUF file to write")->required();
  quantize
      ->add_option("--type", quant.type,
                   "f32, f16, bf16, q8_0, q4_0, q6_k, or q4_k_m (q4_k with q6_k for the head and some attn_v and "
                   "ffn_down, as llama-quantize mixes them)")
      ->capture_default_str();
  quantize->add_flag("-q,--quiet", quant.quiet, "no progress bar on stderr");

  CLI11_PARSE(app, argc, argv);
  try {
    if (*inspect) kiln::tools::inspect(inspect_path, inspect_json, std::cout);
    if (*generate) kiln::tools::generate(gen);
    if (*bench) kiln::tools::bench(bench_args);
    if (*quantize) kiln::tools::quantize(quant);
    if (*compile) kiln::tools::compile_steps(comp, comp_out);
  } catch (const std::exception& e) {
    std::cout.flush();
    fmt::print(stderr, "kiln {}: error: {}\n", app.get_subcommands().front()->get_name(), e.what());
    return 1;
  }
  return 0;
}
