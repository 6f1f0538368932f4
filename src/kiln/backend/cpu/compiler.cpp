// The compiler stage of the CPU backend (see compiler.h).
//
// Disk layout: in cache_directory(), the files of one entry are named by its key (32 hex digits):
//   <key>.kexe  the entry: a kiln file (io/kiln_file.h, the saved executables' container) of kind "cpu kernels",
//               holding the shared object as section "cpu.kernels.<digest>" beside "cpu.features" and
//               "cpu.compiler", the sections a saved executable holds for it. Always published by rename(), so it
//               is never seen half-written. An entry whose checksums do not match, or that does not load, is a
//               crashed, truncated or damaged one: it is removed and rebuilt, never loaded. Libraries are loaded
//               from memory (a memfd), so an entry may be replaced while processes use what it held.
//   <key>.lock  flock'ed around check-compile-publish, so processes building one key at once compile it once.
//               Never removed: removing a lock file races with a process that has just opened it.
//   <key>.cpp   the source, only while $KILN_KEEP_SOURCE is set (for debugging a kernel).
//   <key>.tmp-<pid>-<n>.*  a compile in progress (removed when it ends, whether it worked or not).
#include "kiln/backend/cpu/compiler.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "kiln/core/error.h"
#include "kiln/core/hash.h"
#include "kiln/io/kiln_file.h"
#include "kiln/io/weight_source.h"
#include "kiln/version.h"

extern char** environ;

namespace kiln::cpu {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kKilnVersion = "kiln-" KILN_VERSION_STRING;
constexpr uint64_t kCacheFormat = 2;  // bump when the layout above or the key's contents change
constexpr int kMessageLines = 40;     // of the compiler's output, in an error

std::atomic<int> compiler_run_count{0};
std::atomic<uint64_t> temp_count{0};

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

std::optional<std::string> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return std::nullopt;
  return bytes;
}

// Closes a file descriptor when it goes (for a lock file, that releases the flock).
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

bool write_file(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  return !out.fail();
}

// A name no other thread or process uses, in the folder of the file it will be renamed to (rename() is only
// atomic within one file system).
std::string temp_name(const fs::path& dir, const std::string& key) {
  return (dir / fmt::format("{}.tmp-{}-{}", key, getpid(), temp_count++)).string();
}

// Readers see all of `bytes` at `path` or nothing.
bool publish_file(const fs::path& path, std::string_view bytes) {
  const std::string tmp = temp_name(path.parent_path(), path.stem().string());
  if (write_file(tmp, bytes) && std::rename(tmp.c_str(), path.c_str()) == 0) return true;
  std::error_code ignored;
  fs::remove(tmp, ignored);
  return false;
}

// ---- The cache folder -------------------------------------------------------------------------------------------

struct Fallback {
  std::mutex mutex;
  fs::path directory;            // made on first need
  pid_t owner = 0;               // the process that made it
  std::set<std::string> warned;  // the folders that failed, each warned about once
};

// Lives for the whole process (never destroyed: the exit handler below uses it).
Fallback& fallback() {
  static auto* instance = new Fallback();
  return *instance;
}

void remove_fallback() {
  // A forked child that exits normally must not remove its parent's folder.
  if (getpid() != fallback().owner) return;
  std::error_code ignored;
  fs::remove_all(fallback().directory, ignored);
}

// Tried rather than asked: permission bits do not tell for root or read-only mounts.
bool can_create_files(const fs::path& dir) {
  std::string probe = (dir / ".kiln-probe-XXXXXX").string();
  const int fd = mkostemp(probe.data(), O_CLOEXEC);
  if (fd < 0) return false;
  close(fd);
  unlink(probe.c_str());
  return true;
}

fs::path configured_cache_directory() {
  if (std::string dir = env("KILN_CACHE_DIR"); !dir.empty()) return dir;
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty()) return fs::path(xdg) / "kiln";
  if (std::string home = env("HOME"); !home.empty()) return fs::path(home) / ".cache" / "kiln";
  return {};
}

