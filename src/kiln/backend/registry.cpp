// The backend registry: name -> factory, with the built-in backends added
// the first time it is used (explicitly, not by static initialisers, which
// a static library would drop).
#include <map>
#include <mutex>

#include "kiln/backend/backend.h"
#include "kiln/backend/cpu/backend.h"
#include "kiln/backend/reference/backend.h"

namespace kiln::backend {
namespace {

struct Entry {
  BackendFactory factory;
  std::shared_ptr<const Backend> instance;  // made on first find
};

struct Registry {
  std::mutex mutex;
  std::map<std::string, Entry, std::less<>> entries;

  Registry() {
    entries["reference"] = {[] { return reference::make_backend(); }, nullptr};
    entries["cpu"] = {[] { return cpu::make_backend(); }, nullptr};
  }
};

// Lives for the whole process (constructed on first use, never destroyed,
// so backends stay valid in static destructors of user code).
Registry& registry() {
  static Registry* instance = new Registry();
  return *instance;
}

}  // namespace

void register_backend(std::string name, BackendFactory factory) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  r.entries[std::move(name)] = {std::move(factory), nullptr};
}

std::shared_ptr<const Backend> find_backend(std::string_view name) {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.entries.find(name);
  if (it == r.entries.end()) {
    std::string known;
    for (const auto& [key, entry] : r.entries) known += (known.empty() ? "" : ", ") + key;
    fail("no backend named '{}' (registered: {})", name, known);
  }
  if (!it->second.instance) it->second.instance = it->second.factory();
  return it->second.instance;
}

std::vector<std::string> backend_names() {
  Registry& r = registry();
  std::lock_guard lock(r.mutex);
  std::vector<std::string> names;
  for (const auto& [key, entry] : r.entries) names.push_back(key);
  return names;
}

Signature signature_of(const ir::Graph& graph, size_t weight_count) {
  Signature s;
  for (int32_t id : graph.parameters()) s.parameters.push_back(graph.node(id).results[0]);
  if (weight_count > s.parameters.size())
    fail("compile: {} weights declared but the graph has {} parameters", weight_count, s.parameters.size());
  s.weight_count = weight_count;
  for (const ir::Value& v : graph.outputs()) s.outputs.push_back(graph.shape(v));
  s.output_alias.assign(s.outputs.size(), -1);
  return s;
}

}  // namespace kiln::backend
