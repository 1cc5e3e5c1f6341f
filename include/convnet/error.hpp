// convnet::Error, the one exception type the library throws, and CONVNET_CHECK.
// Messages quote the numbers involved and say what to do; the library never prints or exits.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace convnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
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
#define CONVNET_CHECK(cond, ...)                                        \
  do {                                                                  \
    if (!(cond)) throw ::convnet::Error(::convnet::detail::concat(__VA_ARGS__)); \
  } while (0)

}  // namespace convnet
