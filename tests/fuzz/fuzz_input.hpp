// Shared by the fuzz targets: the parsers read files, so each input is written to a file of this
// process's own first (in $TMPDIR, /tmp by default), and a convnet::Error (a rejected input, the
// expected outcome for almost every mutation) is not a finding. Anything else is: a crash, a
// sanitizer report, another exception, a hang or an allocation over libFuzzer's limit.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include "convnet/convnet.hpp"

namespace convnet::fuzz {

// A directory of this process's own, made once.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::filesystem::path d = std::filesystem::path(tmp ? tmp : "/tmp") /
                              ("convnet-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

// Writes the input to scratch_dir()/name and returns the path.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = (scratch_dir() / name).string();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

// How big a model a text describes, roughly: its largest decimal number (capped at 2^30) and
// its line count, accumulated over several texts. Targets build a model only when both are
// small: a valid model asking for 10^7 channels is not a bug, but its legitimate allocations
// would go over the fuzzer's memory limit.
struct TextSize {
  int64_t largest = 0, lines = 0;
  void add(std::string_view text) {
    int64_t number = 0;
    for (const char c : text) {
      number = c >= '0' && c <= '9' ? std::min<int64_t>(number * 10 + (c - '0'), 1 << 30) : 0;
      largest = std::max(largest, number);
      lines += c == '\n';
    }
  }
};

}  // namespace convnet::fuzz
