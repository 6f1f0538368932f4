#pragma once
// The reference backend: programs that keep the graph and interpret it on
// every call (interpreter.h). It is the oracle, not the fast path.
#include <memory>

#include "kiln/backend/backend.h"

namespace kiln::reference {

std::shared_ptr<const backend::Backend> make_backend();

}  // namespace kiln::reference
