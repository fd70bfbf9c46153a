// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) and the
// streams, normals and permutations built on it.
#include "core/random.h"

#include <cmath>
#include <numeric>

namespace dpt {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t product = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}

}  // namespace

std::array<uint32_t, 4> philox4x32(uint64_t key, std::array<uint32_t, 4> c) {
  uint32_t k0 = static_cast<uint32_t>(key);
  uint32_t k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c[0], hi0, lo0);
    mulhilo(kMul1, c[2], hi1, lo1);
    c = {hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0};
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return c;
}

RandomStream::RandomStream(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}

uint32_t RandomStream::next_u32() {
  uint64_t block = position_ / 4;
  std::array<uint32_t, 4> counter = {
      static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
      static_cast<uint32_t>(stream_), static_cast<uint32_t>(stream_ >> 32)};
  uint32_t word = philox4x32(seed_, counter)[position_ % 4];
  ++position_;
  return word;
}

double RandomStream::uniform() {
  uint64_t high = next_u32() >> 5;  // 27 bits
  uint64_t low = next_u32() >> 6;   // 26 bits
  return static_cast<double>((high << 26) | low) * 0x1.0p-53;
}

double RandomStream::normal() {
  double u1 = uniform();
  double u2 = uniform();
  // 1 - u1 is in (0, 1], so the log is finite.
  return std::sqrt(-2.0 * std::log(1.0 - u1)) * std::cos(2.0 * M_PI * u2);
}

uint64_t RandomStream::below(uint64_t bound) {
  // Lemire's multiply-shift with rejection on 64-bit draws.
  uint64_t threshold = (0 - bound) % bound;
  while (true) {
    uint64_t x = (static_cast<uint64_t>(next_u32()) << 32) | next_u32();
    unsigned __int128 product = static_cast<unsigned __int128>(x) * bound;
    if (static_cast<uint64_t>(product) >= threshold) return static_cast<uint64_t>(product >> 64);
  }
}

std::vector<int64_t> random_permutation(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> permutation(static_cast<std::size_t>(n));
  std::iota(permutation.begin(), permutation.end(), 0);
  RandomStream random(seed, stream);
  for (int64_t i = n - 1; i > 0; --i) {
    int64_t j = static_cast<int64_t>(random.below(static_cast<uint64_t>(i) + 1));
    std::swap(permutation[i], permutation[j]);
  }
  return permutation;
}

}  // namespace dpt
