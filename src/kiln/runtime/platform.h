#pragma once
// Platform: where executables run and buffers live. Platform::cpu() is the
// embedded CPU platform; until the optimizing CPU backend lands it runs the
// reference interpreter, which Platform::reference() always selects.
#include <string>
#include <vector>

#include "kiln/backend/program.h"

namespace kiln {

struct Device {
  int id;
  std::string description;
};

class Platform {
 public:
  static Platform cpu();
  static Platform reference();

  const std::string& name() const { return name_; }
  backend::Kind backend() const { return backend_; }
  // A platform may expose several devices (for sharding later); host
  // platforms have one.
  const std::vector<Device>& devices() const { return devices_; }
  friend bool operator==(const Platform& a, const Platform& b) { return a.name_ == b.name_; }

 private:
  std::string name_;
  backend::Kind backend_ = backend::Kind::reference;
  std::vector<Device> devices_;
};

}  // namespace kiln
