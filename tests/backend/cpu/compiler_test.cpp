// The CPU backend's compiler stage: source -> shared object -> loaded library, cached in memory and on disk. Each
// test runs the system C++ compiler in a fresh cache folder of its own.
#include "kiln/backend/cpu/compiler.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "kiln/io/kiln_file.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;

// A source exporting kiln_test_add; `tag` makes it (and its key) differ from every other test's.
cpu::CompileRequest adder(const std::string& tag) {
  cpu::CompileRequest request;
  request.source = "// " + tag + "\nextern \"C\" int kiln_test_add(int a, int b) { return a + b; }\n";
  return request;
}

int call_add(const cpu::Library& library, int a, int b) {
  return reinterpret_cast<int (*)(int, int)>(library.symbol("kiln_test_add"))(a, b);
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

std::set<std::string> files_in(const fs::path& dir) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

// The files a finished entry leaves.
std::set<std::string> entry_files(const std::string& key) { return {key + ".kexe", key + ".lock"}; }

class CompilerTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "kiln-compiler-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    set_env("KILN_CACHE_DIR", dir_.c_str());
    set_env("KILN_CXX", nullptr);
    set_env("KILN_KEEP_SOURCE", nullptr);
    cpu::clear_memory_cache();
  }

  void TearDown() override {
    cpu::clear_memory_cache();
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  // Sets (or, with nullptr, unsets) a variable until the test ends.
  void set_env(const std::string& name, const char* value) {
    if (!saved_.count(name)) {
      const char* before = std::getenv(name.c_str());
      saved_[name] = before ? std::optional<std::string>(before) : std::nullopt;
    }
    if (value) {
      setenv(name.c_str(), value, 1);
    } else {
      unsetenv(name.c_str());
    }
  }

  fs::path dir_;
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST_F(CompilerTest, CompilesThenLoadsFromMemoryThenFromDisk) {
  const cpu::CompileRequest request = adder("memory then disk");
  const int runs = cpu::compiler_runs();
  std::shared_ptr<const cpu::Library> first = cpu::load_library(request);
  EXPECT_EQ(cpu::compiler_runs(), runs + 1);
  EXPECT_FALSE(first->from_disk_cache());
  EXPECT_EQ(call_add(*first, 2, 3), 5);
  EXPECT_EQ(first->key(), cpu::cache_key(request));
  EXPECT_EQ(fs::path(first->path()), dir_ / (first->key() + ".kexe"));
  EXPECT_EQ(files_in(dir_), entry_files(first->key()));  // no temporary files left
  EXPECT_ERROR(first->symbol("kiln_no_such_symbol"), "no symbol 'kiln_no_such_symbol' in the compiled library");
  EXPECT_ERROR(first->symbol("kiln_no_such_symbol"), first->path());

  EXPECT_EQ(cpu::load_library(request), first);  // the same object: dlopen'ed once
  EXPECT_EQ(cpu::compiler_runs(), runs + 1);

  const std::string path = first->path();
  const fs::file_time_type built = fs::last_write_time(path);
  first.reset();
  cpu::clear_memory_cache();
  std::shared_ptr<const cpu::Library> again = cpu::load_library(request);
  EXPECT_TRUE(again->from_disk_cache());
  EXPECT_EQ(cpu::compiler_runs(), runs + 1);
  EXPECT_EQ(again->path(), path);
  EXPECT_EQ(fs::last_write_time(path), built);
  EXPECT_EQ(call_add(*again, 40, 2), 42);
}

TEST_F(CompilerTest, TwoProcessesBuildingOneNewKeyAtOnceCompileItOnce) {
  const cpu::CompileRequest request = adder(fmt::format("two processes, parent {}", getpid()));
  int gate[2];
  ASSERT_EQ(pipe(gate), 0);
  pid_t children[2];
  for (pid_t& child : children) {
    child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(gate[1]);
      char byte;
      (void)!read(gate[0], &byte, 1);  // returns when the parent closes its end: both start together
      int code = 3;
      try {
        std::shared_ptr<const cpu::Library> library = cpu::load_library(request);
        if (call_add(*library, 20, 22) == 42) code = library->from_disk_cache() ? 1 : 0;
      } catch (...) {
        code = 4;
      }
      _exit(code);
    }
  }
  close(gate[0]);
  close(gate[1]);
  std::multiset<int> codes;
  for (pid_t child : children) {
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << status;
    codes.insert(WEXITSTATUS(status));
  }
  // Both got the right answer; one compiled, the other waited on the lock and loaded what the first published.
  EXPECT_EQ(codes, (std::multiset<int>{0, 1}));
  EXPECT_EQ(files_in(dir_), entry_files(cpu::cache_key(request)));
  EXPECT_TRUE(cpu::load_library(request)->from_disk_cache());
}

