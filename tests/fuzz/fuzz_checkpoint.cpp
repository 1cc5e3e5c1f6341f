// Fuzz target: checkpoint files (the safetensors container, then load_checkpoint: metadata, spec,
// shapes, tensors).
#include <algorithm>

#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convnet::SafeTensors file;
  try {
    file = convnet::decode_safetensors(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const convnet::Error&) {
  }
  // load_checkpoint builds the model its spec describes for the input shape it records: only
  // when both are small (every number at most 64, at most 12 spec lines), so that a valid but
  // huge model, whose allocations are legitimate, does not trip the fuzzer's memory limit.
  convnet::fuzz::TextSize extent;
  for (const char* key : {"spec", "input_shape"}) {
    const auto it = file.metadata.find(key);
    if (it != file.metadata.end()) extent.add(it->second);
  }
  if (extent.largest > 64 || extent.lines > 12) return 0;
  const std::string path = convnet::fuzz::write_input(data, size, "input.safetensors");
  try {
    convnet::load_checkpoint<float>(path);
  } catch (const convnet::Error&) {
  }
  return 0;
}
