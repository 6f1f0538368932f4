#include "kiln/backend/cpu/backend.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "kiln/backend/cpu/fusion.h"
#include "kiln/backend/cpu/layout.h"
#include "kiln/backend/cpu/matvec.h"
#include "kiln/backend/cpu/memory_pool.h"
#include "kiln/backend/cpu/prelude.h"
#include "kiln/backend/cpu/program.h"
#include "kiln/backend/cpu/render.h"
#include "kiln/backend/reference/interpreter.h"
#include "kiln/passes/cse.h"
#include "kiln/passes/dce.h"
#include "kiln/passes/fold.h"
#include "kiln/passes/simplify.h"
#include "kiln/passes/slice_updates.h"

namespace kiln::cpu {
namespace {

constexpr size_t kArenaAlignment = 64;

size_t aligned(size_t bytes) { return (bytes + kArenaAlignment - 1) / kArenaAlignment * kArenaAlignment; }

bool same_layout(const Shape& a, const Shape& b) {
  return a.dtype() == b.dtype() && std::ranges::equal(a.dims(), b.dims());
}

// First-fit offsets for the arena values given their live step ranges:
// a value's memory is reused once its last reader has run.
int32_t root_of(const std::vector<Slot>& slots, int32_t slot) {
  while (slots[static_cast<size_t>(slot)].kind == Slot::Kind::view) slot = slots[static_cast<size_t>(slot)].base;
  return slot;
}

size_t plan_arena(std::vector<Slot>& slots, const std::vector<Step>& steps) {
  const size_t n = slots.size();
  std::vector<int> first(n, -1), last(n, -1);
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int32_t w : steps[s].writes)
      if (first[static_cast<size_t>(w)] < 0) first[static_cast<size_t>(w)] = static_cast<int>(s);
    for (int32_t r : steps[s].reads)
      last[static_cast<size_t>(root_of(slots, r))] = static_cast<int>(s);  // a view's reads are its base's
  }
  std::map<size_t, size_t> free_blocks;  // offset -> size
  size_t top = 0;
  auto release = [&](size_t offset, size_t size) {
    auto it = free_blocks.emplace(offset, size).first;
    if (auto next = std::next(it); next != free_blocks.end() && it->first + it->second == next->first) {
      it->second += next->second;
      free_blocks.erase(next);
    }
    if (it != free_blocks.begin()) {
      auto prev = std::prev(it);
      if (prev->first + prev->second == it->first) {
        prev->second += it->second;
        free_blocks.erase(it);
      }
    }
  };
  std::vector<std::vector<size_t>> dies_at(steps.size());
  for (size_t s = 0; s < steps.size(); ++s) {
    for (int32_t w : steps[s].writes) {
      Slot& slot = slots[static_cast<size_t>(w)];
      if (slot.kind != Slot::Kind::arena || first[static_cast<size_t>(w)] != static_cast<int>(s)) continue;
      const size_t size = aligned(std::max<size_t>(slot.shape.byte_size(), 1));
      auto best = free_blocks.end();
      for (auto it = free_blocks.begin(); it != free_blocks.end(); ++it)
        if (it->second >= size && (best == free_blocks.end() || it->second < best->second)) best = it;
      if (best != free_blocks.end()) {
        slot.index = best->first;
        const size_t remaining = best->second - size, rest_offset = best->first + size;
        free_blocks.erase(best);
        if (remaining > 0) free_blocks.emplace(rest_offset, remaining);
      } else {
        slot.index = top;
        top += size;
      }
      const int end = std::max(last[static_cast<size_t>(w)], static_cast<int>(s));
      dies_at[static_cast<size_t>(end)].push_back(static_cast<size_t>(w));
    }
    for (size_t w : dies_at[s]) release(slots[w].index, aligned(std::max<size_t>(slots[w].shape.byte_size(), 1)));
  }
  return top;
}

