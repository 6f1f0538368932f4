#pragma once
// Text generation with a LLaMA-layout model directory (config.json,
// *.safetensors, tokenizer.model). Compiled steps of a few token counts
// (prefill chunks of 512, 128, 32 and 8 tokens, and the one-token decode
// step) share a KV cache that is donated to every call and updated in
// place, so a prompt of any length compiles nothing new. Each step attends
// over a window of the cache (256, 512, ... positions up to the context)
// that covers the positions written so far, so early tokens do not pay for
// the whole context. The sampler is compiled once per sampling setting.
#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "kiln/io/weight_source.h"
#include "kiln/models/llama.h"
#include "kiln/models/tokenizer.h"
#include "kiln/nn/sampling.h"
#include "kiln/runtime/compile.h"

namespace kiln::models {

struct GenerateOptions {
  int64_t max_new_tokens = 64;
  nn::SamplingOptions sampling;  // temperature 0 is greedy
  uint64_t seed = 0;
  DType dtype = DType::f32;  // f32, bf16 or f16 compute (weights converted once at load)
  bool stop_at_eos = true;
};

struct GenerateResult {
  std::vector<int> prompt_tokens;
  std::vector<int> tokens;  // generated ids (EOS included when it stopped there)
  std::string text;         // decoded generated text
  double prefill_seconds = 0;
  double decode_seconds = 0;  // for tokens.size() - 1 decode steps
};

class Generator {
 public:
  // Loads the weights, config and tokenizer of `model_dir`; `progress`
  // receives one-line status messages (loading, compiling).
  Generator(const Platform& platform, const std::filesystem::path& model_dir, DType dtype,
            std::function<void(const std::string&)> progress = {});

  // Generates up to options.max_new_tokens after `prompt`; `on_text` gets the
  // text of each new token as it is produced.
  GenerateResult generate(const std::string& prompt, const GenerateOptions& options,
                          const std::function<void(const std::string&)>& on_text = {});
  // The same, from token ids (BOS included if wanted).
  GenerateResult generate_ids(std::vector<int> prompt, const GenerateOptions& options,
                              const std::function<void(const std::string&)>& on_text = {});

  // Ahead-of-time compilation (kiln compile / kiln generate --exe): compiles
  // every step a generation can use (each prefill chunk size and the decode
  // step, for every attention window up to the context) and the sampler for
  // `sampling`, and writes them to one file. load_compiled reads such a file
  // (made for this model's shapes and dtype: a mismatch is an error naming
  // the weight) so that generating compiles nothing, with no C++ compiler.
  void save_compiled(const std::filesystem::path& path, const nn::SamplingOptions& sampling);
  void load_compiled(const std::filesystem::path& path);

  const llama::Config& config() const { return model_.config; }
  const Tokenizer& tokenizer() const { return tokenizer_; }
  double load_seconds() const { return load_seconds_; }

  // The logits {b=1, s, voc} (f32) of the whole prompt, for parity checks.
  HostBuffer prompt_logits(const std::vector<int>& prompt);

  // Benchmarks in llama-bench's sense: the model's forward steps alone (no
  // sampling, no tokenizer), on an empty KV cache. Seconds for one call of
  // `tokens` tokens (prefill), or for `tokens` one-token calls at positions
  // 0, 1, ... (decode). The steps are compiled before the clock starts.
  double time_prefill(int64_t tokens);
  double time_decode(int64_t tokens);
  // Bytes of the weights as the executables read them.
  int64_t weight_bytes() const;
  int64_t parameter_count() const;

 private:
  using Step = Executable<std::tuple<Buffer, Buffer, Buffer>>;
  // The prepared executable for `tokens` new tokens per call attending over
  // the first `window` cache positions (compiled once).
  const Step& step_for(int64_t tokens, int64_t window);
  // The smallest window holding positions [0, end).
  int64_t window_for(int64_t end) const;
  // The sampler for one position's logits {b=1, s=1, voc} (compiled once per setting).
  const Executable<Buffer>& sampler_for(const nn::SamplingOptions& sampling);
  Buffer tokens_buffer(const std::vector<int>& ids) const;

  Platform platform_;
  DType dtype_;
  std::function<void(const std::string&)> progress_;
  io::BufferStore store_;
  llama::CausalLM model_;
  Weights<llama::CausalLM> weights_;
  Tokenizer tokenizer_;
  std::map<std::pair<int64_t, int64_t>, Step> steps_;
  std::map<std::tuple<double, int64_t, double>, Executable<Buffer>> samplers_;
  int64_t capacity_ = 0;
  double load_seconds_ = 0;
  std::filesystem::path compiled_file_;  // load_compiled's: every step and sampler comes from it
  io::SourcePtr compiled_source_;        // that file, mapped
  std::map<std::pair<int64_t, int64_t>, std::string_view> saved_steps_;  // its steps (in it), loaded when first used
};

}  // namespace kiln::models
