#include "kiln/runtime/platform.h"

namespace kiln {

Platform Platform::cpu() {
  Platform p;
  p.name_ = "cpu";
  p.backend_ = backend::Kind::reference;  // until the optimizing CPU backend lands
  p.devices_ = {{0, "host CPU"}};
  return p;
}

Platform Platform::reference() {
  Platform p;
  p.name_ = "reference";
  p.backend_ = backend::Kind::reference;
  p.devices_ = {{0, "host CPU (reference interpreter)"}};
  return p;
}

}  // namespace kiln
