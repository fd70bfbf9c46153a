// A float's IEEE-754 bit pattern and back, for tests that pick inputs and check results bit by
// bit (rounding ties, NaN payloads, signed zeros, subnormals).
#pragma once

#include <cstdint>
#include <cstring>

namespace dpt::testing {

inline float bits_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return bits;
}

}  // namespace dpt::testing
