#pragma once
// Errors raised by kiln. Every failure a user can cause (bad weights, shapes,
// arguments, configs) is reported as a kiln::Error whose message names the
// thing that is wrong and where, e.g. "[reshape] cannot reshape {4,6} f32 to {5}".
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace kiln {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws kiln::Error with a fmt-formatted message.
template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace kiln
