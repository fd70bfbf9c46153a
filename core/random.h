// Counter-based random numbers (Philox4x32-10, the generator cuRAND and JAX use): the value at a
// position depends only on (key, counter), so dropout masks and shuffles are reproducible on any
// thread count, device or world size, and resuming needs only (seed, position), no hidden state.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace dpt {

// Four 32-bit random words for (key, counter).
std::array<uint32_t, 4> philox4x32(uint64_t key, std::array<uint32_t, 4> counter);

// Maps a 32-bit word to a float in [0, 1) with 24 random bits.
inline float uniform_float(uint32_t word) { return static_cast<float>(word >> 8) * 0x1.0p-24f; }

// A sequential stream over Philox: stream `stream` of seed `seed`, advancing one counter per four
// words. Cheap to create; position() and seek() let a caller save and restore it exactly.
class RandomStream {
 public:
  RandomStream(uint64_t seed, uint64_t stream);
  uint32_t next_u32();
  // Uniform in [0, 1) with 53 random bits.
  double uniform();
  // Standard normal (Box-Muller on two uniforms).
  double normal();
  // Uniform integer in [0, bound), bound > 0, without modulo bias.
  uint64_t below(uint64_t bound);
  uint64_t position() const { return position_; }
  void seek(uint64_t position) { position_ = position; }

 private:
  uint64_t seed_;
  uint64_t stream_;
  uint64_t position_ = 0;  // words consumed
};

// A uniformly random permutation of [0, n) (Fisher-Yates driven by RandomStream(seed, stream)).
std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace dpt
