// The optimizing CPU backend (Platform::cpu()) against peers measured in the
// same run, kiln and peer interleaved rep by rep (A B A B ...), medians over
// the reps:
//   matmul        kiln's compiled x.dot(w) with w a prepared (packed) weight,
//                 vs oneDNN's matmul called directly (bench/peers/onednn_direct.h)
//   norm          nn::RmsNorm and softmax over {32,128,128} f32 vs the time the
//                 bytes they move take at the measured memory read bandwidth
//   layer         one LLaMA decoder layer (models::llama::DecoderLayer) at
//                 TinyLlama shapes, a 128-token prefill (PyTorch's side is
//                 bench/peers/torch_layer.py, run by bench/cpu_backend.sh)
//   compile-time  compile() of the 22-layer TinyLlama-shaped CausalLM decode
//                 step, once, in this process (run it twice with one fresh
//                 KILN_CACHE_DIR for cold and warm; `all` does that itself)
// Threads: OpenMP's (OMP_NUM_THREADS, default: every core), for kiln and the
// peers alike. Weights are random N(0, 0.02) made in memory.
//
// Usage: kiln_bench_cpu [all|matmul|norm|layer|compile-time] [--json] [--reps N] ...
//        (kiln_bench_cpu --help, or SUBCOMMAND --help, lists the options)
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "kiln/models/llama.h"
#include "kiln/runtime/compile.h"
#include "onednn_direct.h"

namespace kiln::bench {

// A prepared weight multiplied from the right: x{m,k} . w{k,n} -> {m,n} f32
// (bf16 operands accumulate and return f32, as the oneDNN peer does).
struct MatmulWeight {
  Tensor w;  // [k, n], the layout the peer's weights start from
  Tensor forward(Tensor x) const { return x.dot(w.with_tags({"k", "n"}), {"k"}, DType::f32); }
};
KILN_FIELDS(MatmulWeight, w)

// The same product with the weight stored [n, k], as nn::Linear (and every
// Hugging Face checkpoint) keeps it.
struct MatmulWeightOutIn {
  Tensor w;  // [n, k]
  Tensor forward(Tensor x) const { return x.dot(w.with_tags({"n", "k"}), {"k"}, DType::f32); }
};
KILN_FIELDS(MatmulWeightOutIn, w)

namespace {

using Clock = std::chrono::steady_clock;
using Json = nlohmann::json;

const Platform& cpu() {
  static const Platform platform = Platform::cpu();
  return platform;
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// Milliseconds of one call of `fn`, destruction of what it returns included.
template <typename F>
double time_ms(F&& fn) {
  const auto start = Clock::now();
  { auto result = fn(); }
  return ms_since(start);
}

struct Stats {
  double median = 0, min = 0, max = 0;
  int count = 0;
};

Stats stats_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v.front(), v.back(), static_cast<int>(n)};
}

Json stats_json(const Stats& s) {
  return {{"median_ms", s.median}, {"min_ms", s.min}, {"max_ms", s.max}, {"reps", s.count}};
}

// How busy the machine was with other work while a section ran: the CPU
// time /proc/stat counts for the whole machine, less this process's own (all
// its threads, and the children it waited for), per second of wall time, in
// cores; and the hypervisor's steal share. A build running alongside shows
// up as others_cores ~1-2 (of 2 on the development machine).
class LoadMeter {
 public:
  LoadMeter() : start_(sample()) {}
  Json stop() const {
    const Sample end = sample();
    const double wall = std::chrono::duration<double>(end.when - start_.when).count();
    const double busy = (end.busy - start_.busy) / ticks_per_second();
    const double own = end.own - start_.own;
    const double total = end.busy + end.idle + end.steal - start_.busy - start_.idle - start_.steal;
    return {{"others_cores", wall > 0 ? std::max(0.0, (busy - own) / wall) : 0.0},
            {"steal_pct", total > 0 ? 100.0 * (end.steal - start_.steal) / total : 0.0},
            {"wall_s", wall}};
  }

