#pragma once
// Runs many small test graphs on a backend as one: the graphs are merged
// into a single graph (parameters and outputs concatenated), compiled once
// and run once, and each graph's check then sees its own outputs. This keeps
// the CPU backend's op suite to a few compiles instead of one per case.
//
//   testing::GraphBatch batch;
//   batch.add(graph, inputs, [&](const std::vector<HostBuffer>& out) { EXPECT_...; });
//   batch.run(Platform::cpu());
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/ir/graph.h"
#include "kiln/runtime/compile.h"
#include "kiln/runtime/platform.h"

namespace kiln::testing {

// ir::parse reads back what ir::print wrote: printing the parsed graph gives
// the same text. Every graph of the op suites and random graphs is checked.
inline void expect_text_round_trip(const ir::Graph& graph) {
  const std::string text = ir::print(graph, {.full_constants = true});
  std::string again;
  try {
    again = ir::print(ir::parse(text, "test graph"), {.full_constants = true});
  } catch (const Error& e) {
    ADD_FAILURE() << "parse failed: " << e.what() << "\n" << text;
    return;
  }
  EXPECT_EQ(again, text);
}

// One graph compiled once on a backend, run as often as called.
class Compiled {
 public:
  Compiled(const Platform& platform, const ir::Graph& graph) : program_(platform.backend().compile(graph, 0, {})) {
    expect_text_round_trip(graph);
  }
  std::vector<HostBuffer> operator()(std::vector<HostBuffer> inputs) const {
    std::vector<HostBuffer> results;
    for (const Shape& s : program_->signature().outputs) results.push_back(HostBuffer::allocate(s));
    for (HostBuffer& a : inputs)
      if (!a.is_contiguous()) a = a.copy();
    program_->run(nullptr, inputs, results, {});
    return results;
  }

 private:
  std::shared_ptr<const backend::Program> program_;
};

// Saving an executable and loading it back gives the same outputs, bit for
// bit: every batch of the op suites is checked on both backends.
inline void expect_save_load_round_trip(const Platform& platform, const ir::Graph& graph,
                                        const std::vector<HostBuffer>& inputs,
                                        const std::vector<HostBuffer>& expected) {
  static int count = 0;
  const std::string path =
      ::testing::TempDir() + "/kiln-round-trip-" + std::to_string(::getpid()) + "-" + std::to_string(count++) + ".kexe";
  std::vector<Buffer> outputs;
  try {
    detail::save_core(detail::make_core(platform, graph, 0, {}), path);
    const detail::ExecutableCore loaded = detail::load_core(path, platform);
    std::vector<Argument> arguments;
    for (const HostBuffer& b : inputs) arguments.emplace_back(Buffer::from(platform, b.copy()));
    outputs = loaded.call(arguments);
  } catch (const Error& e) {
    ADD_FAILURE() << "save/load on " << platform.name() << ": " << e.what();
  }
  std::remove(path.c_str());
  ASSERT_EQ(outputs.size(), expected.size());
  for (size_t i = 0; i < outputs.size(); ++i) {
    const HostBuffer got = outputs[i].to_host();
    const HostBuffer want = expected[i].is_contiguous() ? expected[i] : expected[i].copy();
    EXPECT_TRUE(std::ranges::equal(got.bytes(), want.bytes()))
        << "output " << i << " differs after save/load on " << platform.name();
  }
}

using Check = std::function<void(const std::vector<HostBuffer>& outputs)>;

class GraphBatch {
 public:
  void add(const ir::Graph& graph, std::vector<HostBuffer> inputs, Check check) {
    entries_.push_back({graph, std::move(inputs), std::move(check)});
  }
  size_t size() const { return entries_.size(); }

  // Compiles the merged graph on `platform`'s backend, runs it, calls every
  // check, and empties the batch.
  void run(const Platform& platform) {
    if (entries_.empty()) return;
    ir::Graph merged;
    std::vector<HostBuffer> arguments;
    std::vector<ir::Value> outputs;
    std::vector<size_t> first_output;
    for (const Entry& e : entries_) {
      std::vector<std::vector<ir::Value>> map(e.graph.nodes().size());
      for (size_t id = 0; id < e.graph.nodes().size(); ++id) {
        const ir::Node& n = e.graph.node(static_cast<int32_t>(id));
        if (n.op == ir::Op::parameter) {
          map[id] = {merged.parameter(n.results[0])};
          continue;
        }
        std::vector<ir::Value> operands;
        for (const ir::Value& v : n.operands)
          operands.push_back(map[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]);
        map[id] = merged.results(merged.add(n.op, operands, n.attrs).node);
      }
      first_output.push_back(outputs.size());
      for (const ir::Value& v : e.graph.outputs())
        outputs.push_back(map[static_cast<size_t>(v.node)][static_cast<size_t>(v.output)]);
      arguments.insert(arguments.end(), e.inputs.begin(), e.inputs.end());
    }
    merged.set_outputs(outputs);
    const std::vector<HostBuffer> results = Compiled(platform, merged)(arguments);
    expect_save_load_round_trip(platform, merged, arguments, results);
    for (size_t i = 0; i < entries_.size(); ++i) {
      const size_t count = entries_[i].graph.outputs().size();
      std::vector<HostBuffer> mine(results.begin() + static_cast<std::ptrdiff_t>(first_output[i]),
                                   results.begin() + static_cast<std::ptrdiff_t>(first_output[i] + count));
      entries_[i].check(mine);
    }
    entries_.clear();
  }

 private:
  struct Entry {
    ir::Graph graph;
    std::vector<HostBuffer> inputs;
    Check check;
  };
  std::vector<Entry> entries_;
};

// Runs one graph on `platform` and returns its outputs.
inline std::vector<HostBuffer> evaluate(const Platform& platform, const ir::Graph& graph,
                                        std::vector<HostBuffer> inputs) {
  return Compiled(platform, graph)(std::move(inputs));
}

// The backends every backend-generic test runs on.
inline std::vector<std::string> all_backends() { return {"reference", "cpu"}; }

// A test suite parameterized over all_backends():
//   class RefSorting : public testing::OnEveryBackend {};
//   KILN_ON_EVERY_BACKEND(RefSorting);
class OnEveryBackend : public ::testing::TestWithParam<std::string> {
 protected:
  Platform platform() const { return Platform::get(GetParam()); }
};
#define KILN_ON_EVERY_BACKEND(suite)                                                              \
  INSTANTIATE_TEST_SUITE_P(Backends, suite, ::testing::ValuesIn(::kiln::testing::all_backends()), \
                           [](const auto& info) { return info.param; })

}  // namespace kiln::testing
