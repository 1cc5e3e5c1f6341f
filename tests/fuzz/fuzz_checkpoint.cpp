// Fuzz target: checkpoint files (the safetensors container, then load_checkpoint: metadata, spec,
// shapes, tensors).
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    convnet::decode_safetensors(std::string_view(reinterpret_cast<const char*>(data), size),
                                "fuzz");
  } catch (const convnet::Error&) {
  }
  const std::string path = convnet::fuzz::write_input(data, size, "input.safetensors");
  try {
    convnet::load_checkpoint<float>(path);
  } catch (const convnet::Error&) {
  }
  return 0;
}
