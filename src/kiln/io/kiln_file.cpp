#include "kiln/io/kiln_file.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "kiln/core/error.h"
#include "kiln/core/hash.h"
#include "kiln/version.h"

namespace kiln::io {
namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'X', 'E', '\0'};
constexpr size_t kHeaderBytes = 8 + 4 + 4 + 8;
constexpr uint64_t kMaxManifestBytes = 64 << 20;

Hash128 checksum(std::string_view bytes) {
  Hasher h;
  h.bytes(bytes.data(), bytes.size());
  return h.finish();
}

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));  // the machines kiln runs on are little-endian
  out.append(bytes, sizeof(T));
}
template <typename T>
T get(std::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

}  // namespace

std::string write_kiln_file(json manifest, const std::vector<std::pair<std::string, std::string>>& sections) {
  manifest["format"] = fmt::format("{}.{}", kKilnFileMajor, kKilnFileMinor);
  json listed = json::array();
  uint64_t offset = 0;
  for (const auto& [name, bytes] : sections) {
    listed.push_back({{"name", name}, {"offset", offset}, {"size", bytes.size()}, {"checksum", checksum(bytes).hex()}});
    offset += bytes.size();
  }
  manifest["sections"] = std::move(listed);
  std::string manifest_text;
  try {
    manifest_text = manifest.dump(1);
  } catch (const json::type_error& e) {  // a name that is not UTF-8 (JSON text must be)
    fail("cannot write a kiln file whose manifest holds text that is not UTF-8 (a parameter or callback name?): {}",
         e.what());
  }

  std::string out(kMagic, sizeof(kMagic));
  put<uint32_t>(out, kKilnFileMajor);
  put<uint32_t>(out, kKilnFileMinor);
  put<uint64_t>(out, manifest_text.size());
  out += manifest_text;
  const Hash128 sum = checksum(manifest_text);
  put<uint64_t>(out, sum.high);
  put<uint64_t>(out, sum.low);
  for (const auto& section : sections) out += section.second;
  return out;
}

bool is_kiln_file(std::string_view bytes) {
  return bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0;
}

std::string_view kiln_file_manifest(std::string_view bytes, std::string_view what, std::string_view where) {
  auto bad = [&](std::string_view problem) { fail("{} {}: {}", what, where, problem); };
  if (bytes.size() < kHeaderBytes || !is_kiln_file(bytes))
    bad(bytes.size() < kHeaderBytes &&
                bytes.starts_with(std::string_view(kMagic, std::min(bytes.size(), sizeof(kMagic))))
            ? "truncated (shorter than its header)"
            : "not a kiln file (no KILNEXE magic)");
  const auto major = get<uint32_t>(bytes, 8), minor = get<uint32_t>(bytes, 12);
  if (major != kKilnFileMajor)
    bad(fmt::format("format version {}.{}; this kiln ({}) reads format {}.x: save it again with this kiln", major,
                    minor, KILN_VERSION_STRING, kKilnFileMajor));
  const auto manifest_size = get<uint64_t>(bytes, 16);
  if (manifest_size > kMaxManifestBytes || manifest_size + 16 > bytes.size() - kHeaderBytes)
    bad("truncated (the manifest runs past the end of the file)");
  const std::string_view manifest_text = bytes.substr(kHeaderBytes, manifest_size);
  const size_t data_start = kHeaderBytes + manifest_size + 16;
  const Hash128 stored{get<uint64_t>(bytes, data_start - 16), get<uint64_t>(bytes, data_start - 8)};
  if (kVerifyChecksums && !(checksum(manifest_text) == stored))
    bad("corrupted (the manifest's checksum does not match)");
  return manifest_text;
}

KilnFile read_kiln_file(std::string_view bytes, std::string_view what, std::string_view where) {
  auto bad = [&](std::string_view problem) { fail("{} {}: {}", what, where, problem); };
  const std::string_view manifest_text = kiln_file_manifest(bytes, what, where);
  const std::string_view data = bytes.substr(kHeaderBytes + manifest_text.size() + 16);
  KilnFile file;
  try {
    file.manifest = json::parse(manifest_text);
    file.kind = file.manifest.value("kind", "executable");
    for (const json& s : file.manifest.at("sections")) {
      const std::string name = s.at("name").get<std::string>();
      const auto offset = s.at("offset").get<uint64_t>(), size = s.at("size").get<uint64_t>();
      if (offset > data.size() || size > data.size() - offset)
        bad(fmt::format("truncated (section '{}' runs past the end of the file)", name));
      const std::string_view section = data.substr(offset, size);
      if (kVerifyChecksums && checksum(section).hex() != s.at("checksum").get<std::string>())
        bad(fmt::format("corrupted (section '{}' does not match its checksum)", name));
      if (!file.sections.emplace(name, section).second) bad(fmt::format("two sections are named '{}'", name));
    }
  } catch (const json::exception& e) {
    bad(fmt::format("malformed manifest: {}", e.what()));
  }
  return file;
}

}  // namespace kiln::io
