#pragma once
// The interface between the runtime and the backends. A backend compiles a
// whole graph once into a Program; run() executes it. Every backend
// (reference now, the optimizing CPU backend next, GPUs later) implements
// this and nothing else, so user code never changes when a backend does.
//
// Host callbacks (custom_call nodes with a callback payload) are part of the
// contract: a backend must call them in program order and never drop,
// merge or reorder side-effecting ones.
#include <memory>
#include <span>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/ir/graph.h"
#include "kiln/ir/host_callback.h"

namespace kiln::backend {

enum class Kind { reference };

class Program {
 public:
  virtual ~Program() = default;
  // One argument per graph parameter (dims and dtype already checked by the
  // runtime); returns one buffer per graph output. Host backends take and
  // return host memory; device backends will add device arrays here.
  // `callbacks` holds the states bound to the executable's host callbacks.
  virtual std::vector<HostBuffer> run(std::span<const HostBuffer> arguments,
                                      const ir::CallbackStates& callbacks) const = 0;
};

// Compiles `graph` (verified first) for the backend.
std::shared_ptr<const Program> compile(Kind kind, ir::Graph graph);

}  // namespace kiln::backend
