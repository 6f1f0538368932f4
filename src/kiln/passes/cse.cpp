#include "kiln/passes/cse.h"

#include <map>

#include "kiln/ir/hash.h"
#include "kiln/ir/rewrite.h"

namespace kiln::passes {

ir::Graph eliminate_common_subexpressions(const ir::Graph& graph) {
  std::map<std::pair<uint64_t, uint64_t>, std::vector<ir::Value>> seen;
  return ir::rebuild(
      graph, [&](ir::Graph& out, const ir::Node& n, const std::vector<ir::Value>& operands, const ir::ValueMap&) {
        if (n.op == ir::Op::custom_call) return std::vector<ir::Value>{};
        Hasher h;
        h.string(ir::name(n.op));
        for (const ir::Value& v : operands) h.value(v.node), h.value(v.output);
        ir::hash_attributes(h, n.attrs);
        const Hash128 key = h.finish();
        auto [it, inserted] = seen.try_emplace({key.high, key.low});
        if (inserted) it->second = out.results(out.add(n.op, operands, n.attrs).node);
        return it->second;
      });
}

}  // namespace kiln::passes
