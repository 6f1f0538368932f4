// Host callbacks: your own C++ code inside a compiled graph. Here a
// callback keeps a running maximum across calls (state you own), and
// x.print() shows an intermediate value.
//
//   build/release/examples/callbacks
#include <kiln/kiln.h>

#include <algorithm>
#include <cstdio>

// Tracks the largest value seen over all calls and returns it.
struct RunningMax {
  static constexpr std::string_view name = "RunningMax";
  static kiln::CallbackConfig config() { return {.has_side_effect = true}; }
  float largest = -1e30f;

  void call(std::span<const kiln::HostBuffer> inputs, std::span<kiln::HostBuffer> outputs) {
    for (float v : inputs[0].span<float>()) largest = std::max(largest, v);
    outputs[0].mutable_span<float>()[0] = largest;
  }
};

int main() {
  auto platform = kiln::Platform::cpu();
  auto exe = kiln::compile_fn(
      platform,
      [](kiln::Tensor x) {
        kiln::Tensor scaled = (x * 10.0).print("scaled");
        return kiln::callback<RunningMax>({scaled}, {kiln::Shape(kiln::DType::f32)})[0];
      },
      kiln::Shape({{"n", 3}}));

  RunningMax state;  // owned here; must outlive the calls
  exe.bind(&state);  // this executable's state
  for (float start : {0.1f, 0.5f, 0.2f}) {
    kiln::HostBuffer x = kiln::HostBuffer::allocate(kiln::Shape({{"n", 3}}));
    for (int i = 0; i < 3; ++i) x.mutable_span<float>()[i] = start + 0.1f * static_cast<float>(i);
    kiln::Buffer largest = exe(kiln::Buffer::from(platform, x));
    std::printf("running max: %g\n", largest.to_host().to_vector<float>()[0]);
  }
  return 0;
}
