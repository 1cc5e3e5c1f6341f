// Rng: the one source of randomness (initialisers, shuffling, tests). Explicitly seeded and
// passed around, never global. The engine (mt19937_64) and every conversion below are written out,
// so a seed gives the same numbers with any standard library.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>

namespace convnet {

class Rng {
 public:
  explicit Rng(uint64_t seed) : engine_(seed) {}

  uint64_t next_u64() { return engine_(); }
  // Moves the stream on by n draws of next_u64(), as if they had been made.
  void discard(uint64_t n) { engine_.discard(n); }
  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // Standard normal by the Box-Muller transform (uses two uniforms per call; no cached state).
  double normal();
  double normal(double mean, double stddev) { return mean + stddev * normal(); }
  // Uniform integer in [0, n), without modulo bias.
  uint64_t below(uint64_t n);
  // Fisher-Yates shuffle.
  template <class T>
  void shuffle(std::span<T> values) {
    for (size_t i = values.size(); i > 1; --i) {
      const size_t j = static_cast<size_t>(below(i));
      std::swap(values[i - 1], values[j]);
    }
  }

  // Derives an independent stream, e.g. the shuffle for one epoch: Rng(seed).split(epoch).
  Rng split(uint64_t stream) const;

  // The engine's whole state as text (the standard's textual form of mt19937_64: 312 numbers),
  // and back; for checkpoints. set_state() throws convnet::Error on text state() did not write.
  std::string state() const;
  void set_state(const std::string& text);

 private:
  std::mt19937_64 engine_;
};

}  // namespace convnet