 private:
  struct Sample {
    Clock::time_point when;
    double busy = 0, idle = 0, steal = 0;  // jiffies, every CPU
    double own = 0;                        // seconds of this process's CPU time
  };
  static double ticks_per_second() { return static_cast<double>(sysconf(_SC_CLK_TCK)); }
  static Sample sample() {
    Sample s;
    s.when = Clock::now();
    std::ifstream stat("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    stat >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    s.busy = user + nice + system + irq + softirq;
    s.idle = idle + iowait;
    s.steal = steal;
    // Children that were waited for count as ours: the compiler runs kiln starts.
    auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    for (const int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
      rusage usage{};
      getrusage(who, &usage);
      s.own += seconds(usage.ru_utime) + seconds(usage.ru_stime);
    }
    return s;
  }
  Sample start_;
};

std::string load_line(const Json& load) {
  return fmt::format("(others used {:.2f} cores meanwhile, steal {:.0f}%)", load["others_cores"].get<double>(),
                     load["steal_pct"].get<double>());
}

// Standard normal values, made once and copied out from seeded offsets: far
// faster than drawing each of the ~1.1e9 TinyLlama weights, and as good for
// timing (the values never change the work done).
class NormalPool {
 public:
  static const NormalPool& get() {
    static const NormalPool pool;
    return pool;
  }

  // `shape` (f32 or bf16) filled with N(0, stddev) values.
  HostBuffer make(const Shape& shape, double stddev, uint64_t seed) const {
    HostBuffer b = HostBuffer::uninitialized(shape);
    const auto scale = static_cast<float>(stddev);
    size_t at = std::mt19937_64(seed)() % kSize;
    auto fill = [&](auto out, auto convert) {
      for (size_t i = 0; i < out.size();) {
        const size_t n = std::min(out.size() - i, kSize - at);
        for (size_t j = 0; j < n; ++j) out[i + j] = convert(values_[at + j] * scale);
        i += n;
        at = 0;
      }
    };
    if (shape.dtype() == DType::f32)
      fill(b.mutable_span<float>(), [](float v) { return v; });
    else if (shape.dtype() == DType::bf16)
      fill(b.mutable_span<uint16_t>(), [](float v) { return f32_to_bf16(v); });
    else
      fail("[bench] random values of dtype {} are not supported", name(shape.dtype()));
    return b;
  }

  static HostBuffer ones(const Shape& shape) {
    HostBuffer b = HostBuffer::uninitialized(shape);
    if (shape.dtype() == DType::f32)
      std::ranges::fill(b.mutable_span<float>(), 1.0f);
    else
      std::ranges::fill(b.mutable_span<uint16_t>(), f32_to_bf16(1.0f));
    return b;
  }

