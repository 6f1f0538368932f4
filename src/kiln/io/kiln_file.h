#pragma once
// The container of kiln's own files: saved executables (runtime/
// saved_executable.cpp) and the CPU backend's kernel cache entries
// (backend/cpu/compiler.cpp) are both written and checked by this code, so a
// cache entry can be inspected, verified and loaded like any saved file.
//
//   "KILNEXE\0"  u32 format major, u32 format minor, u64 manifest bytes (little-endian)
//   manifest     JSON: the writer's fields, "format" ("major.minor"), "kind"
//                (what the file is: "executable", "cpu kernels") and
//                "sections": name, offset (from the end of the manifest
//                checksum), size, checksum (Hash128 hex) of each
//   16 bytes     the manifest's checksum (Hash128, high then low)
//   sections     their bytes, one after another
//
// A reader checks the magic, the major version, the manifest's checksum and
// every section's bounds and checksum before anything is used.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kiln::io {

// False only in fuzz builds (KILN_FUZZ_SKIP_CHECKSUMS), where checksums, and
// the graph hash of a saved executable, would stop every mutation before the
// code behind them runs.
#ifdef KILN_FUZZ_SKIP_CHECKSUMS
inline constexpr bool kVerifyChecksums = false;
#else
inline constexpr bool kVerifyChecksums = true;
#endif

inline constexpr uint32_t kKilnFileMajor = 1;
// 1.1 added "kind"; a 1.0 file (no kind) is an executable.
inline constexpr uint32_t kKilnFileMinor = 1;

// The file's bytes: `manifest` (an object; "format" and "sections" are
// filled in here) and the sections in order.
std::string write_kiln_file(nlohmann::json manifest, const std::vector<std::pair<std::string, std::string>>& sections);

// True when `bytes` start with the container's magic.
bool is_kiln_file(std::string_view bytes);

// A checked container: the parsed manifest and the sections, viewing `bytes`.
struct KilnFile {
  nlohmann::json manifest;
  std::string kind;  // manifest "kind", "executable" for a 1.0 file
  std::map<std::string, std::string_view, std::less<>> sections;
};

// Errors are kiln::Errors "<what> <where>: <problem>", e.g. "saved executable
// model.kexe: truncated (...)". Only the header and the manifest's checksum:
std::string_view kiln_file_manifest(std::string_view bytes, std::string_view what, std::string_view where);
// Everything, every section's checksum included:
KilnFile read_kiln_file(std::string_view bytes, std::string_view what, std::string_view where);

}  // namespace kiln::io