// A saved executable's kernels run only on a CPU with every ISA extension
// of the machine that compiled them (-march=native).
void check_cpu_features(const backend::Artifacts& artifacts) {
  const auto it = artifacts.find("cpu.features");
  if (it == artifacts.end()) fail("the saved executable does not say which CPU features its kernels need");
  const std::vector<std::string> have = host_isa_features();
  std::vector<std::string> missing;
  std::istringstream words(it->second);
  for (std::string word; words >> word;)
    if (!std::ranges::binary_search(have, word)) missing.push_back(word);
  if (!missing.empty())
    fail(
        "the saved executable's kernels need CPU features this machine lacks: {} (compile it on this machine "
        "instead)",
        fmt::join(missing, ", "));
}

class Compilation {
 public:
  Compilation(const ir::Graph& graph, size_t weight_count, const backend::CompileOptions& options)
      : graph_(graph), weight_count_(weight_count), options_(options), fusion_(fuse(graph)) {}

  std::shared_ptr<const backend::Program> build();

 private:
  int32_t new_slot(Slot::Kind kind, size_t index, const Shape& shape) {
    slots_.push_back({kind, index, shape});
    return static_cast<int32_t>(slots_.size() - 1);
  }
  int32_t slot_of(ir::Value v) const {
    auto it = value_slots_.find({v.node, v.output});
    if (it == value_slots_.end()) fail("cpu: value %{}:{} has no memory (a fusion bug)", v.node, v.output);
    return it->second;
  }
  // Memory for a result value: the memory of its in-place chain, its output
  // slot if the graph returns it (or its chain ends in an output), else the arena.
  int32_t result_slot(ir::Value v) {
    const auto i = static_cast<size_t>(v.node);
    if (v.output == 0 && chain_root_[i] != v.node) return value_slots_[{v.node, 0}] = slot_of({chain_root_[i], 0});
    const Shape& shape = graph_.shape(v);
    auto out = first_output_.find({v.node, v.output});
    const int output = out != first_output_.end() ? static_cast<int>(out->second)
                       : v.output == 0            ? chain_output_[i]
                                                  : -1;
    const int32_t slot = output >= 0 ? new_slot(Slot::Kind::output, static_cast<size_t>(output), shape)
                                     : new_slot(Slot::Kind::arena, 0, shape);
    value_slots_[{v.node, v.output}] = slot;
    return slot;
  }
  // The step position of a user: the root of its group, or itself.
  // A dot whose epilogue absorbed a group runs where that group's root would.
  int32_t position(int32_t user) const {
    if (const auto e = epilogues_.find(user); e != epilogues_.end()) return e->second.root;
    const int32_t g = fusion_.group_of[static_cast<size_t>(user)];
    return g >= 0 ? fusion_.groups[static_cast<size_t>(g)].root : user;
  }
  int32_t last_read(int32_t node) const;
  std::optional<std::pair<ir::Value, size_t>> view_of(int32_t id) const;
  bool is_view_node(int32_t id) const { return view_of(id).has_value(); }
  bool updates_in_place(int32_t id) const;
  void find_users();
  void plan_epilogues();
  struct PlannedMatmul {
    MatmulShape shape;
    bool packed_weight;
  };
  std::optional<PlannedMatmul> planned_matmul(int32_t dot) const;
  void plan_in_place_chains();
  void add_node_step(int32_t id);
  void add_matmul_step(int32_t dot, std::shared_ptr<const Matmul> matmul, bool packed_weight);
  std::vector<int> output_aliases(const backend::Signature& signature) const;
  std::string saved_compiler() const;

  const ir::Graph& graph_;
  size_t weight_count_;
  const backend::CompileOptions& options_;
  Fusion fusion_;
  std::vector<Slot> slots_;
  std::vector<Step> steps_;
  std::vector<HostBuffer> constants_;
  std::map<std::pair<int32_t, int32_t>, int32_t> value_slots_;
  std::map<std::pair<int32_t, int32_t>, size_t> first_output_;
  std::vector<KernelSource> kernels_;  // per kernel step, in step order
  std::vector<size_t> kernel_steps_;   // step index of each kernel
  int packed_weights_ = 0;
  std::vector<std::vector<int32_t>> users_;  // per node, its distinct users
  std::vector<int> group_size_;              // nodes per fusion group
  std::vector<int32_t> chain_root_;          // per node: the first value of its in-place update chain
  std::vector<int> chain_output_;            // per chain root: the output its chain ends in, or -1
  // A dot and the elementwise group after it computed as one oneDNN matmul with post-ops.
  struct Epilogue {
    int32_t root;  // the group's root: the value the matmul stores
    std::vector<PostOp> post_ops;
    std::vector<ir::Value> extra;  // per binary post-op, the value it reads
    std::shared_ptr<const Matmul> matmul;
    bool packed_weight = false;
  };
  std::map<int32_t, Epilogue> epilogues_;  // by dot
  std::map<int32_t, int32_t> absorbed_;    // group root -> its dot
};

