#pragma once
// The compiler stage of the CPU backend: a generated C++ translation unit ->
// a shared object built by the system C++ compiler -> a dlopen'ed Library.
// Libraries are cached twice, by a key that hashes everything that decides
// the binary: in memory (one dlopen per key per process) and on disk (no
// compiler run when another process, or an earlier run, built the same key),
// as kiln files of kind "cpu kernels" (io/kiln_file.h), the container saved
// executables use.
// Every function here is safe to call from several threads and processes.
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kiln::cpu {

// A loaded shared object; dlclose'd when the last reference goes, so keep the
// Library alive as long as any symbol taken from it is used.
class Library {
 public:
  // Made by load_library; takes ownership of a dlopen handle and of the
  // memory file it was loaded through, kept open while it is loaded (dlopen
  // tells libraries apart by path, and /proc/self/fd/N names are reused).
  Library(void* handle, std::string key, std::string digest, std::string path, bool from_disk_cache, int memory_fd);
  ~Library();
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;

  // The address of an exported (extern "C") symbol; throws kiln::Error naming
  // the symbol and the library when there is none.
  void* symbol(std::string_view name) const;
  const std::string& key() const { return key_; }    // the cache key (32 hex digits)
  const std::string& path() const { return path_; }  // the cache entry it came from
  // A hash of the source, the flags and the kiln version (not the compiler or
  // the machine): the name of the library in a saved executable.
  const std::string& digest() const { return digest_; }
  // The shared object's bytes, for saving.
  std::string bytes() const;
  // True when no compiler ran for it in the load_library call that made it.
  bool from_disk_cache() const { return from_disk_cache_; }

 private:
  void* handle_;
  std::string key_, digest_, path_;
  int memory_fd_;
  bool from_disk_cache_;
};

struct CompileRequest {
  std::string source;                    // a whole translation unit
  std::vector<std::string> extra_flags;  // appended to default_flags(); part of the key
  // Optional, called on the calling thread: when a compile takes longer than
  // about a second, one line such as "kiln: compiling 12 kernels (34 KiB of
  // C++)..." and, when it is done, one with the time it took. Empty: silent.
  std::function<void(const std::string&)> progress;
  std::string what = "kernels";  // what is compiled, for the progress line
  // Set when loading a saved executable: the library is the one these
  // artifacts hold under "cpu.kernels.<digest>", loaded from memory without
  // any compiler or cache; none there is an error.
  const std::map<std::string, std::string, std::less<>>* prebuilt = nullptr;
};

// The library for `request`: from memory, else from the disk cache, else
// compiled (and published to the disk cache). Throws kiln::Error with the
// command line and the compiler's first lines of output when it fails.
// Libraries stay in the memory cache until clear_memory_cache().
std::shared_ptr<const Library> load_library(const CompileRequest& request);

// -std=c++17 -O3 -march=native -fopenmp -fPIC -shared -fwrapv -fno-math-errno
// -ffp-contract=off: fast, but keeping IEEE NaN/Inf semantics and exact
// rounding (no -ffast-math, no fused multiply-add). When kiln is built with
// KILN_JIT_SANITIZE=1 the kernels get ASan and UBSan too.
const std::vector<std::string>& default_flags();

// The compiler that runs: $KILN_CXX (a path, or a name looked up on PATH) if
// set, else the first of c++, g++, clang++ on PATH. Throws kiln::Error saying
// how to get one when there is none.
std::string compiler_path();

// The first line of `<compiler_path()> --version`, part of the key so that a
// compiler upgrade rebuilds. Computed once per process per compiler path.
std::string compiler_identity();

// The key load_library uses for `request` (32 hex digits): a hash of the
// source, every flag, the compiler identity, the host CPU (the flags say
// -march=native), the kiln version and the cache format version.
std::string cache_key(const CompileRequest& request);

// The disk cache folder: $KILN_CACHE_DIR, else $XDG_CACHE_HOME/kiln, else
// ~/.cache/kiln, created if missing. If it cannot be created or written, a
// per-process temporary directory (under $TMPDIR or /tmp, removed at exit) is
// returned instead, with one warning line on stderr per folder that failed.
std::filesystem::path cache_directory();

// The ISA extensions of this CPU that -march=native code may use (from
// /proc/cpuinfo: sse*, avx*, fma, f16c, bmi*, amx*, ...), sorted.
std::vector<std::string> host_isa_features();

// For tests: forget the in-memory cache (libraries no longer referenced
// elsewhere are dlclose'd), and how many times this process ran the compiler.
void clear_memory_cache();
int compiler_runs();

}  // namespace kiln::cpu
