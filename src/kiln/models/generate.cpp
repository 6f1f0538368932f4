#include "kiln/models/generate.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>

#include "kiln/core/element.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/kiln_file.h"
#include "kiln/io/open.h"
#include "kiln/models/llama_gguf.h"
#include "kiln/version.h"

namespace kiln::models {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// A copy of `store` with every float tensor converted to `dtype` (done once
// at load, so calls never convert weights).
io::BufferStore converted(const io::BufferStore& store, DType dtype) {
  io::BufferStore out;
  out.metadata() = store.metadata();
  for (const auto& name : store.names()) {
    const HostBuffer& source = store.get(name);
    if (!is_float(source.dtype()) || source.dtype() == dtype) {
      out.add(name, source, store.file_of(name));
      continue;
    }
    const HostBuffer flat = source.is_contiguous() ? source : source.copy();
    HostBuffer target = HostBuffer::allocate(flat.shape().with_dtype(dtype));
    const int64_t count = flat.shape().count();
    if (flat.dtype() == DType::f32 && (dtype == DType::bf16 || dtype == DType::f16)) {  // without a double per element
      const auto* from = reinterpret_cast<const float*>(flat.data());
      auto* to = reinterpret_cast<uint16_t*>(target.mutable_data());
      if (dtype == DType::bf16)
        for (int64_t i = 0; i < count; ++i) to[i] = f32_to_bf16(from[i]);
      else
        for (int64_t i = 0; i < count; ++i) to[i] = f32_to_f16(from[i]);
    } else {
      const size_t in = size_of(flat.dtype()), out_size = size_of(dtype);
      for (int64_t i = 0; i < count; ++i)
        store_double(dtype, target.mutable_data() + i * out_size, load_double(flat.dtype(), flat.data() + i * in));
    }
    // Handed on read-only, as a mapped file's weights are, so that the
    // executables of several chunk sizes share one packed copy of it.
    const auto bytes = std::span<const std::byte>(target.data(), target.shape().byte_size());
    out.add(name, HostBuffer::borrow(target.shape(), bytes, std::make_shared<HostBuffer>(target)), store.file_of(name));
  }
  return out;
}

// The steps file: a kiln file (io/kiln_file.h) of kind "generation steps"
// whose sections are saved executables (runtime/saved_executable.cpp), named
// "step <tokens> <window>" and "sampler <temperature> <top_k> <top_p>".
constexpr std::string_view kStepsKind = "generation steps";

std::string sampler_name(const nn::SamplingOptions& s) {
  return fmt::format("sampler {} {} {}", s.temperature, s.top_k, s.top_p);
}

bool has_quantized_weights(const io::BufferStore& store) {
  return std::ranges::any_of(store.names(), [&](const std::string& n) { return is_quantized(store.get(n).dtype()); });
}

}  // namespace

Generator::Generator(const Platform& platform, const std::filesystem::path& model_dir, DType dtype,
                     std::function<void(const std::string&)> progress)
    : platform_(platform), dtype_(dtype), progress_(std::move(progress)) {
  if (dtype != DType::f32 && dtype != DType::bf16 && dtype != DType::f16)
    fail("generate: dtype must be f32, bf16 or f16, not {}", name(dtype));
  const auto start = Clock::now();
  auto say = [&](const std::string& message) {
    if (progress_) progress_(message);
  };
  say(fmt::format("loading {}", model_dir.string()));
  llama::OpenedModel opened = llama::open_model(model_dir);
  const io::BufferStore& file_store = opened.store;
  tokenizer_ = std::move(opened.tokenizer);
  if (!file_store.metadata().contains("vocab_size"))
    fail("{}: no config.json with the model's configuration (vocab_size, hidden_size, ...)", model_dir.string());
  if (dtype != DType::f32 && has_quantized_weights(file_store))
    fail("{}: its weights are block-quantized, which kiln computes with f32 activations (--dtype f32), not {}",
         model_dir.string(), name(dtype));
  store_ = converted(file_store, dtype);  // a no-op for tensors already in `dtype`
  model_ = populate<llama::CausalLM>(store_);
  llama::check_shapes(model_);
  if (tokenizer_.vocab_size() > model_.config.vocab_size)
    fail("{}: tokenizer.model has {} pieces but the model's vocab_size is {}", model_dir.string(),
         tokenizer_.vocab_size(), model_.config.vocab_size);
  weights_ = load<llama::CausalLM>(platform_, store_);
  capacity_ = model_.config.max_positions;
  load_seconds_ = seconds_since(start);
  say(fmt::format("loaded {} layers, {} weights ({}) in {:.2f} s", model_.config.num_layers, weights_.buffers.size(),
                  name(dtype), load_seconds_));
}