// The last step position that reads `node`'s value, through views and nodes
// recomputed in their users' groups; graph outputs are read after the end.
int32_t Compilation::last_read(int32_t node) const {
  if (first_output_.contains({node, 0})) return std::numeric_limits<int32_t>::max();
  int32_t last = -1;
  for (int32_t u : users_[static_cast<size_t>(node)]) {
    if (fusion_.group_of[static_cast<size_t>(u)] == kInlineAnywhere) {
      last = std::max(last, last_read(u));
      continue;
    }
    const int32_t at = position(u);
    last = std::max(last, is_view_node(at) ? last_read(at) : at);  // a view is read where its readers are
  }
  return last;
}

// A contiguous slice: leading axes of size 1, then one partial axis, then whole axes.
bool is_contiguous_slice(const ir::Node& n, const Shape& in) {
  const auto& a = n.attrs_as<ir::SliceAttrs>();
  int k = 0;
  while (k < in.rank() && a.limit[static_cast<size_t>(k)] - a.start[static_cast<size_t>(k)] == 1) ++k;
  for (int i = k; i < in.rank(); ++i) {
    const auto j = static_cast<size_t>(i);
    if (a.stride[j] != 1 && a.limit[j] - a.start[j] > 1) return false;
    if (i > k && (a.start[j] != 0 || a.limit[j] != in.dim(i))) return false;
  }
  return true;
}

// A group made only of reshapes and contiguous slices of one value in memory
// (and not an output): a view of that memory at a byte offset, not a copy.
std::optional<std::pair<ir::Value, size_t>> Compilation::view_of(int32_t id) const {
  const int32_t g = fusion_.group_of[static_cast<size_t>(id)];
  if (g < 0 || fusion_.groups[static_cast<size_t>(g)].root != id || first_output_.contains({id, 0}))
    return std::nullopt;
  size_t offset = 0;
  int chain = 0;
  ir::Value v{id, 0};
  while (fusion_.group_of[static_cast<size_t>(v.node)] == g) {
    const ir::Node& n = graph_.node(v.node);
    const Shape& in = graph_.shape(n.operands[0]);
    if (n.op == ir::Op::slice) {
      if (!is_contiguous_slice(n, in)) return std::nullopt;
      const auto& a = n.attrs_as<ir::SliceAttrs>();
      const auto strides = in.byte_strides();
      for (int i = 0; i < in.rank(); ++i)
        offset += static_cast<size_t>(a.start[static_cast<size_t>(i)] * strides[static_cast<size_t>(i)]);
    } else if (n.op != ir::Op::reshape) {
      return std::nullopt;
    }
    ++chain;
    v = n.operands[0];
  }
  if (chain != group_size_[static_cast<size_t>(g)] || !fusion_.materialized[static_cast<size_t>(v.node)] ||
      fusion_.group_of[static_cast<size_t>(v.node)] == kInlineAnywhere)
    return std::nullopt;
  return std::make_pair(v, offset);
}

// A slice update may write into its operand's memory when nothing reads
// the operand afterwards (a KV cache threaded through the layers).
bool Compilation::updates_in_place(int32_t id) const {
  const ir::Node& n = graph_.node(id);
  if (n.op != ir::Op::dynamic_update_slice) return false;
  const ir::Value a = n.operands[0];
  const ir::Node& producer = graph_.node(a.node);
  if (a.output != 0 || producer.results.size() != 1 || producer.op == ir::Op::parameter ||
      producer.op == ir::Op::constant || !fusion_.materialized[static_cast<size_t>(a.node)] ||
      fusion_.group_of[static_cast<size_t>(a.node)] == kInlineAnywhere || is_view_node(a.node))
    return false;
  for (size_t i = 1; i < n.operands.size(); ++i)
    if (n.operands[i] == a) return false;
  return last_read(a.node) == id;
}

