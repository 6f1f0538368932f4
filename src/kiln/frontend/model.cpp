#include "kiln/frontend/model.h"

#include <fmt/format.h>

namespace kiln::detail {

void fail_missing(const io::BufferStore& store, const std::vector<std::string>& missing, std::string_view prefix) {
  std::string message = fmt::format("{} weight{} missing{}:", missing.size(), missing.size() == 1 ? " is" : "s are",
                                    prefix.empty() ? "" : fmt::format(" under '{}'", prefix));
  for (const auto& name : missing) {
    message += "\n  " + name;
    auto similar = store.similar_names(name, 3);
    if (!similar.empty()) message += fmt::format(" (similar: {})", fmt::join(similar, ", "));
  }
  throw Error(message);
}

}  // namespace kiln::detail
