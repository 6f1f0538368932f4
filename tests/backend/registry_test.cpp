// The backend registry and the Platform handles on it.
#include <gtest/gtest.h>

#include <cstdlib>

#include "kiln/backend/backend.h"
#include "kiln/runtime/compile.h"
#include "support/expect_error.h"

namespace kiln {
namespace {

TEST(Registry, BuiltInBackendsAreThere) {
  const auto names = backend::backend_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "cpu"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "reference"), names.end());
  EXPECT_EQ(Platform::reference().name(), "reference");
  EXPECT_EQ(Platform::get("reference"), Platform::reference());  // one backend instance per name
}

TEST(Registry, UnknownNamesListTheKnownOnes) {
  EXPECT_ERROR(Platform::get("tpu"), "no backend named 'tpu' (registered: ");
  EXPECT_ERROR(Platform::get("tpu"), "reference");
}

TEST(Registry, EnvironmentSelectsTheOracle) {
  const char* before = std::getenv("KILN_BACKEND");
  const std::string saved = before ? before : "";
  setenv("KILN_BACKEND", "reference", 1);
  EXPECT_EQ(Platform::cpu(), Platform::reference());
  if (before)
    setenv("KILN_BACKEND", saved.c_str(), 1);
  else
    unsetenv("KILN_BACKEND");
}

// A backend of the user's own: counts what reaches it and runs the reference.
class CountingBackend final : public backend::Backend {
 public:
  mutable int compiles = 0;
  std::string_view name() const override { return "counting"; }
  std::string description() const override { return "counts compiles"; }
  std::shared_ptr<const backend::Program> compile(const ir::Graph& graph, size_t weight_count,
                                                  const backend::CompileOptions& options) const override {
    ++compiles;
    return Platform::reference().backend().compile(graph, weight_count, options);
  }
  HostBuffer allocate(const Shape& shape) const override { return HostBuffer::allocate(shape); }
};

TEST(Registry, UserBackendsPlugIn) {
  auto counting = std::make_shared<CountingBackend>();
  backend::register_backend("counting", [counting] { return counting; });
  const Platform platform = Platform::get("counting");
  auto exe = compile_fn(
      platform, [](Tensor x) { return x + x; }, Shape({{"n", 2}}));
  EXPECT_EQ(counting->compiles, 1);
  HostBuffer x = HostBuffer::allocate(Shape({{"n", 2}}));
  x.mutable_span<float>()[1] = 3;
  EXPECT_EQ(exe(Buffer::from(platform, x)).to_host().to_vector<float>()[1], 6.0f);
  // Buffers belong to their platform.
  EXPECT_ERROR(exe(Buffer::from(Platform::reference(), x)),
               "argument 0 lives on platform 'reference', the executable on 'counting'");
}

}  // namespace
}  // namespace kiln