void Compilation::find_users() {
  const size_t n = graph_.nodes().size();
  users_.assign(n, {});
  for (size_t id = 0; id < n; ++id)
    for (const ir::Value& v : graph_.node(static_cast<int32_t>(id)).operands) {
      auto& list = users_[static_cast<size_t>(v.node)];
      if (list.empty() || list.back() != static_cast<int32_t>(id)) list.push_back(static_cast<int32_t>(id));
    }
  group_size_.assign(fusion_.groups.size(), 0);
  for (int32_t g : fusion_.group_of)
    if (g >= 0) ++group_size_[static_cast<size_t>(g)];
}

// The matmul for `dot` with its compute dtype chosen, or nullopt when oneDNN
// does not compute it. A weight rhs (not batched) is packed at prepare,
// unless the product is a matrix-vector one.
std::optional<Compilation::PlannedMatmul> Compilation::planned_matmul(int32_t dot) const {
  const ir::Node& n = graph_.node(dot);
  auto shape = matmul_shape(graph_, n);
  if (!shape) return std::nullopt;
  const ir::Value rhs = n.operands[1];
  const bool is_weight = graph_.node(rhs.node).op == ir::Op::parameter &&
                         slots_[static_cast<size_t>(slot_of(rhs))].index < weight_count_ && shape->batch == 1;
  if (is_weight) shape->compute = compute_dtype(*shape);
  // A decode-sized product streams the weights as stored (matvec.h); every
  // other weight is re-laid out once for oneDNN.
  return PlannedMatmul{*shape, is_weight && !is_matvec(*shape) && !shape->quantized};
}

