// expect: span\(\) of a temporary HostBuffer would dangle
// A span into the temporary that to_host() returns would dangle.
#include <kiln/kiln.h>

float first(const kiln::Buffer& buffer) {
  auto values = buffer.to_host().span<float>();
  return values[0];
}
