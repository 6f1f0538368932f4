// Saved executables: exe.save(path) and Executable::load(path, platform)
// give the same results as the compiled executable (the op suites check
// every batch this way, tests/support/graph_batch.h; here the shipped model's
// greedy tokens), load in a process that has no compiler, and refuse what
// they cannot run with a clear error.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../io/io_test.h"
#include "kiln/backend/cpu/compiler.h"
#include "kiln/core/hash.h"
#include "kiln/frontend/callback.h"
#include "kiln/io/open.h"
#include "kiln/models/llama.h"
#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

const fs::path kModel = fs::path(KILN_FIXTURES) / ".." / ".." / "models" / "kjv-llama";

fs::path temp_path(const std::string& name) {
  return fs::path(::testing::TempDir()) / fmt::format("kiln-saved-{}-{}", ::getpid(), name);
}

std::string read(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// The file format of runtime/saved_executable.cpp, written out again after
// `edit` changed the manifest or the sections: what a tool (or an attacker)
// could make, with every checksum right.
using Sections = std::vector<std::pair<std::string, std::string>>;
void rewrite(const fs::path& path, const std::function<void(nlohmann::json&, Sections&)>& edit) {
  const std::string bytes = read(path);
  uint64_t manifest_size;
  std::memcpy(&manifest_size, bytes.data() + 16, 8);
  nlohmann::json manifest = nlohmann::json::parse(bytes.substr(24, manifest_size));
  const size_t data = 24 + manifest_size + 16;
  Sections sections;
  for (const auto& s : manifest["sections"])
    sections.emplace_back(s["name"], bytes.substr(data + s["offset"].get<size_t>(), s["size"].get<size_t>()));
  edit(manifest, sections);
  auto sum = [](const std::string& b) {
    Hasher h;
    h.bytes(b.data(), b.size());
    return h.finish();
  };
  manifest["sections"] = nlohmann::json::array();
  uint64_t offset = 0;
  for (const auto& [name, b] : sections) {
    manifest["sections"].push_back(
        {{"name", name}, {"offset", offset}, {"size", b.size()}, {"checksum", sum(b).hex()}});
    offset += b.size();
  }
  const std::string text = manifest.dump();
  std::string out = bytes.substr(0, 16);
  const uint64_t size = text.size();
  out.append(reinterpret_cast<const char*>(&size), 8);
  out += text;
  const Hash128 h = sum(text);
  out.append(reinterpret_cast<const char*>(&h.high), 8);
  out.append(reinterpret_cast<const char*>(&h.low), 8);
  for (const auto& s : sections) out += s.second;
  write(path, out);
}

// y = x * 3 + 1 and a callback that counts its calls: a generated kernel on
// the CPU backend, and a callback bound by name after load.
struct Counter {
  static constexpr std::string_view name = "Counter";
  static CallbackConfig config() { return {.has_side_effect = true, .aliases = {0}}; }
  int calls = 0;
  void call(std::span<const HostBuffer>, std::span<HostBuffer>) { ++calls; }
};
const Shape kSmall({{"n", 4}});
Executable<Buffer> small_exe(const Platform& platform) {
  return compile_fn(
      platform, [](Tensor x) { return callback<Counter>({x * 3.0 + 1.0}, {kSmall})[0]; }, kSmall);
}
Buffer small_input(const Platform& platform) {
  return Buffer::from(platform, kSmall, std::vector<float>{0, 1, -2, 0.5f});
}
const std::vector<float> kSmallExpected{1, 4, -5, 2.5f};

std::vector<float> values(const Buffer& b) {
  const HostBuffer h = b.to_host();
  return {h.span<float>().begin(), h.span<float>().end()};
}

TEST(SavedExecutable, ShippedModelGreedyTokensAreTheSameAfterLoad) {
  using Step = Executable<std::tuple<Buffer, Buffer, Buffer>>;
  const io::BufferStore store = io::open(kModel);
  const auto model = populate<models::llama::CausalLM>(store);
  const std::vector<int32_t> prompt{1, 512, 33, 290, 7, 1024};
  for (const char* backend : {"cpu", "reference"}) {
    SCOPED_TRACE(backend);
    const Platform platform = Platform::get(backend);
    const int64_t steps = std::string_view(backend) == "cpu" ? 24 : 4;
    const Shape cache = model.cache_shape(1, static_cast<int64_t>(prompt.size()) + steps, DType::f32);
    auto compile_step = [&](int64_t tokens) {
      return compile(platform, &models::llama::CausalLM::forward, model, Shape({{"b", 1}, {"s", tokens}}, DType::i32),
                     cache, cache, Shape(DType::i32));
    };
    const auto weights = load<models::llama::CausalLM>(platform, store);
    // Greedy decoding with a prefill step and a one-token step.
    auto greedy = [&](const Step& prefill, const Step& decode) {
      std::vector<int32_t> out;
      Buffer k = Buffer::from(platform, HostBuffer::allocate(cache));
      Buffer v = Buffer::from(platform, HostBuffer::allocate(cache));
      Buffer ids =
          Buffer::from(platform, Shape({{"b", 1}, {"s", static_cast<int64_t>(prompt.size())}}, DType::i32), prompt);
      int32_t position = 0;
      auto [logits, k1, v1] =
          prefill(ids, donate(k), donate(v), Buffer::from(platform, Shape(DType::i32), std::vector<int32_t>{position}));
      position = static_cast<int32_t>(prompt.size());
      for (int64_t s = 0; s < steps; ++s) {
        const HostBuffer l = logits.to_host();
        const auto row = l.span<float>().last(static_cast<size_t>(model.config.vocab_size));
        const auto next = static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
        out.push_back(next);
        std::tie(logits, k1, v1) =
            decode(Buffer::from(platform, Shape({{"b", 1}, {"s", 1}}, DType::i32), std::vector<int32_t>{next}),
                   donate(k1), donate(v1), Buffer::from(platform, Shape(DType::i32), std::vector<int32_t>{position++}));
      }
      return out;
    };
    const Step prefill = compile_step(static_cast<int64_t>(prompt.size())), decode = compile_step(1);
    const std::vector<int32_t> compiled = greedy(prefill.prepare(weights), decode.prepare(weights));

    const fs::path prefill_file = temp_path("prefill.kexe"), decode_file = temp_path("decode.kexe");
    prefill.save(prefill_file);
    decode.save(decode_file);
    const int runs = cpu::compiler_runs();
    const Step loaded_prefill = Step::load(prefill_file, platform), loaded_decode = Step::load(decode_file, platform);
    EXPECT_EQ(cpu::compiler_runs(), runs) << "loading ran the compiler";
    EXPECT_EQ(loaded_prefill.parameters().size(), prefill.parameters().size());
    EXPECT_EQ(greedy(loaded_prefill.prepare(weights), loaded_decode.prepare(weights)), compiled);
    fs::remove(prefill_file);
    fs::remove(decode_file);
  }
}

TEST(SavedExecutable, CallbacksAreBoundByNameAfterLoadAndUnboundOnesRefused) {
  for (const char* backend : {"cpu", "reference"}) {
    SCOPED_TRACE(backend);
    const Platform platform = Platform::get(backend);
    const fs::path file = temp_path(std::string(backend) + "-small.kexe");
    small_exe(platform).save(file);
    auto loaded = Executable<Buffer>::load(file, platform);
    EXPECT_ERROR(loaded(small_input(platform)), "[callback] 'Counter' has no bound state");
    Counter counter;
    loaded.bind<Counter>(&counter);
    EXPECT_EQ(values(loaded(small_input(platform))), kSmallExpected);
    EXPECT_EQ(counter.calls, 1);
    fs::remove(file);
  }
}

TEST(SavedExecutable, BuiltinPrintCallbacksNeedNoBind) {
  const Shape n3({{"n", 3}});
  for (const char* backend : {"cpu", "reference"}) {
    SCOPED_TRACE(backend);
    const Platform platform = Platform::get(backend);
    const fs::path file = temp_path(std::string(backend) + "-print.kexe");
    compile_fn(
        platform, [](Tensor x) { return (x * 3.0).print("tripled") + 1.0; }, n3)
        .save(file);
    auto loaded = Executable<Buffer>::load(file, platform);
    ::testing::internal::CaptureStdout();
    const Buffer y = loaded(Buffer::from(platform, n3, std::vector<float>{1, 2, 3}));
    EXPECT_EQ(::testing::internal::GetCapturedStdout(), "tripled: {n=3} f32 [3, 6, 9]\n");
    EXPECT_EQ(values(y), (std::vector<float>{4, 7, 10}));
    fs::remove(file);
  }
}

// Found by kiln_file_fuzz: a name that is not UTF-8 cannot go into the JSON manifest.
TEST(SavedExecutable, SavingANameThatIsNotUtf8IsAClearError) {
  const auto exe = compile_fn(
      Platform::reference(), [](Tensor x) { return callback<Counter>({x}, {kSmall}, "Co\x8b\x98ter")[0]; }, kSmall);
  EXPECT_ERROR(exe.serialize(), "manifest holds text that is not UTF-8");
}

TEST(SavedExecutable, KilnInspectShowsTheManifest) {
  const fs::path file = temp_path("inspect.kexe");
  small_exe(Platform::cpu()).save(file);
  const auto table = io::run_command(std::string(KILN_CLI) + " inspect '" + file.string() + "'");
  EXPECT_EQ(table.exit_code, 0) << table.output;
  for (const char* line : {"kiln executable, format 1.1, saved by kiln 0.1.0 for the 'cpu' backend",
                           "  argument argument 0 {n=4} f32", "  callback Counter", "  section  graph ("})
    EXPECT_NE(table.output.find(line), std::string::npos) << line << "\n" << table.output;
  const auto json = io::run_command(std::string(KILN_CLI) + " inspect --json '" + file.string() + "'");
  EXPECT_EQ(nlohmann::json::parse(json.output).at("backend"), "cpu") << json.output;
  write(file, read(file).substr(0, 30));
  const auto bad = io::run_command(std::string(KILN_CLI) + " inspect '" + file.string() + "'");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find("truncated"), std::string::npos) << bad.output;
  fs::remove(file);
}