// Epilogue fusion: a matmul whose only user is an elementwise group made of
// operations oneDNN applies as post-ops (bias and residual adds, products
// with another value such as SwiGLU's up projection, swish, logistic, tanh,
// converts between f32 and bf16) stores that group's value directly. The
// post-ops work in f32 and round once, where the group would round each
// bf16 intermediate.
void Compilation::plan_epilogues() {
  using ir::Op;
  bool f32_only = false;  // the chain's values must all be f32
  auto is_float_value = [&](int32_t id) {
    const DType d = graph_.node(id).results[0].dtype();
    return d == DType::f32 || (d == DType::bf16 && !f32_only);
  };
  auto available = [&](ir::Value v, int32_t group) {  // in memory before the group runs
    const int32_t g = fusion_.group_of[static_cast<size_t>(v.node)];
    return v.output == 0 && fusion_.materialized[static_cast<size_t>(v.node)] && g != group && g != kInlineAnywhere &&
           is_float_value(v.node);
  };
  for (int32_t dot = 0; dot < static_cast<int32_t>(graph_.nodes().size()); ++dot) {
    if (graph_.node(dot).op != Op::dot_general || first_output_.contains({dot, 0})) continue;
    const auto& dot_users = users_[static_cast<size_t>(dot)];
    if (dot_users.empty()) continue;
    const int32_t group = fusion_.group_of[static_cast<size_t>(dot_users[0])];
    if (group < 0 || !fusion_.groups[static_cast<size_t>(group)].phases.empty()) continue;
    auto planned = planned_matmul(dot);
    if (!planned) continue;
    MatmulShape* shape = &planned->shape;
    if (shape->batch * shape->m * shape->n * shape->k == 0) continue;
    const int32_t root = fusion_.groups[static_cast<size_t>(group)].root;
    const std::span<const int64_t> dims = graph_.node(dot).results[0].dims();
    // Skipping a bf16 rounding is within a bf16 result's tolerance, not an f32 one's.
    f32_only = graph_.node(root).results[0].dtype() == DType::f32;
    if (f32_only && graph_.node(dot).results[0].dtype() != DType::f32) continue;
    Epilogue e{root, {}, {}};
    int32_t x = dot, covered = 0;  // the running value; group nodes the chain accounts for
    bool ok = true;
    while (ok && x != root) {
      const auto& us = users_[static_cast<size_t>(x)];
      auto in_group = [&](int32_t id) { return fusion_.group_of[static_cast<size_t>(id)] == group; };
      auto single = [&](int32_t id) {
        return users_[static_cast<size_t>(id)].size() == 1 && !first_output_.contains({id, 0});
      };
      ok = false;
      if (us.size() == 2) {  // swish: x * logistic(x)
        for (int k = 0; k < 2 && !ok; ++k) {
          const int32_t l = us[static_cast<size_t>(k)], m = us[static_cast<size_t>(1 - k)];
          const ir::Node& ln = graph_.node(l);
          const ir::Node& mn = graph_.node(m);
          if (ln.op == Op::logistic && mn.op == Op::mul && in_group(l) && in_group(m) && single(l) &&
              users_[static_cast<size_t>(l)][0] == m && is_float_value(l) && is_float_value(m) &&
              ((mn.operands[0] == ir::Value{x, 0} && mn.operands[1] == ir::Value{l, 0}) ||
               (mn.operands[1] == ir::Value{x, 0} && mn.operands[0] == ir::Value{l, 0}))) {
            e.post_ops.push_back({PostOp::Kind::swish});
            covered += 2;
            x = m;
            ok = true;
          }
        }
        continue;
      }
      if (us.size() != 1 || !in_group(us[0]) || !is_float_value(us[0])) continue;
      const int32_t u = us[0];
      const ir::Node& un = graph_.node(u);
      if (un.op == Op::convert || un.op == Op::logistic || un.op == Op::tanh) {
        if (un.op == Op::logistic) e.post_ops.push_back({PostOp::Kind::logistic});
        if (un.op == Op::tanh) e.post_ops.push_back({PostOp::Kind::tanh});
        ++covered;
        x = u;
        ok = true;
        continue;
      }
      if (un.op != Op::add && un.op != Op::sub && un.op != Op::mul) continue;
      const bool x_first = un.operands[0] == ir::Value{x, 0};
      if (un.operands[0] == un.operands[1] || (!x_first && un.op == Op::sub)) continue;
      const ir::Value y = un.operands[x_first ? 1 : 0];
      const PostOp::Kind kind = un.op == Op::add   ? PostOp::Kind::add
                                : un.op == Op::sub ? PostOp::Kind::sub
                                                   : PostOp::Kind::mul;
      if (available(y, group) && std::ranges::equal(graph_.shape(y).dims(), dims)) {
        e.post_ops.push_back({kind, graph_.shape(y).dtype(), false});
        e.extra.push_back(y);
      } else {
        // A bias: a vector broadcast along the result's last axis, one value per column.
        const ir::Node& b = graph_.node(y.node);
        const bool inlined =
            fusion_.group_of[static_cast<size_t>(y.node)] == kInlineAnywhere || (in_group(y.node) && single(y.node));
        if (b.op != Op::broadcast_in_dim || !inlined || !available(b.operands[0], group) ||
            graph_.shape(b.operands[0]).rank() != 1 || graph_.shape(b.operands[0]).dim(0) != shape->n ||
            b.attrs_as<ir::BroadcastAttrs>().dims != ir::Axes{static_cast<int64_t>(dims.size()) - 1})
          continue;
        e.post_ops.push_back({kind, graph_.shape(b.operands[0]).dtype(), true});
        e.extra.push_back(b.operands[0]);
        if (in_group(y.node)) ++covered;
      }
      ++covered;
      x = u;
      ok = true;
    }
    if (!ok || e.post_ops.empty() || covered != group_size_[static_cast<size_t>(group)]) continue;
    shape->result = graph_.node(root).results[0].dtype();
    shape->epilogue = e.post_ops;
    try {
      e.matmul = std::make_shared<const Matmul>(*shape, planned->packed_weight);
    } catch (const Error&) {
      continue;  // oneDNN has no such post-op chain here: the group stays a kernel
    }
    e.packed_weight = planned->packed_weight;
    absorbed_[root] = dot;
    epilogues_[dot] = std::move(e);
  }
}

