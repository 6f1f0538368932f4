#include "kiln/runtime/compile.h"

namespace kiln::detail {

ExecutableCore make_core(const Platform& platform, ir::Graph graph, size_t weight_count,
                         std::vector<size_t> result_layout) {
  ExecutableCore core;
  core.result_layout = std::move(result_layout);
  core.platform = platform;
  core.weight_count = weight_count;
  for (int32_t id : graph.parameters()) {
    const ir::Node& node = graph.node(id);
    core.parameters.push_back({node.attrs_as<ir::ParameterAttrs>().name, node.results[0]});
  }
  core.program = platform.backend().compile(graph, weight_count, {});
  core.graph = std::make_shared<const ir::Graph>(std::move(graph));
  return core;
}

}  // namespace kiln::detail