// ---- The compiler -----------------------------------------------------------------------------------------------

bool is_executable(const fs::path& path) {
  struct stat info;
  return stat(path.c_str(), &info) == 0 && S_ISREG(info.st_mode) && access(path.c_str(), X_OK) == 0;
}

// Like execvp's search (a name with a slash is taken as it is), so the path that runs is the one in the key.
std::optional<std::string> find_program(const std::string& name) {
  if (name.find('/') != std::string::npos) return is_executable(name) ? std::optional(name) : std::nullopt;
  const char* search = std::getenv("PATH");
  const std::string path = search ? search : "/usr/local/bin:/usr/bin:/bin";
  for (size_t start = 0;;) {
    const size_t end = path.find(':', start);
    const std::string dir = path.substr(start, end - start);
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / name;
    if (is_executable(candidate)) return candidate.string();
    if (end == std::string::npos) return std::nullopt;
    start = end + 1;
  }
}

// Starts `argv` (no shell), stdin from /dev/null, stdout and stderr into `output_fd`.
pid_t spawn(const std::vector<std::string>& argv, int output_fd) {
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, output_fd, 1);
  posix_spawn_file_actions_adddup2(&actions, output_fd, 2);
  pid_t pid = 0;
  const int error = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (error != 0) fail("cannot run {}: {}", argv[0], std::strerror(error));
  return pid;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

bool succeeded(int status) { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("exit status {}", WEXITSTATUS(status));
}

std::string first_line_of_version(const std::string& cxx) {
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) fail("cannot run {} --version: {}", cxx, std::strerror(errno));
  const Fd read_end{pipe_fds[0]};
  pid_t pid = 0;
  {
    const Fd write_end{pipe_fds[1]};
    pid = spawn({cxx, "--version"}, write_end.fd);
  }  // closed here, so that read() sees the end of the output
  std::string output;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(read_end.fd, buffer, sizeof buffer);
    if (n > 0) output.append(buffer, static_cast<size_t>(n));
    if (n == 0 || (n < 0 && errno != EINTR)) break;
  }
  const int status = wait_for(pid);
  std::string line = output.substr(0, output.find('\n'));
  if (!succeeded(status) || line.empty()) {
    fail("'{} --version' failed ({}); set KILN_CXX to a C++ compiler", cxx, describe(status));
  }
  return line;
}

std::string identity_of(const std::string& cxx) {
  static std::mutex mutex;
  static auto* known = new std::map<std::string, std::string>();  // compiler path -> identity, for the process
  {
    std::lock_guard lock(mutex);
    if (auto it = known->find(cxx); it != known->end()) return it->second;
  }
  std::string identity = first_line_of_version(cxx);  // outside the lock: it takes milliseconds
  std::lock_guard lock(mutex);
  return known->emplace(cxx, std::move(identity)).first->second;
}

// -march=native makes a binary depend on the CPU, and one cache folder may serve several machines (a shared home).
const std::string& host_cpu_features() {
  static const std::string features = [] {
    std::ifstream cpuinfo("/proc/cpuinfo");
    for (std::string line; std::getline(cpuinfo, line);) {
      if (line.starts_with("flags") || line.starts_with("Features")) return line;  // x86, Arm
    }
    return std::string("unknown");
  }();
  return features;
}

std::string digest_of(const CompileRequest& request) {
  Hasher hasher;
  hasher.string("kiln cpu kernel source");
  hasher.string(kKilnVersion);
  for (const std::string& flag : default_flags()) hasher.string(flag);
  for (const std::string& flag : request.extra_flags) hasher.string(flag);
  hasher.string(request.source);
  return hasher.finish().hex();
}