void Compilation::plan_in_place_chains() {
  const size_t n = graph_.nodes().size();
  chain_root_.resize(n);
  chain_output_.assign(n, -1);
  for (size_t id = 0; id < n; ++id) {
    const auto node = static_cast<int32_t>(id);
    chain_root_[id] =
        updates_in_place(node) ? chain_root_[static_cast<size_t>(graph_.node(node).operands[0].node)] : node;
    if (chain_root_[id] != node)
      if (auto out = first_output_.find({node, 0}); out != first_output_.end())
        chain_output_[static_cast<size_t>(chain_root_[id])] = static_cast<int>(out->second);
  }
}

void Compilation::add_node_step(int32_t id) {
  const ir::Node& n = graph_.node(id);
  const std::string what = fmt::format("[{}] %{}", ir::name(n.op), id);
  std::vector<int32_t> reads;
  for (const ir::Value& v : n.operands) reads.push_back(slot_of(v));
  Step step{};
  step.what = what;
  if (n.op == ir::Op::dot_general) {
    if (epilogues_.contains(id)) return;  // runs at its epilogue's root
    if (auto planned = planned_matmul(id)) {
      add_matmul_step(id, std::make_shared<const Matmul>(planned->shape, planned->packed_weight),
                      planned->packed_weight);
      return;
    }
  }
  if (n.op == ir::Op::convolution) {
    const ir::Value rhs = n.operands[1];
    const bool is_weight = graph_.node(rhs.node).op == ir::Op::parameter &&
                           slots_[static_cast<size_t>(slot_of(rhs))].index < weight_count_;
    if (auto convolution = Convolution::make(graph_, n, is_weight)) {
      step.kind = Step::Kind::convolution;
      step.convolution = std::move(convolution);
      if (is_weight) step.packed_weight = packed_weights_++;
      step.reads = reads;
      step.writes = {result_slot({id, 0})};
      steps_.push_back(std::move(step));
      return;
    }
  }
  if (n.op == ir::Op::dynamic_update_slice) {
    step.kind = Step::Kind::update_slice;
  } else if (n.op == ir::Op::custom_call) {
    const auto& attrs = n.attrs_as<ir::CustomCallAttrs>();
    if (attrs.target != ir::kHostCallbackTarget || attrs.payload == nullptr)
      fail("[custom_call] target '{}' is not supported by the cpu backend", attrs.target);
    step.kind = Step::Kind::callback;
    step.node = n;
  } else {
    step.kind = Step::Kind::shared_kernel;
    step.node = n;
  }
  step.reads = reads;
  for (size_t r = 0; r < n.results.size(); ++r) step.writes.push_back(result_slot({id, static_cast<int32_t>(r)}));
  steps_.push_back(std::move(step));
}

// A matmul step for `dot`, storing its value or, with an epilogue, its epilogue root's.
void Compilation::add_matmul_step(int32_t dot, std::shared_ptr<const Matmul> matmul, bool packed_weight) {
  const ir::Node& n = graph_.node(dot);
  Step step{};
  step.kind = Step::Kind::matmul;
  step.what = fmt::format("[dot_general] %{}", dot);
  step.reads = {slot_of(n.operands[0]), slot_of(n.operands[1])};
  int32_t stored = dot;
  if (const auto e = epilogues_.find(dot); e != epilogues_.end()) {
    stored = e->second.root;
    for (const ir::Value& v : e->second.extra) step.reads.push_back(slot_of(v));
    step.what += fmt::format(" + {} post-ops (%{})", e->second.post_ops.size(), stored);
  }
  step.matmul = std::move(matmul);
  if (packed_weight) step.packed_weight = packed_weights_++;
  step.writes = {result_slot({stored, 0})};
  steps_.push_back(std::move(step));
}

// The compiler that built a saved executable's kernels, carried over when it is saved again.
std::string Compilation::saved_compiler() const {
  if (options_.artifacts == nullptr) return "";
  const auto it = options_.artifacts->find("cpu.compiler");
  return it == options_.artifacts->end() ? "unknown" : it->second;
}

