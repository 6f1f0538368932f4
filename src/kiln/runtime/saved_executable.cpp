// Saved executables: one file holding what an Executable is apart from its
// weights, so that loading it compiles nothing (no C++ compiler needed).
//
//   "KILNEXE\0"  u32 format major, u32 format minor, u64 manifest bytes (little-endian)
//   manifest     JSON: kiln version, backend, graph hash, parameters (names,
//                tagged shapes, how many are weights), output aliases, the
//                result layout, the callbacks by name, the kernels' CPU
//                features and compiler, and the sections: name, offset (from
//                the end of the manifest checksum), size, checksum
//   16 bytes     the manifest's checksum (Hash128, high then low)
//   sections     "graph": ir::print's text, read back by ir::parse; and the
//                backend's artifacts (the CPU backend's kernels, a shared
//                object loaded from memory)
//
// Load checks the magic, the major version, the manifest checksum, every
// section's bounds and checksum and the backend before anything is used; the
// backend then checks the CPU features. The program is rebuilt from the
// graph with the saved kernels (the passes and memory planning run again,
// deterministically, in milliseconds), so a file never holds pointers or the
// in-memory layout of one kiln build's structures.
#include <fmt/format.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "kiln/core/hash.h"
#include "kiln/io/atomic_file.h"
#include "kiln/io/weight_source.h"
#include "kiln/ir/hash.h"
#include "kiln/ir/host_callback.h"
#include "kiln/runtime/executable.h"
#include "kiln/version.h"

namespace kiln::detail {
namespace {

using json = nlohmann::json;

constexpr char kMagic[8] = {'K', 'I', 'L', 'N', 'E', 'X', 'E', '\0'};
constexpr uint32_t kFormatMajor = 1, kFormatMinor = 0;
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

json shape_json(const Shape& s) {
  json dims = json::array(), tags = json::array();
  for (int i = 0; i < s.rank(); ++i) {
    dims.push_back(s.dim(i));
    tags.push_back(std::string(s.tag(i).view()));
  }
  return {{"dims", dims}, {"tags", tags}, {"dtype", std::string(name(s.dtype()))}};
}

std::vector<std::string> callback_names(const ir::Graph& graph) {
  std::vector<std::string> names;
  for (const ir::Node& n : graph.nodes()) {
    if (n.op != ir::Op::custom_call) continue;
    const auto& attrs = n.attrs_as<ir::CustomCallAttrs>();
    if (attrs.target == ir::kHostCallbackTarget && attrs.payload)
      names.push_back(static_cast<const ir::HostCallback*>(attrs.payload.get())->name);
  }
  return names;
}

// The file mapped (io::map_file: no copy), its errors prefixed with what it is.
io::SourcePtr map_saved(const std::filesystem::path& path) {
  try {
    return io::map_file(path);
  } catch (const Error& e) {
    fail("cannot open the saved executable {}: {}", path.string(), e.what());
  }
}

std::string_view text_of(const io::WeightSource& source) {
  const auto bytes = source.bytes();
  return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

}  // namespace

std::string serialize_core(const ExecutableCore& core) {
  if (!core.program || !core.graph) fail("[save] this executable is empty (default-constructed): nothing to save");
  const backend::Artifacts artifacts = core.program->artifacts();
  std::vector<std::pair<std::string, std::string>> sections;
  sections.emplace_back("graph", ir::print(*core.graph, {.full_constants = true}));
  for (const auto& [name, bytes] : artifacts) sections.emplace_back(name, bytes);

  const backend::Signature& signature = core.program->signature();
  json parameters = json::array();
  for (const ParameterSpec& p : core.parameters)
    parameters.push_back({{"name", p.name}, {"shape", shape_json(p.shape)}});
  json manifest = {
      {"format", fmt::format("{}.{}", kFormatMajor, kFormatMinor)},
      {"kiln_version", KILN_VERSION_STRING},
      {"backend", std::string(core.platform.name())},
      {"graph_hash", ir::hash(*core.graph).hex()},
      {"parameters", parameters},
      {"weight_count", core.weight_count},
      {"output_alias", signature.output_alias},
      {"result_layout", core.result_layout},
      {"callbacks", callback_names(*core.graph)},
  };
  if (const auto it = artifacts.find("cpu.features"); it != artifacts.end()) manifest["cpu_features"] = it->second;
  if (const auto it = artifacts.find("cpu.compiler"); it != artifacts.end()) manifest["compiler"] = it->second;
  json listed = json::array();
  uint64_t offset = 0;
  for (const auto& [name, bytes] : sections) {
    listed.push_back({{"name", name}, {"offset", offset}, {"size", bytes.size()}, {"checksum", checksum(bytes).hex()}});
    offset += bytes.size();
  }
  manifest["sections"] = listed;
  const std::string manifest_text = manifest.dump(1);

  std::string head(kMagic, sizeof(kMagic));
  put<uint32_t>(head, kFormatMajor);
  put<uint32_t>(head, kFormatMinor);
  put<uint64_t>(head, manifest_text.size());
  head += manifest_text;
  const Hash128 sum = checksum(manifest_text);
  put<uint64_t>(head, sum.high);
  put<uint64_t>(head, sum.low);
  for (const auto& section : sections) head += section.second;
  return head;
}

void save_core(const ExecutableCore& core, const std::filesystem::path& path) {
  const std::string bytes = serialize_core(core);
  io::AtomicFile file(path);
  file.write(std::as_bytes(std::span(bytes)));
  file.commit();
}

ExecutableCore load_core(const std::filesystem::path& path, const Platform& platform) {
  const io::SourcePtr source = map_saved(path);
  return deserialize_core(text_of(*source), path.string(), platform);
}

namespace {

// The manifest text of a saved executable, after the header and its checksum are checked.
std::string_view checked_manifest(std::string_view bytes, const std::string& where) {
  auto bad = [&](std::string_view problem) { fail("saved executable {}: {}", where, problem); };
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0)
    bad(bytes.size() < kHeaderBytes &&
                bytes.starts_with(std::string_view(kMagic, std::min(bytes.size(), sizeof(kMagic))))
            ? "truncated (shorter than its header)"
            : "not a kiln executable (no KILNEXE magic)");
  const auto major = get<uint32_t>(bytes, 8), minor = get<uint32_t>(bytes, 12);
  if (major != kFormatMajor)
    bad(fmt::format("format version {}.{}; this kiln ({}) reads format {}.x: save it again with this kiln", major,
                    minor, KILN_VERSION_STRING, kFormatMajor));
  const auto manifest_size = get<uint64_t>(bytes, 16);
  if (manifest_size > kMaxManifestBytes || manifest_size + 16 > bytes.size() - kHeaderBytes)
    bad("truncated (the manifest runs past the end of the file)");
  const std::string_view manifest_text = bytes.substr(kHeaderBytes, manifest_size);
  const size_t data_start = kHeaderBytes + manifest_size + 16;
  const Hash128 stored{get<uint64_t>(bytes, data_start - 16), get<uint64_t>(bytes, data_start - 8)};
  if (!(checksum(manifest_text) == stored)) bad("corrupted (the manifest's checksum does not match)");
  return manifest_text;
}

}  // namespace

bool is_saved_executable(std::string_view bytes) {
  return bytes.size() >= sizeof(kMagic) && std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) == 0;
}