void Generator::save_compiled(const std::filesystem::path& path, const nn::SamplingOptions& sampling) {
  std::vector<std::pair<int64_t, int64_t>> wanted;
  for (int64_t window = window_for(1);; window = window_for(window + 1)) {
    for (int64_t tokens : {512, 128, 32, 8, 1})
      if (tokens <= window) wanted.emplace_back(tokens, window);
    if (window >= capacity_) break;
  }
  std::vector<std::pair<std::string, std::string>> sections;
  for (const auto& [tokens, window] : wanted)
    sections.emplace_back(fmt::format("step {} {}", tokens, window), step_for(tokens, window).serialize());
  sections.emplace_back(sampler_name(sampling), sampler_for(sampling).serialize());
  const std::string out = io::write_kiln_file(
      {{"kind", kStepsKind}, {"kiln_version", KILN_VERSION_STRING}, {"backend", std::string(platform_.name())}},
      sections);
  io::AtomicFile file(path);
  file.write(std::as_bytes(std::span(out)));
  file.commit();
  if (progress_) progress_(fmt::format("wrote {} compiled steps and the sampler to {}", wanted.size(), path.string()));
}

void Generator::load_compiled(const std::filesystem::path& path) {
  const auto start = Clock::now();
  const std::string where = path.string();
  io::SourcePtr source;
  try {
    source = io::map_file(path);
  } catch (const Error& e) {
    fail("cannot open the compiled steps {}: {}", where, e.what());
  }
  const std::string_view bytes(reinterpret_cast<const char*>(source->bytes().data()), source->bytes().size());
  const io::KilnFile file = io::read_kiln_file(bytes, "compiled steps", where);
  if (file.kind != kStepsKind)
    fail("{}: not a file of compiled steps (kiln compile writes them), but a kiln file of kind '{}'", where, file.kind);
  for (const auto& [name, exe] : file.sections) {
    const std::string entry = fmt::format("{} ({})", where, name);  // a sampler's, for its errors
    int64_t tokens = 0, window = 0;
    if (std::sscanf(name.c_str(), "step %ld %ld", &tokens, &window) == 2) {
      saved_steps_.insert_or_assign(std::pair{tokens, window}, exe);
    } else if (name.starts_with("sampler ")) {
      nn::SamplingOptions s;
      if (std::sscanf(name.c_str(), "sampler %lf %ld %lf", &s.temperature, &s.top_k, &s.top_p) != 3)
        fail("{}: entry '{}' is not a sampler's name", where, name);
      samplers_.insert_or_assign(std::tuple{s.temperature, s.top_k, s.top_p},
                                 Executable<Buffer>::deserialize(exe, entry, platform_));
    } else {
      fail("{}: unknown entry '{}'", where, name);
    }
  }
  compiled_file_ = path;
  compiled_source_ = std::move(source);
  if (progress_)
    progress_(fmt::format("read {} compiled steps from {} in {:.2f} s (nothing to compile)", saved_steps_.size(), where,
                          seconds_since(start)));
}