TEST(SavedExecutable, RefusesWhatItCannotRun) {
  const Platform cpu = Platform::cpu();
  const fs::path file = temp_path("refuse.kexe"), bad = temp_path("refuse-bad.kexe");
  small_exe(cpu).save(file);
  const std::string good = read(file);
  auto load_bad = [&] { return Executable<Buffer>::load(bad, cpu); };

  EXPECT_ERROR(Executable<Buffer>::load(temp_path("missing.kexe"), cpu), "cannot open the saved executable");
  EXPECT_ERROR(Executable<Buffer>::load(file, Platform::reference()),
               "saved for the 'cpu' backend; it cannot be loaded on 'reference'");

  write(bad, "GGUF not an executable at all, but long enough");
  EXPECT_ERROR(load_bad(), "not a kiln file (no KILNEXE magic)");

  std::string other_major = good;
  other_major[8] = 2;
  write(bad, other_major);
  EXPECT_ERROR(load_bad(), "format version 2.1; this kiln (0.1.0) reads format 1.x");

  for (const size_t length : {size_t{12}, size_t{40}, good.size() / 2, good.size() - 1}) {
    SCOPED_TRACE(length);
    write(bad, good.substr(0, length));
    EXPECT_ERROR(load_bad(), "truncated");
  }

  std::string flipped = good;
  flipped[good.size() - 100] ^= 0x40;  // inside the last section
  write(bad, flipped);
  EXPECT_ERROR(load_bad(), "corrupted (section 'cpu.kernels.");
  flipped = good;
  flipped[30] ^= 0x01;  // inside the manifest
  write(bad, flipped);
  EXPECT_ERROR(load_bad(), "corrupted (the manifest's checksum does not match)");

  // Well-formed files with every checksum right that still cannot run here.
  write(bad, good);
  rewrite(bad, [](nlohmann::json&, Sections& sections) {
    for (auto& [name, bytes] : sections)
      if (name == "cpu.features") bytes += " avx1024_imaginary";
  });
  EXPECT_ERROR(load_bad(), "need CPU features this machine lacks: avx1024_imaginary");
  write(bad, good);
  rewrite(bad, [](nlohmann::json&, Sections& sections) {
    std::erase_if(sections, [](const auto& s) { return s.first.starts_with("cpu.kernels."); });
  });
  EXPECT_ERROR(load_bad(), "holds no 1 kernels for this program");
  write(bad, good);
  rewrite(bad, [](nlohmann::json& manifest, Sections&) { manifest["graph_hash"] = "0"; });
  EXPECT_ERROR(load_bad(), "does not hash to the manifest's graph_hash");
  write(bad, good);
  rewrite(bad, [](nlohmann::json&, Sections& sections) { sections[0].second += "%9 = neg(%0) : {n=4} f32\n"; });
  EXPECT_ERROR(load_bad(), "text after the return line");
  fs::remove(file);
  fs::remove(bad);
}