std::string saved_manifest(const std::filesystem::path& path) {
  const io::SourcePtr source = map_saved(path);
  return std::string(checked_manifest(text_of(*source), path.string()));
}

ExecutableCore deserialize_core(std::string_view bytes, const std::string& where, const Platform& platform) {
  auto bad = [&](std::string_view problem) { fail("saved executable {}: {}", where, problem); };
  const std::string_view manifest_text = checked_manifest(bytes, where);
  const size_t data_start = kHeaderBytes + manifest_text.size() + 16;

  json manifest;
  backend::Artifacts artifacts;
  std::string graph_text;
  ExecutableCore core;
  try {
    manifest = json::parse(manifest_text);
    const std::string backend = manifest.at("backend").get<std::string>();
    if (backend != platform.name())
      bad(fmt::format("saved for the '{}' backend; it cannot be loaded on '{}'", backend, platform.name()));
    const std::string_view data = bytes.substr(data_start);
    for (const json& s : manifest.at("sections")) {
      const std::string name = s.at("name").get<std::string>();
      const auto offset = s.at("offset").get<uint64_t>(), size = s.at("size").get<uint64_t>();
      if (offset > data.size() || size > data.size() - offset)
        bad(fmt::format("truncated (section '{}' runs past the end of the file)", name));
      const std::string_view section = data.substr(offset, size);
      if (checksum(section).hex() != s.at("checksum").get<std::string>())
        bad(fmt::format("corrupted (section '{}' does not match its checksum)", name));
      if (name == "graph")
        graph_text = std::string(section);
      else
        artifacts.emplace(name, std::string(section));
    }
    if (graph_text.empty()) bad("it has no graph section");
    core.weight_count = manifest.at("weight_count").get<size_t>();
    core.result_layout = manifest.at("result_layout").get<std::vector<size_t>>();
    for (const json& p : manifest.at("parameters")) core.parameters.push_back({p.at("name").get<std::string>(), {}});
  } catch (const json::exception& e) {
    bad(fmt::format("malformed manifest: {}", e.what()));
  }

  ir::Graph graph = ir::parse(graph_text, where + " (graph)");
  if (ir::hash(graph).hex() != manifest.value("graph_hash", ""))
    bad("its graph does not hash to the manifest's graph_hash");
  if (graph.parameters().size() != core.parameters.size() || core.weight_count > core.parameters.size())
    bad("its manifest's parameters do not match its graph");
  for (size_t i = 0; i < core.parameters.size(); ++i)
    core.parameters[i].shape = graph.node(graph.parameters()[i]).results[0];
  core.platform = platform;
  backend::CompileOptions options;
  options.artifacts = &artifacts;
  try {
    core.program = platform.backend().compile(graph, core.weight_count, options);
  } catch (const Error& e) {
    bad(e.what());
  }
  core.graph = std::make_shared<const ir::Graph>(std::move(graph));
  return core;
}

}  // namespace kiln::detail