const Generator::Step& Generator::step_for(int64_t tokens, int64_t window) {
  if (auto it = steps_.find({tokens, window}); it != steps_.end()) return it->second;
  if (!compiled_file_.empty()) {
    // Loaded (and its weights packed) when first used, like a step compiled on demand.
    const auto saved = saved_steps_.find({tokens, window});
    if (saved == saved_steps_.end())
      fail("{} has no {}-token step attending over {} positions: it was compiled for another model or context",
           compiled_file_.string(), tokens, window);
    const std::string where = fmt::format("{} (step {} {})", compiled_file_.string(), tokens, window);
    return steps_
        .emplace(std::pair{tokens, window}, Step::deserialize(saved->second, where, platform_).prepare(weights_))
        .first->second;
  }
  const auto start = Clock::now();
  const Shape cache = model_.cache_shape(1, capacity_, dtype_);
  llama::CausalLM model = model_;
  model.attention_window = window;
  auto exe = compile(platform_, &llama::CausalLM::forward, model, Shape({{"b", 1}, {"s", tokens}}, DType::i32), cache,
                     cache, Shape(DType::i32));
  if (progress_)
    progress_(fmt::format("compiled the {}-token step (attending over {} positions) in {:.2f} s", tokens, window,
                          seconds_since(start)));
  return steps_.emplace(std::pair{tokens, window}, exe.prepare(weights_)).first->second;
}

int64_t Generator::window_for(int64_t end) const {
  int64_t window = std::min<int64_t>(256, capacity_);
  while (window < end) window = std::min(window * 2, capacity_);
  return window;
}

const Executable<Buffer>& Generator::sampler_for(const nn::SamplingOptions& sampling) {
  const auto key = std::tuple{sampling.temperature, sampling.top_k, sampling.top_p};
  if (auto it = samplers_.find(key); it != samplers_.end()) return it->second;
  if (!compiled_file_.empty())
    fail("{} has no sampler for --temp {} --top-k {} --top-p {}: give kiln compile the same sampling options",
         compiled_file_.string(), sampling.temperature, sampling.top_k, sampling.top_p);
  auto sampler = compile_fn(
      platform_,
      [&](Tensor logits, Tensor rng_key) {
        return nn::sample(logits.squeeze("s"), rng_key, sampling).convert(DType::i32);
      },
      Shape({{"b", 1}, {"s", 1}, {"voc", model_.config.vocab_size}}), Shape({2}, DType::u32));
  return samplers_.emplace(key, std::move(sampler)).first->second;
}

Buffer Generator::tokens_buffer(const std::vector<int>& ids) const {
  HostBuffer b = HostBuffer::allocate(Shape({{"b", 1}, {"s", static_cast<int64_t>(ids.size())}}, DType::i32));
  std::copy(ids.begin(), ids.end(), b.mutable_span<int32_t>().begin());
  return Buffer::from(platform_, b);
}

HostBuffer Generator::prompt_logits(const std::vector<int>& prompt) {
  const auto length = static_cast<int64_t>(prompt.size());
  const Step& step = step_for(length, window_for(length));
  const Shape cache = model_.cache_shape(1, capacity_, dtype_);
  HostBuffer zero = HostBuffer::allocate(Shape(DType::i32));
  auto [logits, k, v] =
      step(tokens_buffer(prompt), donate(Buffer::from(platform_, HostBuffer::allocate(cache))),
           donate(Buffer::from(platform_, HostBuffer::allocate(cache))), Buffer::from(platform_, zero));
  return logits.to_host();
}

double Generator::time_prefill(int64_t tokens) {
  if (tokens < 1 || tokens >= capacity_)
    fail("bench: a prefill of {} tokens does not fit the model's context of {}", tokens, capacity_);
  const Step& step = step_for(tokens, window_for(tokens));
  const Shape cache = model_.cache_shape(1, capacity_, dtype_);
  std::vector<int> ids(static_cast<size_t>(tokens));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int>((i * 7919 + 1) % model_.config.vocab_size);
  Buffer input = tokens_buffer(ids), k = Buffer::from(platform_, HostBuffer::allocate(cache)),
         v = Buffer::from(platform_, HostBuffer::allocate(cache)),
         position = Buffer::from(platform_, Shape(DType::i32), std::vector<int32_t>{0});
  const auto start = Clock::now();
  auto [logits, k1, v1] = step(input, donate(k), donate(v), position);
  return seconds_since(start);
}