std::string key_for(const CompileRequest& request, const std::string& identity) {
  Hasher hasher;
  hasher.string("kiln cpu kernel library");
  hasher.value(kCacheFormat);
  hasher.string(kKilnVersion);
  hasher.string(identity);
  hasher.string(host_cpu_features());
  hasher.value(static_cast<uint64_t>(default_flags().size() + request.extra_flags.size()));
  for (const std::string& flag : default_flags()) hasher.string(flag);
  for (const std::string& flag : request.extra_flags) hasher.string(flag);
  hasher.string(request.source);
  return hasher.finish().hex();
}

// The command as a shell would need it, for errors a user can paste.
std::string command_line(const std::vector<std::string>& argv) {
  constexpr std::string_view kNeedsNoQuotes =
      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=.,:/@%";
  std::string line;
  for (const std::string& arg : argv) {
    if (!line.empty()) line += ' ';
    if (!arg.empty() && arg.find_first_not_of(kNeedsNoQuotes) == std::string::npos) {
      line += arg;
      continue;
    }
    line += '\'';
    for (char c : arg) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += '\'';
  }
  return line;
}

// The first kMessageLines lines of a compiler's output.
std::string first_lines(const std::string& output) {
  size_t end = 0;
  for (int line = 0; line < kMessageLines && end < output.size(); ++line) {
    end = output.find('\n', end);
    end = end == std::string::npos ? output.size() : end + 1;
  }
  return end < output.size() ? output.substr(0, end) + "[...]\n" : output;
}

// Waits for the compiler, polling when someone wants to hear about a slow compile.
int wait_for_compiler(pid_t pid, const CompileRequest& request) {
  if (!request.progress) return wait_for(pid);
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  bool announced = false;
  auto delay = std::chrono::milliseconds(1);
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid || (done < 0 && errno != EINTR)) break;
    if (!announced && Clock::now() - start > std::chrono::seconds(1)) {
      announced = true;
      request.progress(
          fmt::format("kiln: compiling {} ({} KiB of C++)...", request.what, (request.source.size() + 1023) / 1024));
    }
    std::this_thread::sleep_for(delay);
    delay = std::min(delay * 2, std::chrono::milliseconds(20));
  }
  if (announced) {
    const std::chrono::duration<double> took = Clock::now() - start;
    request.progress(fmt::format("kiln: done compiling {} ({:.1f} s)", request.what, took.count()));
  }
  return status;
}

