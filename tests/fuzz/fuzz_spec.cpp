// Fuzz target: model-spec text (parse_model_spec); what parses is written back and must read
// back to the same text, and is built for a small input.
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
  try {
    model->build(convnet::Shape{1, 1, 8, 8}, 1);
  } catch (const convnet::Error&) {
  }
  return 0;
}
