// Fuzz target: image list files (parse_image_list, "<path> <label>" per line, for streamed image
// sets). What parses must be consistent: as many labels as files, every label one of the
// classes, and at least one file.
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  convnet::ImageIndex index;
  try {
    index = convnet::parse_image_list(text, "fuzz.txt", "/data");
  } catch (const convnet::Error&) {
    return 0;
  }
  if (index.files.empty() || index.files.size() != index.labels.size()) std::abort();
  for (const int32_t label : index.labels)
    if (label < 0 || static_cast<size_t>(label) >= index.class_names.size()) std::abort();
  return 0;
}