// Compiles in temporary files named after `entry` (removed when it returns) and returns the shared object's bytes.
std::string compile(const CompileRequest& request, const std::string& cxx, const fs::path& entry) {
  const std::string base = temp_name(entry.parent_path(), entry.stem().string());
  const std::string cpp = base + ".cpp", out = base + ".so", log = base + ".log";
  struct Cleanup {
    const std::string& base;
    ~Cleanup() {
      std::error_code ignored;
      for (const char* suffix : {".cpp", ".so", ".log"}) fs::remove(base + suffix, ignored);
    }
  } cleanup{base};
  if (!write_file(cpp, request.source)) fail("cannot write the kernel source to {}", cpp);

  // The source first, so that -l flags in extra_flags come after it.
  std::vector<std::string> argv = {cxx, cpp, "-o", out};
  argv.insert(argv.end(), default_flags().begin(), default_flags().end());
  argv.insert(argv.end(), request.extra_flags.begin(), request.extra_flags.end());
  pid_t pid = 0;
  {
    const Fd log_fd{open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (log_fd.fd < 0) fail("cannot create {}: {}", log, std::strerror(errno));
    pid = spawn(argv, log_fd.fd);
  }
  ++compiler_run_count;
  const int status = wait_for_compiler(pid, request);

  if (!succeeded(status)) {
    fs::path kept = entry;
    kept.replace_extension(".cpp");
    const std::string where = env("KILN_KEEP_SOURCE").empty() ? "set KILN_KEEP_SOURCE=1 to keep the source"
                                                              : "the source is kept at " + kept.string();
    fail("compiling {} failed ({}): {}\n{}({})", request.what, describe(status), command_line(argv),
         first_lines(read_file(log).value_or("")), where);
  }
  std::optional<std::string> bytes = read_file(out);
  if (!bytes) fail("cannot read the compiled library {}", out);
  return std::move(*bytes);
}

// RTLD_NOW: a missing symbol fails here, not at a first call in the middle of a run. RTLD_LOCAL: libraries'
// kernels may share names.
void* open_library(const fs::path& so) {
  void* handle = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
  // The OpenMP runtime a library pulls in keeps idle worker threads waiting in its code, so it must not be unloaded
  // with the last library (LeakSanitizer would also report what it allocated): it stays for the process.
  for (const char* runtime : {"libgomp.so.1", "libomp.so", "libomp.so.5"}) {
    if (handle) dlopen(runtime, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
  }
  return handle;
}

// A library from bytes in memory (a saved executable's, a cache entry's): an anonymous memory file, dlopen'ed
// through /proc/self/fd, so nothing is written to disk and the file it came from may change afterwards.
// Each loaded library holds its memory file open (see Library), one descriptor per library for the process's
// life: the soft limit on open files (often 1024) is raised to the hard one once, so that a process that compiles
// many programs does not run out of descriptors.
void raise_open_file_limit() {
  static const bool raised = [] {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
      limit.rlim_cur = limit.rlim_max;
      setrlimit(RLIMIT_NOFILE, &limit);
    }
    return true;
  }();
  (void)raised;
}

std::shared_ptr<const Library> load_bytes(std::string_view so, std::string key, const std::string& digest,
                                          std::string path, bool from_disk_cache) {
  raise_open_file_limit();
  const int fd = static_cast<int>(syscall(SYS_memfd_create, ("kiln-" + digest).c_str(), 1u /* MFD_CLOEXEC */));
  if (fd < 0) fail("cannot create a memory file for the kernels {}: {}", path, std::strerror(errno));
  Fd on_failure{fd};  // closes it unless the library takes it
  for (size_t done = 0; done < so.size();) {
    const ssize_t n = ::write(fd, so.data() + done, so.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot write the kernels {} to a memory file: {}", path, std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  void* handle = open_library(fmt::format("/proc/self/fd/{}", fd));
  if (!handle) {
    const char* why = dlerror();
    fail("cannot load the kernels {} (digest {}): {}", path, digest, why ? why : "unknown error");
  }
  on_failure.fd = -1;
  return std::make_shared<Library>(handle, std::move(key), digest, std::move(path), from_disk_cache, fd);
}

std::shared_ptr<const Library> load_from_memory(const CompileRequest& request, const std::string& digest) {
  const auto it = request.prebuilt->find("cpu.kernels." + digest);
  if (it == request.prebuilt->end())
    fail(
        "the saved executable holds no {} for this program (digest {}): it was saved by another kiln version, or "
        "with other flags",
        request.what, digest);
  return load_bytes(it->second, "saved:" + digest, digest, "(saved executable)", true);
}

// The cache entry for a shared object: the sections a saved executable holds for it.
std::string cache_entry(const std::string& so, const std::string& digest, const std::string& identity) {
  const std::string features = fmt::format("{}", fmt::join(host_isa_features(), " "));
  nlohmann::json manifest = {{"kind", "cpu kernels"}, {"kiln_version", KILN_VERSION_STRING},
                             {"backend", "cpu"},      {"digest", digest},
                             {"compiler", identity},  {"cpu_features", features}};
  return io::write_kiln_file(std::move(manifest),
                             {{"cpu.kernels." + digest, so}, {"cpu.features", features}, {"cpu.compiler", identity}});
}

// The library an existing entry holds, or null when it is damaged or does not load (then it is rebuilt).
std::shared_ptr<const Library> load_entry(const fs::path& entry, const std::string& key, const std::string& digest) {
  try {
    const io::SourcePtr source = io::map_file(entry);
    const auto bytes = source->bytes();
    const io::KilnFile file = io::read_kiln_file({reinterpret_cast<const char*>(bytes.data()), bytes.size()},
                                                 "kernel cache entry", entry.string());
    const auto it = file.sections.find("cpu.kernels." + digest);
    if (file.kind != "cpu kernels" || it == file.sections.end()) return nullptr;
    return load_bytes(it->second, key, digest, entry.string(), true);
  } catch (const Error&) {
    return nullptr;
  }
}

std::shared_ptr<const Library> load_through_disk(const CompileRequest& request, const std::string& cxx,
                                                 const std::string& key) {
  const fs::path dir = cache_directory();
  const fs::path entry = dir / (key + ".kexe");
  // One open() per call, so threads of this process exclude each other too. Without a lock (a file system that
  // has none) both may compile; the renames still keep every file whole.
  const Fd lock{open((dir / (key + ".lock")).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (lock.fd >= 0) {
    while (flock(lock.fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  if (!env("KILN_KEEP_SOURCE").empty()) publish_file(dir / (key + ".cpp"), request.source);

  const std::string digest = digest_of(request);
  std::error_code ignored;
  if (fs::exists(entry, ignored)) {
    if (auto library = load_entry(entry, key, digest)) return library;
    fs::remove(entry, ignored);  // half-written, damaged or not loadable: rebuilt, never trusted
  }
  const std::string so = compile(request, cxx, entry);
  publish_file(entry, cache_entry(so, digest, identity_of(cxx)));  // if this fails, it is only rebuilt next time
  return load_bytes(so, key, digest, entry.string(), false);
}

struct MemoryCache {
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<const Library>> libraries;  // by key
};

// Lives for the whole process and is never destroyed, so no library is dlclose'd under a static destructor that
// may still call its kernels.
MemoryCache& memory_cache() {
  static auto* instance = new MemoryCache();
  return *instance;
}

}  // namespace

Library::Library(void* handle, std::string key, std::string digest, std::string path, bool from_disk_cache,
                 int memory_fd)
    : handle_(handle),
      key_(std::move(key)),
      digest_(std::move(digest)),
      path_(std::move(path)),
      memory_fd_(memory_fd),
      from_disk_cache_(from_disk_cache) {}

std::string Library::bytes() const {
  struct stat info {};
  if (fstat(memory_fd_, &info) != 0) fail("cannot read the kernels {}: {}", path_, std::strerror(errno));
  std::string out(static_cast<size_t>(info.st_size), '\0');
  for (size_t done = 0; done < out.size();) {
    const ssize_t n = pread(memory_fd_, out.data() + done, out.size() - done, static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot read the kernels {}: {}", path_, std::strerror(errno));
    done += static_cast<size_t>(n);
  }
  return out;
}

Library::~Library() {
  dlclose(handle_);
  close(memory_fd_);
}

void* Library::symbol(std::string_view name) const {
  if (void* address = dlsym(handle_, std::string(name).c_str())) return address;
  fail("no symbol '{}' in the compiled library {}", name, path_);
}

// -fwrapv: generated index arithmetic wraps rather than being undefined. -fno-math-errno: sqrt and friends inline,
// with the same results. -ffp-contract=off: no fused multiply-add, so the same rounding as the reference backend.
const std::vector<std::string>& default_flags() {
  static const std::vector<std::string> flags = [] {
    std::vector<std::string> flags = {"-std=c++17", "-O3",     "-march=native",   "-fopenmp",         "-fPIC",
                                      "-shared",    "-fwrapv", "-fno-math-errno", "-ffp-contract=off"};
#if defined(KILN_JIT_SANITIZE) && KILN_JIT_SANITIZE
    flags.insert(flags.end(), {"-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all"});
#endif
    return flags;
  }();
  return flags;
}

std::string compiler_path() {
  constexpr std::string_view kHowTo =
      "kiln's CPU backend compiles kernels at run time; install g++ (apt-get install g++) or set KILN_CXX";
  if (std::string chosen = env("KILN_CXX"); !chosen.empty()) {
    if (std::optional<std::string> found = find_program(chosen)) return *found;
    fail("no C++ compiler found at KILN_CXX={}: {}", chosen, kHowTo);
  }
  for (const char* name : {"c++", "g++", "clang++"}) {
    if (std::optional<std::string> found = find_program(name)) return *found;
  }
  fail("no C++ compiler found on PATH: {}", kHowTo);
}

std::string compiler_identity() { return identity_of(compiler_path()); }

std::string cache_key(const CompileRequest& request) { return key_for(request, compiler_identity()); }

fs::path cache_directory() {
  const fs::path wanted = configured_cache_directory();
  std::string problem = "$HOME is not set";
  if (!wanted.empty()) {
    std::error_code error;
    fs::create_directories(wanted, error);
    if (!error && can_create_files(wanted)) return wanted;
    problem = error ? error.message() : "cannot create files in it";
  }
  Fallback& f = fallback();
  std::lock_guard lock(f.mutex);
  if (f.directory.empty()) {
    std::string tmpdir = env("TMPDIR");
    std::string pattern = (fs::path(tmpdir.empty() ? "/tmp" : tmpdir) / "kiln-cache-XXXXXX").string();
    if (!mkdtemp(pattern.data())) {
      fail("cannot use the kernel cache {}, nor create a temporary folder {}: {}", wanted.string(), pattern,
           std::strerror(errno));
    }
    f.directory = pattern;
    f.owner = getpid();
    std::atexit(remove_fallback);
  }
  if (f.warned.insert(wanted.string()).second) {
    fmt::print(stderr, "kiln: warning: cannot use the kernel cache {} ({}); using {} for this process\n",
               wanted.empty() ? "~/.cache/kiln" : wanted.string(), problem, f.directory.string());
  }
  return f.directory;
}

std::shared_ptr<const Library> load_library(const CompileRequest& request) {
  if (request.prebuilt) return load_from_memory(request, digest_of(request));
  const std::string cxx = compiler_path();
  const std::string key = key_for(request, identity_of(cxx));
  MemoryCache& cache = memory_cache();
  {
    std::lock_guard lock(cache.mutex);
    if (auto it = cache.libraries.find(key); it != cache.libraries.end()) return it->second;
  }
  // Not under the mutex, so different keys compile in parallel; the flock orders compiles of one key.
  std::shared_ptr<const Library> library = load_through_disk(request, cxx, key);
  std::lock_guard lock(cache.mutex);
  return cache.libraries.emplace(key, std::move(library)).first->second;  // another thread's, if it came first
}

void clear_memory_cache() {
  std::map<std::string, std::shared_ptr<const Library>> released;  // dlclose'd on return, outside the lock
  MemoryCache& cache = memory_cache();
  {
    std::lock_guard lock(cache.mutex);
    released.swap(cache.libraries);
  }
}

int compiler_runs() { return compiler_run_count; }

// The extensions GCC's -march=native turns on, as /proc/cpuinfo names them;
// flags that say nothing about instructions (hypervisor, rep_good, ...) are
// left out so that a saved executable does not refuse a machine for them.
std::vector<std::string> host_isa_features() {
  constexpr std::string_view kIsaPrefixes[] = {
      "sse",    "ssse",  "avx",    "fma",        "f16c", "bmi",       "amx",    "vaes",   "vpclmulqdq", "gfni",
      "adx",    "movbe", "popcnt", "abm",        "aes",  "pclmulqdq", "sha_ni", "rdrand", "rdseed",     "lzcnt",
      "movdir", "cx16",  "xsave",  "clflushopt", "clwb", "prefetchw", "asimd",  "sve",    "fp16"};
  std::vector<std::string> out;
  const std::string& line = host_cpu_features();
  const size_t colon = line.find(':');
  std::istringstream words(colon == std::string::npos ? std::string() : line.substr(colon + 1));
  for (std::string word; words >> word;) {
    for (const std::string_view prefix : kIsaPrefixes)
      if (word.starts_with(prefix)) {
        out.push_back(word);
        break;
      }
  }
  std::ranges::sort(out);
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace kiln::cpu