 private:
  static constexpr size_t kSize = size_t{1} << 22;
  NormalPool() : values_(kSize) {
    std::mt19937 rng(0);
    std::normal_distribution<float> normal;
    for (float& v : values_) v = normal(rng);
  }
  std::vector<float> values_;
};

bool all_finite(const HostBuffer& b) {
  if (b.dtype() == DType::f32) return std::ranges::all_of(b.span<float>(), [](float v) { return std::isfinite(v); });
  if (b.dtype() == DType::bf16)
    return std::ranges::all_of(b.span<uint16_t>(), [](uint16_t v) { return std::isfinite(bf16_to_f32(v)); });
  fail("[bench] finiteness of dtype {} is not checked", name(b.dtype()));
}

void check_finite(const Buffer& b, std::string_view what) {
  if (!all_finite(b.to_host())) fail("[bench] {}: kiln's output has non-finite values", what);
}

DType parse_dtype(const std::string& s) {
  if (s == "f32") return DType::f32;
  if (s == "bf16") return DType::bf16;
  fail("[bench] dtype must be f32 or bf16, not '{}'", s);
}

Buffer scalar_i32(int32_t value) {
  HostBuffer b = HostBuffer::allocate(Shape(DType::i32));
  b.mutable_span<int32_t>()[0] = value;
  return Buffer::from(cpu(), b);
}

// Progress lines go to stderr, so that --json keeps stdout clean.
template <typename... Args>
void say(fmt::format_string<Args...> format, Args&&... args) {
  fmt::print(stderr, "kiln_bench_cpu: {}\n", fmt::format(format, std::forward<Args>(args)...));
}

// --- a. matmul --------------------------------------------------------------

struct MatmulCase {
  int64_t m, n, k;
  bool bf16;
  bool out_in = false;  // the weight stored [n, k] (nn::Linear's layout) instead of [k, n]
};

template <typename Model>
Json bench_matmul(const MatmulCase& c, int reps) {
  const DType dtype = c.bf16 ? DType::bf16 : DType::f32;
  io::BufferStore store;
  store.add("w", NormalPool::get().make(c.out_in ? Shape({c.n, c.k}, dtype) : Shape({c.k, c.n}, dtype), 0.02, 2),
            "memory");
  const auto compile_start = Clock::now();
  auto exe = compile(cpu(), &Model::forward, store, Shape({{"m", c.m}, {"k", c.k}}, dtype));
  const double compile_ms = ms_since(compile_start);
  const auto prepare_start = Clock::now();
  auto run = exe.prepare(load<Model>(cpu(), store));  // packs w
  const double prepare_ms = ms_since(prepare_start);
  const Buffer x = Buffer::from(cpu(), NormalPool::get().make(Shape({{"m", c.m}, {"k", c.k}}, dtype), 1.0, 1));
  check_finite(run(x), "matmul");

  // Each rep: kiln, then the peer, each one untimed run then one timed run
  // (onednn_matmul_ms(.., 1) warms up once before its timed run).
  std::vector<double> kiln_ms, peer_ms;
  const LoadMeter meter;
  for (int r = 0; r < reps; ++r) {
    run(x);
    kiln_ms.push_back(time_ms([&] { return run(x); }));
    peer_ms.push_back(onednn_matmul_ms(c.m, c.n, c.k, c.bf16, 1).at(0));
  }
  const Stats kiln = stats_of(kiln_ms), peer = stats_of(peer_ms);
  const double gflop = 2.0 * static_cast<double>(c.m) * static_cast<double>(c.n) * static_cast<double>(c.k) / 1e9;
  return {{"m", c.m},
          {"n", c.n},
          {"k", c.k},
          {"dtype", c.bf16 ? "bf16" : "f32"},
          {"weight_layout", c.out_in ? "[n,k]" : "[k,n]"},
          {"gflop", gflop},
          {"kiln", stats_json(kiln)},
          {"onednn", stats_json(peer)},
          {"kiln_gflops", gflop / kiln.median * 1e3},
          {"onednn_gflops", gflop / peer.median * 1e3},
          {"ratio_kiln_over_onednn", kiln.median / peer.median},
          {"kiln_compile_ms", compile_ms},
          {"kiln_prepare_ms", prepare_ms},
          {"load", meter.stop()}};
}

Json bench_matmuls(int reps) {
  Json rows = Json::array();
  for (const MatmulCase& c : {MatmulCase{2048, 2048, 2048, false}, MatmulCase{2048, 2048, 2048, true},
                              MatmulCase{512, 5632, 2048, false}, MatmulCase{512, 5632, 2048, true},
                              MatmulCase{512, 5632, 2048, false, true}, MatmulCase{512, 5632, 2048, true, true}}) {
    say("matmul M={} N={} K={} {} w{}", c.m, c.n, c.k, c.bf16 ? "bf16" : "f32", c.out_in ? "[n,k]" : "[k,n]");
    rows.push_back(c.out_in ? bench_matmul<MatmulWeightOutIn>(c, reps) : bench_matmul<MatmulWeight>(c, reps));
  }
  return rows;
}

// --- b. RMSNorm and softmax against the memory bandwidth -----------------------

// The memory-bound time of moving `bytes` at `gbs` GB/s, in ms.
double bound_ms(double bytes, double gbs) { return bytes / (gbs * 1e9) * 1e3; }

Json bench_norms(int reps) {
  const Shape shape({{"b", 32}, {"s", 128}, {"d", 128}}, DType::f32);
  const double tensor_bytes = static_cast<double>(shape.byte_size());
  say("read bandwidth (1 GiB buffer)");
  const double gbs = read_bandwidth_gbs(size_t{1} << 30, 10);

  io::BufferStore store;
  store.add("weight", NormalPool::ones(Shape({128}, DType::f32)), "memory");
  nn::RmsNorm norm = populate<nn::RmsNorm>(store);
  norm.eps = 1e-5;
  auto rmsnorm = compile(
                     cpu(), [](const nn::RmsNorm& n, Tensor x) { return n(x, "d"); }, norm, shape)
                     .prepare(load<nn::RmsNorm>(cpu(), store));
  auto softmax = compile_fn(
      cpu(), [](Tensor x) { return x.softmax("d"); }, shape);
  const Buffer x = Buffer::from(cpu(), NormalPool::get().make(shape, 1.0, 3));
  check_finite(rmsnorm(x), "rmsnorm");
  check_finite(softmax(x), "softmax");

  // The two ops alternate call by call.
  std::vector<double> norm_ms, softmax_ms;
  const LoadMeter meter;
  for (int r = -10; r < reps; ++r) {  // 10 warm-ups
    const double a = time_ms([&] { return rmsnorm(x); });
    const double b = time_ms([&] { return softmax(x); });
    if (r < 0) continue;
    norm_ms.push_back(a);
    softmax_ms.push_back(b);
  }
  auto row = [&](std::string_view op, const Stats& s, double bytes) {
    const double bound = bound_ms(bytes, gbs);
    return Json{{"op", std::string(op)},
                {"shape", {32, 128, 128}},
                {"dtype", "f32"},
                {"kiln", stats_json(s)},
                {"bytes", bytes},
                {"bandwidth_bound_ms", bound},
                {"ratio_kiln_over_bound", s.median / bound}};
  };
  return {{"read_bandwidth_gbs", gbs},
          {"load", meter.stop()},
          {"ops",
           {row("rmsnorm", stats_of(norm_ms), 2 * tensor_bytes + 128 * 4),
            row("softmax", stats_of(softmax_ms), 2 * tensor_bytes)}}};
}

// --- c. one LLaMA decoder layer ----------------------------------------------

constexpr int64_t kHidden = 2048, kIntermediate = 5632, kHeads = 32, kKvHeads = 4, kHeadDim = 64;
constexpr int64_t kVocab = 32000, kLayers = 22, kMaxPositions = 2048;

// config.json of TinyLlama-1.1B, as io::open would flatten it.
io::Metadata tinyllama_config() {
  io::Metadata m;
  m.set("architectures", std::vector<std::string>{"LlamaForCausalLM"});
  m.set("model_type", std::string("llama"));
  m.set("hidden_size", kHidden);
  m.set("intermediate_size", kIntermediate);
  m.set("num_hidden_layers", kLayers);
  m.set("num_attention_heads", kHeads);
  m.set("num_key_value_heads", kKvHeads);
  m.set("max_position_embeddings", kMaxPositions);
  m.set("vocab_size", kVocab);
  m.set("rms_norm_eps", 1e-5);
  m.set("rope_theta", 10000.0);
  m.set("rope_scaling", std::monostate{});
  m.set("tie_word_embeddings", false);
  m.set("bos_token_id", int64_t{1});
  m.set("eos_token_id", int64_t{2});
  m.set("torch_dtype", std::string("float32"));
  return m;
}

// The weights of one decoder layer under `prefix` ("" or "model.layers.N"),
// Hugging Face names and layouts, N(0, 0.02); norm weights are ones.
void add_layer(io::BufferStore& store, const std::string& prefix, DType dtype, uint64_t seed) {
  const NormalPool& pool = NormalPool::get();
  auto add = [&](const std::string& name, HostBuffer b) {
    store.add(prefix.empty() ? name : prefix + "." + name, std::move(b), "memory");
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    add(name + ".weight", pool.make(Shape({out, in}, dtype), 0.02, seed++));
  };
  add("input_layernorm.weight", NormalPool::ones(Shape({kHidden}, dtype)));
  add("post_attention_layernorm.weight", NormalPool::ones(Shape({kHidden}, dtype)));
  linear("self_attn.q_proj", kHeads * kHeadDim, kHidden);
  linear("self_attn.k_proj", kKvHeads * kHeadDim, kHidden);
  linear("self_attn.v_proj", kKvHeads * kHeadDim, kHidden);
  linear("self_attn.o_proj", kHidden, kHeads * kHeadDim);
  linear("mlp.gate_proj", kIntermediate, kHidden);
  linear("mlp.up_proj", kIntermediate, kHidden);
  linear("mlp.down_proj", kHidden, kIntermediate);
}

// x {b, s, d} at positions pos..pos+s-1 through the layer and its cache, as
// tests/nn/decoder_layer_test.cpp (and CausalLM::forward, per layer) do.
std::tuple<Tensor, Tensor, Tensor> layer_step(const models::llama::DecoderLayer& layer, Tensor x, Tensor cache_k,
                                              Tensor cache_v, Tensor pos) {
  const Tensor positions = iota(Shape({{"s", x.dim("s")}}, DType::i32), "s") + pos;
  auto [y, cache] = layer.forward(x, positions, nn::KvCache{cache_k, cache_v}, pos);
  return {y, cache.k, cache.v};
}

// Prefill FLOPs of the layer: the projections, plus q.k and p.v over the
// cache's capacity (kiln attends over all of it, masked).
double layer_gflop(int64_t tokens, int64_t capacity) {
  const double projections =
      2.0 * tokens * kHidden * (2 * kHeads * kHeadDim + 2 * kKvHeads * kHeadDim + 3 * kIntermediate);
  const double attention = 2.0 * 2.0 * kHeads * tokens * capacity * kHeadDim;
  return (projections + attention) / 1e9;
}

Json bench_layer(DType dtype, int64_t tokens, int64_t capacity, int reps) {
  io::BufferStore store;
  store.metadata() = tinyllama_config();
  add_layer(store, "", dtype, 10);
  const Shape x_shape({{"b", 1}, {"s", tokens}, {"d", kHidden}}, dtype);
  const Shape cache_shape({{"b", 1}, {"h", kKvHeads}, {"t", capacity}, {"hd", kHeadDim}}, dtype);
  const auto compile_start = Clock::now();
  auto exe = compile<models::llama::DecoderLayer>(cpu(), layer_step, store, x_shape, cache_shape, cache_shape,
                                                  Shape(DType::i32));
  const double compile_s = ms_since(compile_start) / 1e3;
  const auto prepare_start = Clock::now();
  auto prefill = exe.prepare(load<models::llama::DecoderLayer>(cpu(), store));
  const double prepare_s = ms_since(prepare_start) / 1e3;

  const Buffer x = Buffer::from(cpu(), NormalPool::get().make(x_shape, 1.0, 1));
  const Buffer pos = scalar_i32(0);
  Buffer k = Buffer::from(cpu(), HostBuffer::allocate(cache_shape));
  Buffer v = Buffer::from(cpu(), HostBuffer::allocate(cache_shape));
  // The cache is donated to every call and comes back updated, as in generate.
  auto call = [&] {
    auto [y, k1, v1] = prefill(x, donate(k), donate(v), pos);
    k = k1;
    v = v1;
    return y;
  };
  check_finite(call(), "decoder layer");
  std::vector<double> ms;
  const LoadMeter meter;
  for (int r = -2; r < reps; ++r) {  // 2 more warm-ups
    const double t = time_ms(call);
    if (r >= 0) ms.push_back(t);
  }
  const Stats s = stats_of(ms);
  const double gflop = layer_gflop(tokens, capacity);
  return {{"op", "decoder_layer"},
          {"dtype", dtype == DType::bf16 ? "bf16" : "f32"},
          {"tokens", tokens},
          {"capacity", capacity},
          {"batch", 1},
          {"threads", omp_get_max_threads()},
          {"kiln", stats_json(s)},
          {"median_ms", s.median},
          {"gflop", gflop},
          {"gflops", gflop / s.median * 1e3},
          {"compile_s", compile_s},
          {"prepare_s", prepare_s},
          {"load", meter.stop()}};
}

// --- d. compile time of the TinyLlama decode step ------------------------------

Json compile_decode(DType dtype, bool run_step) {
  const auto fill_start = Clock::now();
  io::BufferStore store;
  store.metadata() = tinyllama_config();
  const NormalPool& pool = NormalPool::get();
  store.add("model.embed_tokens.weight", pool.make(Shape({kVocab, kHidden}, dtype), 0.02, 1), "memory");
  for (int64_t i = 0; i < kLayers; ++i) add_layer(store, fmt::format("model.layers.{}", i), dtype, 100 + 10 * i);
  store.add("model.norm.weight", NormalPool::ones(Shape({kHidden}, dtype)), "memory");
  store.add("lm_head.weight", pool.make(Shape({kVocab, kHidden}, dtype), 0.02, 2), "memory");
  const models::llama::CausalLM model = populate<models::llama::CausalLM>(store);
  models::llama::check_shapes(model);
  const double fill_s = ms_since(fill_start) / 1e3;

  // What Generator::step_for does for the one-token step.
  const Shape cache = model.cache_shape(1, model.config.max_positions, dtype);
  const LoadMeter meter;
  const auto start = Clock::now();
  auto exe = compile(cpu(), &models::llama::CausalLM::forward, model, Shape({{"b", 1}, {"s", 1}}, DType::i32), cache,
                     cache, Shape(DType::i32));
  const double compile_s = ms_since(start) / 1e3;

  const char* dir = std::getenv("KILN_CACHE_DIR");
  Json result = {{"mode", "compile-time"},
                 {"graph", "TinyLlama CausalLM decode step (22 layers, 1 token, cache 2048)"},
                 {"dtype", dtype == DType::bf16 ? "bf16" : "f32"},
                 {"threads", omp_get_max_threads()},
                 {"kiln_cache_dir", dir ? dir : ""},
                 {"make_weights_s", fill_s},
                 {"compile_s", compile_s},
                 {"load", meter.stop()}};
  if (run_step) {
    // A sanity check of the compiled step, and what one decode step costs.
    const auto prepare_start = Clock::now();
    auto decode = exe.prepare(load<models::llama::CausalLM>(cpu(), store));
    result["prepare_s"] = ms_since(prepare_start) / 1e3;
    HostBuffer token = HostBuffer::allocate(Shape({{"b", 1}, {"s", 1}}, DType::i32));
    token.mutable_span<int32_t>()[0] = 1;
    const Buffer tokens = Buffer::from(cpu(), token);
    Buffer k = Buffer::from(cpu(), HostBuffer::allocate(cache));
    Buffer v = Buffer::from(cpu(), HostBuffer::allocate(cache));
    std::vector<double> ms;
    const LoadMeter step_meter;
    for (int step = 0; step < 6; ++step) {
      const auto t = Clock::now();
      auto [logits, k1, v1] = decode(tokens, donate(k), donate(v), scalar_i32(step));
      const double elapsed = ms_since(t);
      if (step == 0) check_finite(logits, "decode step logits");
      if (step > 0) ms.push_back(elapsed);  // the first call is a warm-up
      k = k1;
      v = v1;
    }
    result["decode_step"] = stats_json(stats_of(ms));
    result["decode_step"]["load"] = step_meter.stop();
  }
  return result;
}

// Runs this binary's compile-time mode in a child process with
// KILN_CACHE_DIR=dir and returns its JSON.
Json compile_in_child(const std::filesystem::path& dir, DType dtype, bool run_step) {
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  const std::string command = fmt::format("KILN_CACHE_DIR='{}' '{}' compile-time --json --dtype {}{}", dir.string(),
                                          exe, dtype == DType::bf16 ? "bf16" : "f32", run_step ? " --run-step" : "");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) fail("[bench] could not run '{}'", command);
  std::string out;
  char chunk[4096];
  while (size_t n = fread(chunk, 1, sizeof chunk, pipe)) out.append(chunk, n);
  const int status = pclose(pipe);
  if (status != 0) fail("[bench] '{}' failed (status {}): {}", command, status, out);
  return Json::parse(out);
}

std::filesystem::path fresh_cache_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "kiln-bench-cache-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) fail("[bench] mkdtemp({}) failed", pattern);
  return pattern;
}

