// convnet::Error, the one exception type the library throws (with Diverged, the kind of it a
// diverging training step throws), and CONVNET_CHECK.
// Messages quote the numbers involved and say what to do; the library never prints or exits.
#pragma once

#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>

namespace convnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// A training step whose loss or gradients are not finite. Thrown before the update, so the
// parameters and the optimizer's state are those of the last good step; fit() also puts back
// the buffers (BatchNorm's running statistics) and records where the run stood.
class Diverged : public Error {
 public:
  explicit Diverged(const std::string& message, int epochs = -1, int64_t steps = -1)
      : Error(message), completed_epochs(epochs), completed_steps(steps) {}
  // Set by fit(): the epochs finished before the failing batch, and the batches of the next
  // (FitOptions::completed_* to resume from the last good state); -1 from a bare train_step.
  int completed_epochs;
  int64_t completed_steps;
};

// A training sample could not be read in the middle of a run (a streamed image set's file that
// no longer decodes): fit() names the epoch, the batch and the file, and says where the run was,
// as Diverged does, so that the state before the batch can be kept.
class BadData : public Error {
 public:
  BadData(const std::string& message, int epochs, int64_t steps)
      : Error(message), completed_epochs(epochs), completed_steps(steps) {}
  int completed_epochs;
  int64_t completed_steps;
};

// Memory ran out while building a model (std::bad_alloc turned into a message that names the
// stage: a layer's weights and workspace, or the activations, with the size).
class OutOfMemory : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

// Throws convnet::Error with the streamed arguments as its message when cond is false.
#define CONVNET_CHECK(cond, ...)                                                 \
  do {                                                                           \
    if (!(cond)) throw ::convnet::Error(::convnet::detail::concat(__VA_ARGS__)); \
  } while (0)

}  // namespace convnet
