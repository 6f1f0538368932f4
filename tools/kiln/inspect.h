#pragma once
#include <filesystem>
#include <iosfwd>

namespace kiln::tools {

// Prints every tensor of the weights at `path` (file, index or directory),
// the metadata and the totals; as JSON when `json` is set.
void inspect(const std::filesystem::path& path, bool json, std::ostream& out);

}  // namespace kiln::tools
