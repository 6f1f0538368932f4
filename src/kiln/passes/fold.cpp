#include "kiln/passes/fold.h"

#include "kiln/ir/rewrite.h"

namespace kiln::passes {

ir::Graph fold_constants(const ir::Graph& graph, const NodeEvaluator& evaluate, size_t max_bytes) {
  return ir::rebuild(
      graph, [&](ir::Graph& out, const ir::Node& n, const std::vector<ir::Value>& operands, const ir::ValueMap&) {
        std::vector<ir::Value> none;
        if (operands.empty() || n.op == ir::Op::custom_call || n.op == ir::Op::optimization_barrier) return none;
        std::vector<HostBuffer> values;
        for (const ir::Value& v : operands) {
          const ir::Node& producer = out.node(v.node);
          if (producer.op != ir::Op::constant) return none;
          values.push_back(producer.attrs_as<ir::ConstantAttrs>().value);
        }
        size_t bytes = 0;
        for (const Shape& s : n.results) bytes += s.byte_size();
        if (bytes > max_bytes) return none;
        const std::vector<HostBuffer> results = evaluate(n, values);
        std::vector<ir::Value> folded;
        for (size_t i = 0; i < results.size(); ++i)
          folded.push_back(out.add(ir::Op::constant, {}, ir::ConstantAttrs{results[i].reshape(n.results[i])}));
        return folded;
      });
}

}  // namespace kiln::passes