TEST_F(CompilerTest, EntriesAreKilnFilesWithTheSavedExecutablesSections) {
  const cpu::CompileRequest request = adder("entry format");
  std::shared_ptr<const cpu::Library> library = cpu::load_library(request);
  const std::string bytes = read_file(library->path());
  const io::KilnFile file = io::read_kiln_file(bytes, "entry", library->path());
  EXPECT_EQ(file.kind, "cpu kernels");
  EXPECT_EQ(file.manifest.at("digest"), library->digest());
  EXPECT_EQ(file.manifest.at("compiler"), cpu::compiler_identity());
  ASSERT_TRUE(file.sections.contains("cpu.kernels." + library->digest()));
  EXPECT_EQ(file.sections.at("cpu.kernels." + library->digest()), library->bytes());
  EXPECT_TRUE(
      library->bytes().starts_with("\x7f"
                                   "ELF"));
  EXPECT_TRUE(file.sections.contains("cpu.features"));
  EXPECT_EQ(file.sections.at("cpu.compiler"), cpu::compiler_identity());
}

TEST_F(CompilerTest, DamagedEntriesAreRebuiltNotLoaded) {
  const cpu::CompileRequest request = adder("damaged");
  const std::string key = cpu::cache_key(request);
  const fs::path entry = dir_ / (key + ".kexe");
  const std::shared_ptr<const cpu::Library> built = cpu::load_library(request);
  const std::string digest = built->digest(), so = built->bytes(), good = read_file(entry);
  const auto damage_then_load = [&](const std::string& how, const std::function<void()>& damage) {
    SCOPED_TRACE(how);
    cpu::clear_memory_cache();
    write_file(entry, good);
    damage();
    const int runs = cpu::compiler_runs();
    std::shared_ptr<const cpu::Library> library = cpu::load_library(request);
    EXPECT_FALSE(library->from_disk_cache());
    EXPECT_EQ(cpu::compiler_runs(), runs + 1);
    EXPECT_EQ(call_add(*library, 1, 2), 3);
    EXPECT_EQ(files_in(dir_), entry_files(key));
  };
  damage_then_load("garbage in the middle", [&] {
    std::fstream file(entry, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(fs::file_size(entry) / 2));
    file << std::string(4096, '\xab');
  });
  damage_then_load("truncated", [&] { fs::resize_file(entry, fs::file_size(entry) / 2); });
  damage_then_load("empty", [&] { fs::resize_file(entry, 0); });
  damage_then_load("a saved executable's kind", [&] {
    write_file(entry, io::write_kiln_file({{"kind", "executable"}}, {{"cpu.kernels." + digest, so}}));
  });
  damage_then_load("checksums right, but dlopen fails", [&] {
    write_file(entry, io::write_kiln_file({{"kind", "cpu kernels"}}, {{"cpu.kernels." + digest, "not an ELF"}}));
  });
}

TEST_F(CompilerTest, UnwritableCacheFallsBackToATemporaryFolderWithOneWarning) {
  write_file(dir_ / "a-file", "x");
  // Both names are new to this process, so each is warned about here even when the test repeats.
  const fs::path unwritable[] = {dir_ / "a-file" / "cache", "/proc/kiln-cannot-write-" + dir_.filename().string()};
  for (const fs::path& bad : unwritable) {
    SCOPED_TRACE(bad.string());
    set_env("KILN_CACHE_DIR", bad.c_str());
    cpu::clear_memory_cache();
    testing::internal::CaptureStderr();
    std::shared_ptr<const cpu::Library> first = cpu::load_library(adder("fallback 1"));
    std::shared_ptr<const cpu::Library> second = cpu::load_library(adder("fallback 2"));
    const std::string warning = testing::internal::GetCapturedStderr();
    EXPECT_EQ(std::count(warning.begin(), warning.end(), '\n'), 1) << warning;
    EXPECT_NE(warning.find(bad.string()), std::string::npos) << warning;
    const fs::path used = fs::path(first->path()).parent_path();
    EXPECT_NE(warning.find(used.string()), std::string::npos) << warning;
    EXPECT_EQ(fs::path(second->path()).parent_path(), used);
    EXPECT_FALSE(first->path().starts_with(bad.string()));
    EXPECT_EQ(call_add(*first, 2, 2), 4);
    EXPECT_EQ(call_add(*second, 3, 3), 6);
  }
}

TEST_F(CompilerTest, ExtraFlagsAreInTheKey) {
  cpu::CompileRequest plain;
  plain.source =
      "extern \"C\" int kiln_test_flag() {\n#ifdef KILN_TEST_FLAG\n  return KILN_TEST_FLAG;\n#else\n  return 0;\n"
      "#endif\n}\n";
  cpu::CompileRequest flagged = plain;
  flagged.extra_flags = {"-DKILN_TEST_FLAG=1"};
  std::shared_ptr<const cpu::Library> without = cpu::load_library(plain), with = cpu::load_library(flagged);
  EXPECT_NE(without->key(), with->key());
  EXPECT_NE(without->path(), with->path());
  EXPECT_TRUE(fs::exists(without->path()) && fs::exists(with->path()));
  EXPECT_EQ(reinterpret_cast<int (*)()>(without->symbol("kiln_test_flag"))(), 0);
  EXPECT_EQ(reinterpret_cast<int (*)()>(with->symbol("kiln_test_flag"))(), 1);
}