Json bench_compile_cold_warm(DType dtype) {
  const std::filesystem::path dir = fresh_cache_dir();
  say("compile time, cold (KILN_CACHE_DIR={}, empty)", dir.string());
  Json cold = compile_in_child(dir, dtype, false);
  say("compile time, warm (same KILN_CACHE_DIR, a second process)");
  Json warm = compile_in_child(dir, dtype, false);
  std::filesystem::remove_all(dir);
  return {{"dtype", cold["dtype"]},
          {"cold_s", cold["compile_s"]},
          {"warm_s", warm["compile_s"]},
          {"cold_load", cold["load"]},
          {"warm_load", warm["load"]}};
}

// --- output ------------------------------------------------------------------------

void print_matmuls(const Json& rows) {
  fmt::print(
      "\n== a. matmul: kiln x.dot(w), w a weight packed at prepare, vs oneDNN direct (medians; w [n,k]: nn::Linear "
      "layout, oneDNN still [k,n])\n");
  fmt::print("{:<22} {:<5} {:<6} {:>10} {:>10} {:>11} {:>11} {:>11} {:>11} {:>7}\n", "M x N x K", "dtype", "w",
             "kiln ms", "oneDNN ms", "kiln GF/s", "oneDNN GF/s", "kiln/oneDNN", "prepare ms", "others");
  for (const Json& r : rows)
    fmt::print("{:<22} {:<5} {:<6} {:>10.2f} {:>10.2f} {:>11.1f} {:>11.1f} {:>11.3f} {:>11.1f} {:>7.2f}\n",
               fmt::format("{} x {} x {}", r["m"].get<int64_t>(), r["n"].get<int64_t>(), r["k"].get<int64_t>()),
               r["dtype"].get<std::string>(), r["weight_layout"].get<std::string>(),
               r["kiln"]["median_ms"].get<double>(), r["onednn"]["median_ms"].get<double>(),
               r["kiln_gflops"].get<double>(), r["onednn_gflops"].get<double>(),
               r["ratio_kiln_over_onednn"].get<double>(), r["kiln_prepare_ms"].get<double>(),
               r["load"]["others_cores"].get<double>());
  fmt::print("others: cores other processes kept busy during the row's timed reps\n");
}

