// Fuzz target: model-spec text (parse_model_spec); what parses is written back and must read
// back to the same text, and is built for a small input.
#include <algorithm>
#include <string_view>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::unique_ptr<convnet::Model<float>> model;
  try {
    model = convnet::parse_model_spec<float>(text, "fuzz");
  } catch (const convnet::Error&) {
    return 0;
  }
  const std::string written = model->spec();
  std::unique_ptr<convnet::Model<float>> again;
  try {
    again = convnet::parse_model_spec<float>(written, "written");
  } catch (const convnet::Error&) {
    std::abort();  // what the writer produces must parse
  }
  if (again->spec() != written) std::abort();
  // Built only when small by construction: every number at most 16 and at most 12 layers keep
  // every tensor under ~40 MB. A spec asking for 10^7 channels, or padding of 1256 in every
  // layer, is valid and its allocations legitimate, but over the fuzzer's memory limit. (Sizes
  // that would overflow are refused before any allocation: tests/cli spec-size-limit.)
  convnet::fuzz::TextSize extent;
  extent.add(text);
  if (extent.largest > 16 || extent.lines > 12) return 0;
  try {
    model->build(convnet::Shape{1, 1, 8, 8}, 1);
  } catch (const convnet::Error&) {
  }
  return 0;
}
