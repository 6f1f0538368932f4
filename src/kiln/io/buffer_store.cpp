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
  // Per component: exact matches count most; two layer numbers, or one name
  // containing the other, count less.
  const auto a = split_dots(wanted), b = split_dots(candidate);
  int score = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    if (a[i] == b[i])
      score += 10;
    else if (is_number(a[i]) && is_number(b[i]))
      score += 4;  // another layer's tensor
    else if (!a[i].empty() && !b[i].empty() &&
             (a[i].find(b[i]) != std::string_view::npos || b[i].find(a[i]) != std::string_view::npos))
      score += 4;
  }
  // Require more than a shared first component ("model") to suggest anything.
  return score > 10 ? score : 0;
}

}  // namespace

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
  std::vector<std::pair<int, const std::string*>> scored;
  for (const auto& [candidate, _] : tensors_)
    if (int score = similarity(name, candidate); score > 0) scored.emplace_back(score, &candidate);
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < std::min(limit, scored.size()); ++i) out.push_back(*scored[i].second);
  return out;
}

}  // namespace kiln::io