void print_norms(const Json& n) {
  fmt::print("\n== b. {{32,128,128}} f32 vs memory bandwidth ({:.1f} GB/s read, 1 GiB buffer)\n",
             n["read_bandwidth_gbs"].get<double>());
  fmt::print("{:<10} {:>10} {:>10} {:>10} {:>12} {:>11}\n", "op", "kiln ms", "min ms", "KiB moved", "bound ms",
             "kiln/bound");
  for (const Json& r : n["ops"])
    fmt::print("{:<10} {:>10.4f} {:>10.4f} {:>10.0f} {:>12.4f} {:>11.2f}\n", r["op"].get<std::string>(),
               r["kiln"]["median_ms"].get<double>(), r["kiln"]["min_ms"].get<double>(), r["bytes"].get<double>() / 1024,
               r["bandwidth_bound_ms"].get<double>(), r["ratio_kiln_over_bound"].get<double>());
  fmt::print("{}\n", load_line(n["load"]));
}

void print_layers(const Json& rows) {
  fmt::print("\n== c. LLaMA decoder layer, TinyLlama shapes, prefill (kiln; PyTorch: bench/cpu_backend.sh)\n");
  fmt::print("{:<5} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>11} {:>7}\n", "dtype", "tokens", "capacity", "median ms",
             "min ms", "max ms", "GFLOP/s", "compile s", "others");
  for (const Json& r : rows)
    fmt::print("{:<5} {:>7} {:>9} {:>10.2f} {:>10.2f} {:>10.2f} {:>10.1f} {:>11.2f} {:>7.2f}\n",
               r["dtype"].get<std::string>(), r["tokens"].get<int64_t>(), r["capacity"].get<int64_t>(),
               r["kiln"]["median_ms"].get<double>(), r["kiln"]["min_ms"].get<double>(),
               r["kiln"]["max_ms"].get<double>(), r["gflops"].get<double>(), r["compile_s"].get<double>(),
               r["load"]["others_cores"].get<double>());
}

