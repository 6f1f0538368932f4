#include "kiln/runtime/platform.h"

#include <cstdlib>

namespace kiln {

Platform::Platform(std::shared_ptr<const backend::Backend> backend)
    : backend_(std::move(backend)), devices_{{0, backend_->description()}} {}

const backend::Backend& Platform::backend() const {
  if (!backend_) fail("this Platform is empty (default-constructed); use Platform::cpu()");
  return *backend_;
}

Platform Platform::cpu() {
  const char* chosen = std::getenv("KILN_BACKEND");
  return get(chosen != nullptr && *chosen != '\0' ? chosen : "cpu");
}

Platform Platform::reference() { return get("reference"); }

Platform Platform::get(std::string_view name) { return Platform(backend::find_backend(name)); }

}  // namespace kiln
