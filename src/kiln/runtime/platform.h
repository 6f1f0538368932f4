#pragma once
// Platform: where executables run and buffers live, a handle on one backend
// of the registry (backend/backend.h). Platform::cpu() is the optimizing CPU
// backend; KILN_BACKEND=reference in the environment makes it the reference
// interpreter instead (the oracle, for debugging). Platform::reference()
// always is the interpreter. Copies are cheap handles on the same backend.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/backend/backend.h"

namespace kiln {

struct Device {
  int id;
  std::string description;
};

class Platform {
 public:
  Platform() = default;  // no backend: only for holding one later
  static Platform cpu();
  static Platform reference();
  // The backend registered under `name` ("cpu", "reference", or your own).
  static Platform get(std::string_view name);

  std::string_view name() const { return backend_ ? backend_->name() : "none"; }
  const backend::Backend& backend() const;
  const std::shared_ptr<const backend::Backend>& backend_handle() const { return backend_; }
  // A platform may expose several devices (for sharding later); host
  // platforms have one.
  const std::vector<Device>& devices() const { return devices_; }
  friend bool operator==(const Platform& a, const Platform& b) { return a.backend_ == b.backend_; }

 private:
  explicit Platform(std::shared_ptr<const backend::Backend> backend);
  std::shared_ptr<const backend::Backend> backend_;
  std::vector<Device> devices_;
};

// The threads the CPU backends use, for every executable of the process:
// one OpenMP pool shared by the generated kernels and oneDNN. The default is
// one per core (or OMP_NUM_THREADS). Set it before the first call.
void set_cpu_threads(int threads);
int cpu_threads();

}  // namespace kiln