double Generator::time_decode(int64_t tokens) {
  if (tokens < 1 || tokens >= capacity_)
    fail("bench: {} decode steps do not fit the model's context of {}", tokens, capacity_);
  for (int64_t end = 1; end <= tokens; end = window_for(end) + 1) step_for(1, window_for(end));
  const Shape cache = model_.cache_shape(1, capacity_, dtype_);
  Buffer k = Buffer::from(platform_, HostBuffer::allocate(cache)),
         v = Buffer::from(platform_, HostBuffer::allocate(cache));
  std::vector<Buffer> inputs, positions;
  for (int64_t i = 0; i < tokens; ++i) {
    inputs.push_back(tokens_buffer({static_cast<int>((i * 7919 + 1) % model_.config.vocab_size)}));
    positions.push_back(Buffer::from(platform_, Shape(DType::i32), std::vector<int32_t>{static_cast<int32_t>(i)}));
  }
  const auto start = Clock::now();
  for (int64_t i = 0; i < tokens; ++i) {
    const Step& step = step_for(1, window_for(i + 1));
    auto [logits, k1, v1] =
        step(inputs[static_cast<size_t>(i)], donate(k), donate(v), positions[static_cast<size_t>(i)]);
    k = k1;
    v = v1;
  }
  return seconds_since(start);
}

int64_t Generator::weight_bytes() const {
  int64_t bytes = 0;
  for (const Buffer& w : weights_.buffers) bytes += w.shape().byte_size();
  return bytes;
}

int64_t Generator::parameter_count() const {
  int64_t count = 0;
  for (const Buffer& w : weights_.buffers) count += w.shape().count();
  return count;
}

GenerateResult Generator::generate(const std::string& prompt, const GenerateOptions& options,
                                   const std::function<void(const std::string&)>& on_text) {
  return generate_ids(tokenizer_.encode(prompt), options, on_text);
}

