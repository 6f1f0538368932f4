#pragma once
// Reading a fixture file while keeping track of which tensors a test used.
//
// The op fixtures (tests/fixtures/ops/*.safetensors) hold one group of
// tensors per case, named "<op>.<label>.<field>": the inputs, the attributes
// (as I64 tensors) and the expected results. A data-driven test walks every
// case of its op; reading through a TrackedFixture lets it also fail when the
// fixture says something the test never looked at (an input it ignored, an
// output it did not compare), which a passing comparison alone cannot show.
//
//   testing::TrackedFixture fixture("ops/movement.safetensors");
//   for (const std::string& prefix : fixture.case_prefixes("reverse")) {
//     const HostBuffer& x = fixture.get(prefix + "operand");
//     const ir::Axes axes = fixture.axes(prefix + "attr.axes");
//     ...
//     EXPECT_TRUE(fixture.all_read_under(prefix));
//   }
//
// Names are always full tensor names; a case prefix ends with '.', so that
// "op.case1." does not also cover "op.case10.".
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "kiln/core/host_buffer.h"
#include "kiln/io/buffer_store.h"
#include "kiln/ir/attributes.h"
#include "support/compare.h"

namespace kiln::testing {

class TrackedFixture {
 public:
  // `relative` is a path under tests/fixtures; the file is opened once per
  // process (see fixture()), so any number of trackers may share it.
  explicit TrackedFixture(const std::string& relative) : store_(&fixture(relative)), names_(store_->names()) {}

  // The whole file, for what is not a case tensor (metadata, file-wide
  // checks). Reads made through it are not recorded.
  const io::BufferStore& store() const { return *store_; }

  // Whether the tensor exists; asking does not count as reading it.
  bool contains(const std::string& name) const { return store_->contains(name); }

  // The tensor `name`, recorded as read. A missing name throws (the store's
  // error lists similar names).
  const HostBuffer& get(const std::string& name) {
    read_.insert(name);
    return store_->get(name);
  }

  // An I64 attribute tensor as axes (any rank, flattened), recorded as read.
  ir::Axes axes(const std::string& name) {
    const auto values = get(name).span<int64_t>();
    return {values.begin(), values.end()};
  }

  // A one-element I64 attribute tensor as its value, recorded as read.
  int64_t scalar(const std::string& name) {
    const auto values = get(name).span<int64_t>();
    if (values.size() != 1)
      throw std::runtime_error(name + " holds " + std::to_string(values.size()) + " values, expected one");
    return values[0];
  }

  // Every tensor name starting with `prefix`, sorted.
  std::vector<std::string> names_under(const std::string& prefix) const {
    // The names are sorted, so those under a prefix form one run; tests ask
    // once per case, and a fixture file holds thousands of names.
    std::vector<std::string> names;
    for (auto it = std::lower_bound(names_.begin(), names_.end(), prefix);
         it != names_.end() && it->starts_with(prefix); ++it)
      names.push_back(*it);
    return names;
  }

  // The prefixes "<op>.<label>." of the cases of `op`, sorted, where the
  // label is the part of a name "<op>.<label>.<field>" up to the next '.'.
  // A stray "<op>.<label>" without a field still gives a case (one with no
  // tensors), so that a test walking the cases fails on it instead of
  // leaving it unexercised.
  std::vector<std::string> case_prefixes(const std::string& op) const {
    const std::string under = op + ".";
    std::set<std::string> prefixes;
    for (const std::string& name : names_under(under))
      prefixes.insert(name.substr(0, name.find('.', under.size())) + ".");
    return {prefixes.begin(), prefixes.end()};
  }

  // The same for labels that may contain '.' themselves
  // ("reduce.sum.f32.a1."): a case is found by the tensor `field` that every
  // case of the op holds, "<op>.<label>.<field>".
  std::vector<std::string> case_prefixes(const std::string& op, const std::string& field) const {
    const std::string suffix = "." + field;
    std::vector<std::string> prefixes;
    for (const std::string& name : names_under(op + "."))
      if (name.ends_with(suffix)) prefixes.push_back(name.substr(0, name.size() - field.size()));
    return prefixes;
  }

  // The tensors starting with `prefix` that were never read through get(),
  // axes() or scalar(), sorted.
  std::vector<std::string> unread_under(const std::string& prefix) const {
    std::vector<std::string> unread;
    for (const std::string& name : names_under(prefix))
      if (!read_.contains(name)) unread.push_back(name);
    return unread;
  }

  // Succeeds when every tensor starting with `prefix` was read; otherwise
  // names each one that was not ("fixture tensor not exercised: ...").
  ::testing::AssertionResult all_read_under(const std::string& prefix) const {
    const std::vector<std::string> unread = unread_under(prefix);
    if (unread.empty()) return ::testing::AssertionSuccess();
    ::testing::AssertionResult failure = ::testing::AssertionFailure();
    for (const std::string& name : unread) failure << "\n  fixture tensor not exercised: " << name;
    return failure;
  }

 private:
  const io::BufferStore* store_;
  std::vector<std::string> names_;  // store_->names(), sorted
  std::set<std::string> read_;
};

}  // namespace kiln::testing