std::vector<int> Compilation::output_aliases(const backend::Signature& signature) const {
  std::vector<int> alias(signature.outputs.size(), -1);
  std::vector<int> last_read(slots_.size(), -1), writer(slots_.size(), -1);
  for (size_t s = 0; s < steps_.size(); ++s) {
    for (int32_t r : steps_[s].reads) last_read[static_cast<size_t>(root_of(slots_, r))] = static_cast<int>(s);
    for (int32_t w : steps_[s].writes)
      if (writer[static_cast<size_t>(w)] < 0) writer[static_cast<size_t>(w)] = static_cast<int>(s);
  }
  std::set<size_t> taken;
  for (size_t o = 0; o < signature.outputs.size(); ++o) {
    int32_t out_slot = -1;
    for (size_t i = 0; i < slots_.size(); ++i)
      if (slots_[i].kind == Slot::Kind::output && slots_[i].index == o) out_slot = static_cast<int32_t>(i);
    if (out_slot < 0) continue;
    const int w = writer[static_cast<size_t>(out_slot)];
    if (w < 0) continue;
    const Step& step = steps_[static_cast<size_t>(w)];
    for (size_t i = 0; i < slots_.size(); ++i) {
      const Slot& p = slots_[i];
      if (p.kind != Slot::Kind::parameter || p.index < weight_count_ || taken.contains(p.index)) continue;
      if (!same_layout(p.shape, signature.outputs[o])) continue;
      const int r = last_read[i];
      // In place: nothing reads the parameter after the output is first
      // written, or the writer is the slice update that starts from it.
      const bool in_place = r == w && step.kind == Step::Kind::update_slice &&
                            step.reads[0] == static_cast<int32_t>(i) &&
                            std::count(step.reads.begin(), step.reads.end(), static_cast<int32_t>(i)) == 1;
      if (r < w || in_place) {
        alias[o] = static_cast<int>(p.index);
        taken.insert(p.index);
        break;
      }
    }
  }
  return alias;
}

std::shared_ptr<const backend::Program> Compilation::build() {
  for (size_t o = 0; o < graph_.outputs().size(); ++o) {
    const ir::Value v = graph_.outputs()[o];
    first_output_.emplace(std::make_pair(v.node, v.output), o);
  }
  // Parameters first, in parameter order, so slot i of a parameter is easy to find.
  for (size_t p = 0; p < graph_.parameters().size(); ++p) {
    const int32_t id = graph_.parameters()[p];
    value_slots_[{id, 0}] = new_slot(Slot::Kind::parameter, p, graph_.node(id).results[0]);
  }
  find_users();
  plan_epilogues();
  plan_in_place_chains();
  for (int32_t id = 0; id < static_cast<int32_t>(graph_.nodes().size()); ++id) {
    const ir::Node& n = graph_.node(id);
    const size_t i = static_cast<size_t>(id);
    if (n.op == ir::Op::parameter) continue;
    if (n.op == ir::Op::constant) {
      if (!fusion_.materialized[i]) continue;
      constants_.push_back(n.attrs_as<ir::ConstantAttrs>().value.is_contiguous()
                               ? n.attrs_as<ir::ConstantAttrs>().value
                               : n.attrs_as<ir::ConstantAttrs>().value.copy());
      value_slots_[{id, 0}] = new_slot(Slot::Kind::constant, constants_.size() - 1, n.results[0]);
      continue;
    }
    const int32_t g = fusion_.group_of[i];
    if (g >= 0) {
      if (fusion_.groups[static_cast<size_t>(g)].root != id) continue;  // inlined into its group
      if (const auto dot = absorbed_.find(id); dot != absorbed_.end()) {
        const Epilogue& e = epilogues_.at(dot->second);
        add_matmul_step(dot->second, e.matmul, e.packed_weight);
        continue;
      }
      if (const auto view = view_of(id)) {
        const int32_t slot = new_slot(Slot::Kind::view, view->second, n.results[0]);
        slots_[static_cast<size_t>(slot)].base = slot_of(view->first);
        value_slots_[{id, 0}] = slot;
        continue;
      }
      KernelSource source = render_group(graph_, fusion_, g);
      Step step{};
      step.kind = Step::Kind::kernel;
      step.what = fmt::format("[{}] %{} (fused)", ir::name(n.op), id);
      for (const ir::Value& v : source.inputs) step.reads.push_back(slot_of(v));
      step.writes = {result_slot({id, 0})};
      kernel_steps_.push_back(steps_.size());
      kernels_.push_back(std::move(source));
      steps_.push_back(std::move(step));
      continue;
    }
    if (g == kInlineAnywhere) continue;
    add_node_step(id);
  }
  // Outputs not written by a step (parameters, constants, repeats) are copies.
  for (size_t o = 0; o < graph_.outputs().size(); ++o) {
    const ir::Value v = graph_.outputs()[o];
    const int32_t from = slot_of(v);
    const Slot& s = slots_[static_cast<size_t>(from)];
    if (s.kind == Slot::Kind::output && s.index == o) continue;
    Step copy{};
    copy.kind = Step::Kind::copy;
    copy.what = fmt::format("output {}", o);
    copy.reads = {from};
    copy.writes = {new_slot(Slot::Kind::output, o, graph_.shape(v))};
    steps_.push_back(std::move(copy));
  }
  // Compile every distinct kernel into one shared object.
  std::vector<std::shared_ptr<const Library>> libraries;
  if (!kernels_.empty()) {
    std::string source(kPrelude);
    std::set<std::string> emitted;
    for (const KernelSource& k : kernels_)
      if (emitted.insert(k.name).second) source += "\n" + k.code;
    CompileRequest request;
    request.source = std::move(source);
    request.progress = options_.progress;
    request.what = fmt::format("{} kernels", emitted.size());
    request.prebuilt = options_.artifacts;
    auto library = load_library(request);
    for (size_t k = 0; k < kernels_.size(); ++k)
      steps_[kernel_steps_[k]].kernel = reinterpret_cast<KernelFunction>(library->symbol(kernels_[k].name));
    libraries.push_back(std::move(library));
  }
  const size_t arena = plan_arena(slots_, steps_);
  backend::Signature signature = backend::signature_of(graph_, weight_count_);
  signature.output_alias = output_aliases(signature);
  auto program = std::make_shared<CpuProgram>(std::move(signature), std::move(slots_), std::move(steps_),
                                              std::move(constants_), arena, std::move(libraries), saved_compiler());
  if (const char* dump = std::getenv("KILN_DUMP_PROGRAM"); dump != nullptr && std::string_view(dump) != "0")
    fmt::print(stderr, "{}", program->describe());
  return program;
}