GenerateResult Generator::generate_ids(std::vector<int> prompt, const GenerateOptions& options,
                                       const std::function<void(const std::string&)>& on_text) {
  const auto prompt_length = static_cast<int64_t>(prompt.size());
  if (prompt.empty()) fail("generate: the prompt is empty");
  if (prompt_length >= capacity_)
    fail("generate: the prompt has {} tokens but the model's context (max_position_embeddings) is {}", prompt_length,
         capacity_);
  for (int id : prompt)
    if (id < 0 || id >= model_.config.vocab_size)
      fail("generate: token id {} is outside the vocabulary of {}", id, model_.config.vocab_size);
  const int64_t new_tokens = std::min(options.max_new_tokens, capacity_ - prompt_length);

  const Executable<Buffer>& sample = sampler_for(options.sampling);
  const Shape cache_shape = model_.cache_shape(1, capacity_, dtype_);
  Buffer cache_k = Buffer::from(platform_, HostBuffer::allocate(cache_shape));
  Buffer cache_v = Buffer::from(platform_, HostBuffer::allocate(cache_shape));
  auto scalar = [&](int32_t value) {
    HostBuffer b = HostBuffer::allocate(Shape(DType::i32));
    b.mutable_span<int32_t>()[0] = value;
    return Buffer::from(platform_, b);
  };
  auto key = [&](int64_t step) {
    HostBuffer b = HostBuffer::allocate(Shape({2}, DType::u32));
    b.mutable_span<uint32_t>()[0] = static_cast<uint32_t>(options.seed) ^ static_cast<uint32_t>(step * 0x9E3779B9u);
    b.mutable_span<uint32_t>()[1] = static_cast<uint32_t>(options.seed >> 32);
    return Buffer::from(platform_, b);
  };
  auto token_of = [](const Buffer& b) { return b.to_host().to_vector<int32_t>()[0]; };
  const auto& eos = model_.config.eos_token_ids;
  auto is_eos = [&](int id) { return std::ranges::find(eos, id) != eos.end() || id == tokenizer_.eos_id(); };

  GenerateResult result;
  result.prompt_tokens = prompt;
  // Decode the prompt and everything generated so far, and hand out the new
  // suffix: a piece's leading space depends on what precedes it.
  const std::string prompt_text = tokenizer_.decode(prompt);
  std::vector<int> all = prompt;
  std::string printed = prompt_text;
  auto emit = [&](int id) {
    result.tokens.push_back(id);
    all.push_back(id);
    const std::string text = tokenizer_.decode(all);
    if (on_text && text.size() > printed.size() && text.starts_with(printed)) on_text(text.substr(printed.size()));
    printed = text;
  };

  // Runs `ids` at `position` through the step of `size` tokens (the ids
  // padded at the end) and returns the logits {b=1, s=1, voc} of the last id.
  auto run = [&](std::vector<int> ids, int64_t position, int64_t size) {
    const auto count = static_cast<int64_t>(ids.size());
    ids.resize(static_cast<size_t>(size), 0);
    const Step& step = step_for(size, window_for(position + size));
    auto [logits, k, v] =
        step(tokens_buffer(ids), donate(cache_k), donate(cache_v), scalar(static_cast<int32_t>(position)));
    cache_k = k;
    cache_v = v;
    return size == 1 ? logits : Buffer::from(platform_, logits.to_host().slice(1, count - 1, count));
  };

  // The prompt in chunks of the compiled sizes: 512, 128 and 32 tokens while
  // that many are left, then the rest as one chunk of 8 or 32 padded at its
  // end. A chunk costs about as much as the larger of its tokens and ~16
  // (below that, reading the weights once dominates), so one padded chunk
  // beats a run of 8-token and 1-token steps. The padding is harmless: its
  // positions come after every prompt token (the causal mask hides them) and
  // each is written again by the decode step at that position before any
  // query can see it. Where the padding would not fit in the cache, the
  // rest goes in exact chunks of 8 and 1. Every step the generation can need
  // is compiled before the clock starts.
  struct Chunk {
    int64_t start, count, size;
  };
  std::vector<Chunk> chunks;
  for (int64_t done = 0; done < prompt_length;) {
    const int64_t left = prompt_length - done;
    int64_t size = left <= 8 ? 8 : 32;
    for (int64_t full : {512, 128, 32})
      if (left >= full) {
        size = full;
        break;
      }
    if (done + size > capacity_) size = left >= 8 ? 8 : 1;
    const int64_t count = std::min(size, left);
    chunks.push_back({done, count, size});
    step_for(size, window_for(done + size));
    done += count;
  }
  for (int64_t end = prompt_length + 1; end <= prompt_length + new_tokens; end = window_for(end) + 1)
    step_for(1, window_for(end));

  auto start = Clock::now();
  Buffer last_logits;
  for (const Chunk& c : chunks)
    last_logits = run(std::vector<int>(prompt.begin() + c.start, prompt.begin() + c.start + c.count), c.start, c.size);
  int token = token_of(sample(last_logits, key(0)));
  result.prefill_seconds = seconds_since(start);
  emit(token);
  start = Clock::now();
  for (int64_t step = 1; step < new_tokens; ++step) {
    if (options.stop_at_eos && is_eos(token)) break;
    token = token_of(sample(run({token}, prompt_length + step - 1, 1), key(step)));
    emit(token);
  }
  result.decode_seconds = seconds_since(start);
  result.text =
      printed.starts_with(prompt_text) ? printed.substr(prompt_text.size()) : tokenizer_.decode(result.tokens);
  return result;
}

}  // namespace kiln::models