void print_compile(const Json& c) {
  fmt::print("\n== d. compile() of the TinyLlama decode step (22 layers), one process each\n");
  fmt::print("{:<5} {:>10} {:>10}\n", "dtype", "cold s", "warm s");
  fmt::print("{:<5} {:>10.2f} {:>10.2f}\n", c["dtype"].get<std::string>(), c["cold_s"].get<double>(),
             c["warm_s"].get<double>());
  fmt::print("cold {}; warm {}\n", load_line(c["cold_load"]), load_line(c["warm_load"]));
}

void print_header() {
  fmt::print("kiln_bench_cpu: {}, OpenMP threads {}\n", cpu().backend().description(), omp_get_max_threads());
}

}  // namespace
}  // namespace kiln::bench

int main(int argc, char** argv) {
  using namespace kiln::bench;
  CLI::App app{
      "kiln's CPU backend against oneDNN, the memory bandwidth and itself (see bench/cpu_backend.sh for PyTorch)"};
  app.require_subcommand(0, 1);
  bool json = false;
  app.add_flag("--json", json, "print one JSON object instead of tables");

  int reps = 0;
  std::string dtype = "f32";
  int64_t tokens = 128, capacity = 0;
  bool run_step = false;
  auto add_reps = [&](CLI::App* sub, const char* what) {
    sub->add_option("--reps", reps, what);
    sub->add_flag("--json", json, "print one JSON object instead of a table");
  };
  CLI::App* all = app.add_subcommand("all", "every section (the default): a, b, c (f32 and bf16) and d");
  add_reps(all, "reps per measurement (default: 10 matmul, 300 norm, 10 layer)");
  CLI::App* matmul = app.add_subcommand("matmul", "a. matmuls vs oneDNN");
  add_reps(matmul, "interleaved reps (default 10)");
  CLI::App* norm = app.add_subcommand("norm", "b. RMSNorm and softmax vs the memory bandwidth");
  add_reps(norm, "reps (default 300)");
  CLI::App* layer = app.add_subcommand("layer", "c. one decoder layer, prefill");
  add_reps(layer, "timed calls (default 10, after 3 warm-ups)");
  layer->add_option("--dtype", dtype, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  layer->add_option("--tokens", tokens, "prefill tokens (default 128)");
  layer->add_option("--capacity", capacity, "KV cache capacity (default: the tokens)");
  CLI::App* compile_time = app.add_subcommand("compile-time", "d. compile() of the decode step, once, in this process");
  compile_time->add_option("--dtype", dtype, "f32 or bf16")->check(CLI::IsMember({"f32", "bf16"}));
  compile_time->add_flag("--run-step", run_step,
                         "then prepare and time a few decode steps (needs ~2x the weights' RAM)");
  compile_time->add_flag("--json", json, "print one JSON object");
  int64_t bandwidth_mib = 1024;
  CLI::App* bandwidth = app.add_subcommand("bandwidth", "the memory read bandwidth alone (median of --reps passes)");
  add_reps(bandwidth, "passes over the buffer (default 10)");
  bandwidth->add_option("--mib", bandwidth_mib, "buffer size in MiB (default 1024, far beyond the caches)");
  CLI11_PARSE(app, argc, argv);

  auto pick = [&](int fallback) { return reps > 0 ? reps : fallback; };
  try {
    if (*bandwidth) {
      const double gbs = read_bandwidth_gbs(static_cast<size_t>(bandwidth_mib) << 20, pick(10));
      if (json)
        fmt::print("{}\n", Json{{"read_bandwidth_gbs", gbs}, {"threads", omp_get_max_threads()}}.dump());
      else
        fmt::print("read bandwidth ({} MiB buffer, {} threads): {:.1f} GB/s (median)\n", bandwidth_mib,
                   omp_get_max_threads(), gbs);
      return 0;
    }
    if (*compile_time) {
      const Json c = compile_decode(parse_dtype(dtype), run_step);
      if (json) {
        fmt::print("{}\n", c.dump());
      } else {
        fmt::print("compile() of the TinyLlama decode step ({}): {:.2f} s (KILN_CACHE_DIR={}) {}\n",
                   c["dtype"].get<std::string>(), c["compile_s"].get<double>(), c["kiln_cache_dir"].get<std::string>(),
                   load_line(c["load"]));
        if (c.contains("decode_step"))
          fmt::print("prepare {:.2f} s, decode step median {:.2f} ms {}\n", c["prepare_s"].get<double>(),
                     c["decode_step"]["median_ms"].get<double>(), load_line(c["decode_step"]["load"]));
      }
      return 0;
    }
    if (*layer) {
      const Json r = bench_layer(parse_dtype(dtype), tokens, capacity > 0 ? capacity : tokens, pick(10));
      if (json) {
        fmt::print("{}\n", r.dump());
      } else {
        print_header();
        print_layers(Json::array({r}));
      }
      return 0;
    }
    Json out = {{"threads", omp_get_max_threads()}, {"backend", cpu().backend().description()}};
    const bool every = !*matmul && !*norm;
    if (*matmul || every) out["matmul"] = bench_matmuls(pick(10));
    if (*norm || every) out["norm"] = bench_norms(pick(300));
    if (every) {
      out["layer"] = Json::array();
      for (const kiln::DType d : {kiln::DType::f32, kiln::DType::bf16}) {
        say("decoder layer {}", d == kiln::DType::bf16 ? "bf16" : "f32");
        out["layer"].push_back(bench_layer(d, 128, 128, pick(10)));
      }
      out["compile"] = bench_compile_cold_warm(kiln::DType::f32);
    }
    if (json) {
      fmt::print("{}\n", out.dump());
      return 0;
    }
    print_header();
    if (out.contains("matmul")) print_matmuls(out["matmul"]);
    if (out.contains("norm")) print_norms(out["norm"]);
    if (out.contains("layer")) print_layers(out["layer"]);
    if (out.contains("compile")) print_compile(out["compile"]);
  } catch (const std::exception& e) {
    fmt::print(stderr, "kiln_bench_cpu: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
