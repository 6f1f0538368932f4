#pragma once
// The IR: a graph of nodes in topological order (operands always refer to
// earlier nodes). Every value has a static shape and dtype. Nodes are checked
// when they are added: the output shapes are inferred from the operands and
// attributes (infer.h), and a mismatch is a kiln::Error naming the op and
// printing the operands' tagged shapes.
#include <span>
#include <string>
#include <vector>

#include "kiln/ir/ops.h"

namespace kiln::ir {

// One output of one node.
struct Value {
  int32_t node = -1;
  int32_t output = 0;
  friend bool operator==(const Value&, const Value&) = default;
};

struct Node {
  Op op;
  std::vector<Value> operands;
  std::vector<Shape> results;
  Attributes attrs;

  // True for nodes no pass may remove, merge or reorder across each other:
  // host callbacks declared with side effects.
  bool has_side_effect() const { return op == Op::custom_call && std::get<CustomCallAttrs>(attrs).has_side_effect; }

  template <typename T>
  const T& attrs_as() const {
    return std::get<T>(attrs);
  }
};

class Graph {
 public:
  // Appends a node; its results are inferred and checked.
  Value add(Op op, std::vector<Value> operands, Attributes attrs = NoAttrs{});
  // Appends a parameter with the next index.
  Value parameter(const Shape& shape, std::string name = {});

  const Node& node(int32_t id) const { return nodes_.at(static_cast<size_t>(id)); }
  std::span<const Node> nodes() const { return nodes_; }
  const Shape& shape(Value value) const;
  // All results of the node `value` belongs to, as Values.
  std::vector<Value> results(int32_t node) const;

  // Node ids of the parameters, in parameter order.
  const std::vector<int32_t>& parameters() const { return parameters_; }

  void set_outputs(std::vector<Value> outputs);
  const std::vector<Value>& outputs() const { return outputs_; }

 private:
  std::vector<Node> nodes_;
  std::vector<int32_t> parameters_;
  std::vector<Value> outputs_;
};

// Throws kiln::Error if `graph` is malformed: an operand referring forward or
// out of range, attributes of the wrong type, results that differ from what
// inference gives, outputs that do not exist. Run after every pass.
void verify(const Graph& graph);

struct PrintOptions {
  // Every constant's bytes in hex ({bytes=0x...}) instead of a summary of
  // its first values: the form parse() reads back.
  bool full_constants = false;
};

// A stable, readable text form, one node per line:
//   %3 = dot_general(%1, %2) {lhs_batch=[], rhs_batch=[], lhs_contracting=[1], rhs_contracting=[0]} : {b=4,o=64} f32
//   return %3
// Host callbacks print their name, C++ type and aliases.
std::string print(const Graph& graph, const PrintOptions& options = {});

// The graph that print(graph, {.full_constants = true}) wrote: parse(print(g))
// prints as g does. Host callbacks come back unbound (their state and C++
// code are bound to the executable later, by name; built-in ones such as
// print cannot be read back). Throws kiln::Error naming `where`, the line
// and column, and what was expected, for any text print() cannot have made.
Graph parse(std::string_view text, std::string_view where);

}  // namespace kiln::ir
