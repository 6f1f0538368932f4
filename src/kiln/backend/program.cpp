#include "kiln/backend/program.h"

#include "kiln/backend/reference/interpreter.h"
#include "kiln/passes/dce.h"

namespace kiln::backend {
namespace {

// The reference backend "compiles" by keeping the graph and interprets it
// on every run: it is the oracle, not the fast path.
class ReferenceProgram final : public Program {
 public:
  explicit ReferenceProgram(ir::Graph graph) : graph_(std::move(graph)) {}
  std::vector<HostBuffer> run(std::span<const HostBuffer> arguments,
                              const ir::CallbackStates& callbacks) const override {
    return reference::evaluate(graph_, arguments, &callbacks);
  }

 private:
  ir::Graph graph_;
};

}  // namespace

std::shared_ptr<const Program> compile(Kind kind, ir::Graph graph) {
  ir::verify(graph);
  graph = passes::eliminate_dead_code(graph);
  switch (kind) {
    case Kind::reference:
      return std::make_shared<ReferenceProgram>(std::move(graph));
  }
  return nullptr;
}

}  // namespace kiln::backend