TEST_F(CompilerTest, DefaultFlagsKeepNaNsAndRoundingAndRunOpenMP) {
  cpu::CompileRequest request;
  request.source = R"(
extern "C" int kiln_test_count_nans(const float* x, int n) {
  int count = 0;
#pragma omp parallel for reduction(+ : count)
  for (int i = 0; i < n; ++i) count += x[i] != x[i];  // -ffast-math would fold this to 0
  return count;
}
extern "C" float kiln_test_multiply_add(float a, float b, float c) { return a * b + c; }  // not fused
)";
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x(1000, 1.0f);
  x[3] = nan;
  x[500] = inf - inf;
  x[999] = inf;
  for (int round = 0; round < 2; ++round) {  // the second from disk, after the first was dlclose'd
    std::shared_ptr<const cpu::Library> library = cpu::load_library(request);
    EXPECT_EQ(library->from_disk_cache(), round == 1);
    const auto count_nans = reinterpret_cast<int (*)(const float*, int)>(library->symbol("kiln_test_count_nans"));
    EXPECT_EQ(count_nans(x.data(), static_cast<int>(x.size())), 2);
    const auto multiply_add =
        reinterpret_cast<float (*)(float, float, float)>(library->symbol("kiln_test_multiply_add"));
    const float a = 1.0f + std::ldexp(1.0f, -12);  // a * a = 1 + 2^-11 + 2^-24, which rounds to 1 + 2^-11
    EXPECT_EQ(multiply_add(a, a, -(1.0f + std::ldexp(1.0f, -11))), 0.0f);  // fused, it would be 2^-24
    library.reset();
    cpu::clear_memory_cache();
  }
}

TEST_F(CompilerTest, CompileErrorsCarryTheCompilersMessageAndLeaveNothingBehind) {
  cpu::CompileRequest broken;
  broken.source = "extern \"C\" int kiln_test_broken() { return kiln_undeclared_thing; }\n";
  broken.what = "2 broken kernels";
  std::string message;
  try {
    cpu::load_library(broken);
  } catch (const Error& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("compiling 2 broken kernels failed (exit status 1)"), std::string::npos) << message;
  EXPECT_NE(message.find("kiln_undeclared_thing"), std::string::npos) << message;  // the compiler's message
  EXPECT_NE(message.find("-ffp-contract=off"), std::string::npos) << message;      // the command line
  EXPECT_EQ(files_in(dir_), std::set<std::string>{cpu::cache_key(broken) + ".lock"});
}

TEST_F(CompilerTest, NoCompilerGivesAClearError) {
  set_env("KILN_CXX", "/nonexistent/c++");
  EXPECT_ERROR(cpu::compiler_identity(), "no C++ compiler found at KILN_CXX=/nonexistent/c++: kiln's CPU backend");
  EXPECT_ERROR(cpu::load_library(adder("no compiler")), "install g++ (apt-get install g++) or set KILN_CXX");
  set_env("KILN_CXX", "false");  // runs, but is no compiler
  EXPECT_ERROR(cpu::compiler_identity(), "--version' failed");
  set_env("KILN_CXX", nullptr);
  set_env("PATH", dir_.c_str());  // a folder with no compiler in it
  EXPECT_ERROR(cpu::load_library(adder("no compiler")),
               "no C++ compiler found on PATH: kiln's CPU backend compiles kernels at run time; install g++ "
               "(apt-get install g++) or set KILN_CXX");
}

TEST_F(CompilerTest, SlowCompilesReportProgress) {
  const fs::path slow = dir_ / "slow-c++";
  write_file(slow, "#!/bin/sh\n[ \"$1\" = --version ] || sleep 1.2\nexec c++ \"$@\"\n");
  fs::permissions(slow, fs::perms::owner_all);
  set_env("KILN_CXX", slow.c_str());
  std::vector<std::string> lines;
  cpu::CompileRequest request = adder("slow");
  request.what = "3 test kernels";
  request.progress = [&](const std::string& line) { lines.push_back(line); };
  EXPECT_EQ(call_add(*cpu::load_library(request), 5, 6), 11);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "kiln: compiling 3 test kernels (1 KiB of C++)...");
  EXPECT_TRUE(lines[1].starts_with("kiln: done compiling 3 test kernels (")) << lines[1];
}

TEST_F(CompilerTest, KeepSourceLeavesTheSourceNextToTheLibrary) {
  set_env("KILN_KEEP_SOURCE", "1");
  const cpu::CompileRequest request = adder("keep the source");
  std::shared_ptr<const cpu::Library> library = cpu::load_library(request);
  EXPECT_EQ(read_file(dir_ / (library->key() + ".cpp")), request.source);
}

}  // namespace
}  // namespace kiln
