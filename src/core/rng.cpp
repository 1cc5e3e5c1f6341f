// Rng conversions, spelled out so that results do not depend on the standard library.
#include "convnet/rng.hpp"

#include <cmath>
#include <numbers>
#include <sstream>

#include "convnet/error.hpp"

namespace convnet {

double Rng::normal() {
  // Box-Muller: u1 in (0, 1] so the log is finite.
  const double u1 = 1.0 - uniform();
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

uint64_t Rng::below(uint64_t n) {
  // Rejection sampling: draw until the value falls in the largest multiple of n.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t r;
  do {
    r = next_u64();
  } while (r >= limit);
  return r % n;
}

Rng Rng::split(uint64_t stream) const {
  // SplitMix64 of (state draw, stream) gives a well-mixed seed for the child engine.
  std::mt19937_64 copy = engine_;
  uint64_t z = copy() ^ (stream + 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return Rng(z);
}

std::string Rng::state() const {
  std::ostringstream out;
  out << engine_;
  return out.str();
}

void Rng::set_state(const std::string& text) {
  std::istringstream in(text);
  std::mt19937_64 engine;
  in >> engine;
  CONVNET_CHECK(!in.fail() && (in >> std::ws).eof(), "rng: not a random-number state (",
                text.size(), " characters of text that do not read as an mt19937_64 state)");
  engine_ = engine;
}

}  // namespace convnet
