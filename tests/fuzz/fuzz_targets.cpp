// Fuzz target: targets.csv text (parse_targets_csv, a folder's regression targets). What parses
// must be consistent: one row of values per file, every value finite, no file twice.
#include <cmath>
#include <set>
#include <string>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  convnet::TargetsCsv csv;
  try {
    csv = convnet::parse_targets_csv(text, "fuzz.csv");
  } catch (const convnet::Error&) {
    return 0;
  }
  if (csv.names.empty() || csv.files.empty()) std::abort();
  if (csv.values.size() != csv.files.size() * csv.names.size()) std::abort();
  for (const float v : csv.values)
    if (!std::isfinite(v)) std::abort();
  if (std::set<std::string>(csv.files.begin(), csv.files.end()).size() != csv.files.size())
    std::abort();
  return 0;
}
