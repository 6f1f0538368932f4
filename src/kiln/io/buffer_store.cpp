#include "kiln/io/buffer_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace kiln::io {
namespace {

std::vector<std::string_view> split_dots(std::string_view name) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = name.find('.', start);
    parts.push_back(name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) return parts;
    start = dot + 1;
  }
}

std::string_view strip_param_suffix(std::string_view name) {
  for (std::string_view suffix : {".weight", ".bias"})
    if (name.size() > suffix.size() && name.ends_with(suffix)) return name.substr(0, name.size() - suffix.size());
  return name;
}

bool is_number(std::string_view s) {
  return !s.empty() && std::ranges::all_of(s, [](char c) { return c >= '0' && c <= '9'; });
}

// Edits (insert, delete, substitute, swap two neighbours) from a to b: the
// optimal string alignment distance, which counts "gtae" -> "gate" as one.
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> before(m + 1), previous(m + 1), current(m + 1);
  for (size_t j = 0; j <= m; ++j) previous[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    current[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      const size_t substitute = previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      current[j] = std::min({previous[j] + 1, current[j - 1] + 1, substitute});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        current[j] = std::min(current[j], before[j - 2] + 1);
    }
    std::swap(before, previous);
    std::swap(previous, current);
  }
  return previous[m];
}

// A likely typo: one edit in a name of three or more letters, two in one of
// six or more.
bool is_typo_of(std::string_view a, std::string_view b) {
  const size_t shorter = std::min(a.size(), b.size());
  const size_t allowed = shorter >= 6 ? 2 : shorter >= 3 ? 1 : 0;
  return allowed > 0 && edit_distance(a, b) <= allowed;
}

// How similar `candidate` is to the `wanted` name, higher is closer; 0 means
// unrelated. The tiers follow the usual mistakes: the wrong parameter
// (".weight" vs ".bias"), a missing or extra prefix ("model."), then a typo
// or renaming in some components.
int similarity(std::string_view wanted, std::string_view candidate) {
  const auto wanted_base = strip_param_suffix(wanted);
  const auto candidate_base = strip_param_suffix(candidate);
  if (wanted_base == candidate_base) return 3000;
  if (candidate.ends_with(wanted) || wanted.ends_with(candidate)) return 2000;
  if (candidate.starts_with(wanted_base) || candidate_base.ends_with(wanted_base) ||
      wanted_base.ends_with(candidate_base))
    return 1500;
  // Per component: exact matches count most, then a typo; two layer
  // numbers, or one name containing the other, count less.
  const auto a = split_dots(wanted), b = split_dots(candidate);
  int score = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] == b[i])
      score += 10;
    else if (is_number(a[i]) && is_number(b[i]))
      score += 4;  // another layer's tensor
    else if (is_typo_of(a[i], b[i]))
      score += 8;
    else if (!a[i].empty() && !b[i].empty() &&
             (a[i].find(b[i]) != std::string_view::npos || b[i].find(a[i]) != std::string_view::npos))
      score += 4;
  }
  // Require more than a shared first component ("model") to suggest anything.
  return score > 10 ? score : 0;
}

}  // namespace

std::vector<std::string> most_similar(std::string_view name, const std::vector<std::string>& candidates, size_t limit) {
  struct Scored {
    int score;
    size_t distance;
    const std::string* name;
  };
  std::vector<Scored> scored;
  for (const std::string& candidate : candidates)
    if (int score = similarity(name, candidate); score > 0)
      scored.push_back({score, edit_distance(name, candidate), &candidate});
  // Best tier first; within a tier, the fewest edits to the whole name.
  std::stable_sort(scored.begin(), scored.end(), [](const Scored& a, const Scored& b) {
    return a.score != b.score ? a.score > b.score : a.distance < b.distance;
  });
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(limit, scored.size()); ++i) out.push_back(*scored[i].name);
  return out;
}

void BufferStore::add(std::string name, HostBuffer buffer, std::string file) {
  auto [it, inserted] = tensors_.try_emplace(std::move(name), Entry{std::move(buffer), file});
  if (!inserted) fail("tensor '{}' is in both '{}' and '{}'", it->first, it->second.file, file);
}

bool BufferStore::contains_prefix(std::string_view name) const {
  if (contains(name)) return true;
  const std::string start = std::string(name) + ".";
  auto it = tensors_.lower_bound(start);
  return it != tensors_.end() && it->first.starts_with(start);
}

std::vector<std::string> BufferStore::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, _] : tensors_) out.push_back(name);
  return out;
}

const BufferStore::Entry& BufferStore::entry(std::string_view name) const {
  auto it = tensors_.find(name);
  if (it != tensors_.end()) return it->second;
  auto similar = similar_names(name);
  if (similar.empty()) fail("no tensor named '{}' in the store ({} tensors)", name, tensors_.size());
  fail("no tensor named '{}' in the store; similar names: {}", name, fmt::join(similar, ", "));
}

const HostBuffer& BufferStore::get(std::string_view name) const { return entry(name).buffer; }
const std::string& BufferStore::file_of(std::string_view name) const { return entry(name).file; }

int64_t BufferStore::count_layers(std::string_view prefix) const {
  const std::string start = std::string(prefix) + ".";
  std::set<int64_t> indices;
  for (auto it = tensors_.lower_bound(start); it != tensors_.end() && it->first.starts_with(start); ++it) {
    std::string_view rest = std::string_view(it->first).substr(start.size());
    int64_t index = -1;
    auto [end, error] = std::from_chars(rest.data(), rest.data() + rest.size(), index);
    if (error == std::errc() && index >= 0 && (end == rest.data() + rest.size() || *end == '.')) indices.insert(index);
  }
  if (indices.empty()) return 0;
  const int64_t count = *indices.rbegin() + 1;
  if (static_cast<int64_t>(indices.size()) != count) {
    for (int64_t i = 0; i < count; ++i)
      if (!indices.contains(i))
        fail("count_layers('{}'): layers run up to {} but layer {} is missing", prefix, count - 1, i);
  }
  return count;
}

BufferStore BufferStore::view(std::string_view prefix) const {
  const std::string start = std::string(prefix) + ".";
  BufferStore out;
  out.metadata_ = metadata_;
  for (auto it = tensors_.lower_bound(start); it != tensors_.end() && it->first.starts_with(start); ++it)
    out.tensors_.emplace(it->first.substr(start.size()), it->second);
  return out;
}

std::vector<std::string> BufferStore::similar_names(std::string_view name, size_t limit) const {
  return most_similar(name, names(), limit);
}

}  // namespace kiln::io
