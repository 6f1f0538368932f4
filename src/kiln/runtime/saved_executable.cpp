// Saved executables: one file holding what an Executable is apart from its
// weights, so that loading it compiles nothing (no C++ compiler needed). The
// container is io/kiln_file.h's, of kind "executable":
//
//   manifest     kiln version, backend, graph hash, parameters (names,
//                tagged shapes, how many are weights), output aliases, the
//                result layout, the callbacks by name, the kernels' CPU
//                features and compiler
//   sections     "graph": ir::print's text, read back by ir::parse; and the
//                backend's artifacts (the CPU backend's kernels, a shared
//                object loaded from memory; the kernel cache's entries hold
//                the same sections)
//
// Load checks the container (magic, major version, checksums, bounds), the
// kind and the backend before anything is used; the backend then checks the
// CPU features. The program is rebuilt from the graph with the saved kernels
// (the passes and memory planning run again, deterministically, in
// milliseconds), so a file never holds pointers or the in-memory layout of
// one kiln build's structures.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "kiln/io/atomic_file.h"
#include "kiln/io/kiln_file.h"
#include "kiln/io/weight_source.h"
#include "kiln/ir/hash.h"
#include "kiln/ir/host_callback.h"
#include "kiln/runtime/executable.h"
#include "kiln/version.h"

namespace kiln::detail {
namespace {

using json = nlohmann::json;

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
      {"kind", "executable"},
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
  return io::write_kiln_file(std::move(manifest), sections);
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

bool is_saved_executable(std::string_view bytes) { return io::is_kiln_file(bytes); }

std::string saved_manifest(const std::filesystem::path& path) {
  const io::SourcePtr source = map_saved(path);
  return std::string(io::kiln_file_manifest(text_of(*source), "saved executable", path.string()));
}

ExecutableCore deserialize_core(std::string_view bytes, const std::string& where, const Platform& platform) {
  auto bad = [&](std::string_view problem) { fail("saved executable {}: {}", where, problem); };
  const io::KilnFile file = io::read_kiln_file(bytes, "saved executable", where);
  if (file.kind != "executable")
    bad(
        fmt::format("it is a file of kind '{}' (a kernel cache entry holds kernels, not a program): load one "
                    "written by Executable::save or kiln compile",
                    file.kind));
  const json& manifest = file.manifest;
  backend::Artifacts artifacts;
  std::string_view graph_text;
  ExecutableCore core;
  try {
    const std::string backend = manifest.at("backend").get<std::string>();
    if (backend != platform.name())
      bad(fmt::format("saved for the '{}' backend; it cannot be loaded on '{}'", backend, platform.name()));
    for (const auto& [name, section] : file.sections) {
      if (name == "graph")
        graph_text = section;
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
  if (io::kVerifyChecksums && ir::hash(graph).hex() != manifest.value("graph_hash", ""))
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