// Run by NoCompilerNeeded in a child process whose PATH has no compiler.
TEST(SavedExecutable, DISABLED_ChildLoadsAndCalls) {
  const char* file = std::getenv("KILN_TEST_SAVED_EXE");
  ASSERT_NE(file, nullptr);
  EXPECT_ERROR(cpu::compiler_path(), "no C++ compiler");
  auto loaded = Executable<Buffer>::load(file, Platform::cpu());
  Counter counter;
  loaded.bind<Counter>(&counter);
  EXPECT_EQ(values(loaded(small_input(Platform::cpu()))), kSmallExpected);
  EXPECT_EQ(counter.calls, 1);
  EXPECT_EQ(cpu::compiler_runs(), 0);
}

TEST(SavedExecutable, LoadsAndRunsInAProcessWithoutACompiler) {
  const fs::path file = temp_path("child.kexe");
  small_exe(Platform::cpu()).save(file);
  const fs::path empty_cache = temp_path("child-cache");
  fs::create_directories(empty_cache);
  const std::string command = fmt::format(
      "env -u KILN_CXX PATH=/nonexistent KILN_CACHE_DIR={} KILN_TEST_SAVED_EXE={} {} "
      "--gtest_also_run_disabled_tests --gtest_filter=SavedExecutable.DISABLED_ChildLoadsAndCalls > {}.log 2>&1",
      empty_cache.string(), file.string(), fs::read_symlink("/proc/self/exe").string(), file.string());
  const int status = std::system(command.c_str());
  const std::string log = read(file.string() + ".log");
  EXPECT_EQ(status, 0) << log;
  EXPECT_NE(log.find("[  PASSED  ] 1 test."), std::string::npos) << log;  // the child test ran
  EXPECT_TRUE(fs::is_empty(empty_cache)) << "the child wrote to the kernel cache";
  fs::remove_all(empty_cache);
  fs::remove(file);
  fs::remove(file.string() + ".log");
}

}  // namespace
}  // namespace kiln