class CpuBackend final : public backend::Backend {
 public:
  std::string_view name() const override { return "cpu"; }
  std::string description() const override {
    return fmt::format("optimizing CPU backend ({} threads)", omp_get_max_threads());
  }

  std::shared_ptr<const backend::Program> compile(const ir::Graph& graph, size_t weight_count,
                                                  const backend::CompileOptions& options) const override {
    ir::verify(graph);
    if (options.artifacts) check_cpu_features(*options.artifacts);
    // Each pass is followed by the verifier: a pass bug is caught where it happens.
    ir::Graph g = passes::eliminate_dead_code(graph);
    for (auto pass : {+[](const ir::Graph& x) { return passes::merge_nested_slice_updates(x); },
                      +[](const ir::Graph& x) { return passes::simplify(x); },
                      +[](const ir::Graph& x) { return passes::eliminate_common_subexpressions(x); },
                      +[](const ir::Graph& x) { return passes::fold_constants(x, reference::evaluate_node); },
                      +[](const ir::Graph& x) { return passes::eliminate_dead_code(x); },
                      +[](const ir::Graph& x) { return canonicalize_dots(x); }}) {
      g = pass(g);
      ir::verify(g);
    }
    // Compiles that take more than a second say so on stderr unless the
    // caller handles progress itself or KILN_QUIET is set.
    backend::CompileOptions with_progress = options;
    const char* quiet = std::getenv("KILN_QUIET");
    if (!with_progress.progress && (quiet == nullptr || std::string_view(quiet) == "0"))
      with_progress.progress = [](const std::string& line) { fmt::print(stderr, "{}\n", line); };
    return Compilation(g, weight_count, with_progress).build();
  }

  HostBuffer allocate(const Shape& shape) const override {
    auto memory = pooled_memory(shape.byte_size());
    return HostBuffer::view(shape, memory.get(), memory);
  }
};

}  // namespace

std::shared_ptr<const backend::Backend> make_backend() { return std::make_shared<CpuBackend>(); }

}  // namespace kiln::cpu
