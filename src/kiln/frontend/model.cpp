#include "kiln/frontend/model.h"

#include <fmt/format.h>

#include <cstdio>
#include <mutex>

namespace kiln::detail {
namespace {

// The dotted prefixes in `store` followed by a layer number, with as many
// components as `name` has: the names a layer vector could have meant.
std::vector<std::string> layer_prefixes(const io::BufferStore& store, std::string_view name) {
  const size_t depth = static_cast<size_t>(std::ranges::count(name, '.')) + 1;
  std::set<std::string> found;
  for (const std::string& tensor : store.names()) {
    // The end of the depth-th component, and the component after it.
    size_t end = 0;
    for (size_t d = 0; d < depth && end != std::string::npos; ++d) end = tensor.find('.', d == 0 ? 0 : end + 1);
    if (end == std::string::npos) continue;
    const std::string_view next =
        std::string_view(tensor).substr(end + 1).substr(0, tensor.find('.', end + 1) - end - 1);
    if (!next.empty() && std::ranges::all_of(next, [](char c) { return c >= '0' && c <= '9'; }))
      found.insert(tensor.substr(0, end));
  }
  return {found.begin(), found.end()};
}

bool allowed(std::string_view name, const std::vector<std::string>& prefixes) {
  return std::ranges::any_of(prefixes, [&](const std::string& p) {
    return name == p || (name.size() > p.size() && name.starts_with(p) && name[p.size()] == '.');
  });
}

}  // namespace

void fail_missing(const io::BufferStore& store, const PopulateState& state, std::string_view prefix) {
  std::vector<std::string> counts;
  const size_t missing = state.missing.size(), empty = state.empty_layers.size();
  if (missing > 0) counts.push_back(fmt::format("{} weight{} missing", missing, missing == 1 ? " is" : "s are"));
  if (empty > 0) counts.push_back(fmt::format("{} layer vector{} no layers", empty, empty == 1 ? " finds" : "s find"));
  std::string message =
      fmt::format("{}{}:", fmt::join(counts, " and "), prefix.empty() ? "" : fmt::format(" under '{}'", prefix));
  for (const auto& name : state.missing) {
    message += "\n  " + name;
    auto similar = store.similar_names(name, 3);
    if (!similar.empty()) message += fmt::format(" (similar: {})", fmt::join(similar, ", "));
  }
  for (const auto& name : state.empty_layers) {
    message += fmt::format("\n  {}: no tensors named '{}.0.*'", name, name);
    const std::vector<std::string> candidates = layer_prefixes(store, name);
    const std::vector<std::string> similar = io::most_similar(name, candidates, 1);
    if (!similar.empty())
      message += fmt::format(" (did you mean '{}'?)", similar[0]);
    else if (!candidates.empty())
      message += fmt::format(" (layers in the store: {})", fmt::join(candidates, ", "));
  }
  throw Error(message);
}

void check_unused(const io::BufferStore& store, const std::set<std::string, std::less<>>& used,
                  const LoadOptions& options) {
  if (options.unused == UnusedWeights::ignore) return;
  std::vector<std::string> unused;
  for (const std::string& name : store.names())
    if (!used.contains(name) && !allowed(name, options.allow_unused)) unused.push_back(name);
  if (unused.empty()) return;
  constexpr size_t kShown = 8;
  std::string list =
      fmt::format("{}", fmt::join(unused.begin(), unused.begin() + std::min(kShown, unused.size()), ", "));
  if (unused.size() > kShown) list += fmt::format(" and {} more", unused.size() - kShown);
  const std::string where = options.prefix.empty() ? "" : fmt::format(" under '{}'", options.prefix);
  const std::string message =
      fmt::format("{} weight{}{} in the store {} not used by the model: {}", unused.size(),
                  unused.size() == 1 ? "" : "s", where, unused.size() == 1 ? "is" : "are", list);
  if (options.unused == UnusedWeights::error)
    fail("[populate] {} (list expected ones in LoadOptions::allow_unused)", message);
  // populate() runs for compile() and again for load(): say it once.
  static std::mutex mutex;
  static std::set<std::string> said;
  std::lock_guard lock(mutex);
  if (said.insert(message).second)
    fmt::print(stderr,
               "kiln: warning: {} (LoadOptions: unused = UnusedWeights::error refuses, allow_unused expects "
               "them)\n",
               message);
}

}  // namespace kiln::detail
