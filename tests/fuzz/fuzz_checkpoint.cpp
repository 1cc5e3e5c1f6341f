// Fuzz target: checkpoint files (the safetensors container, the checksums, then load_checkpoint:
// keys, values, metadata, spec, shapes, tensors).
//
// A mutated convnet.checkpoint/2 file almost never carries valid CRC-32s, so loading the input as
// it is exercises the container and the checksum checks but stops there. To reach what comes
// after, an input that decodes as safetensors is also sealed afresh (encode_checkpoint recomputes
// every checksum) and loaded again: the mutation then reaches the key, value, spec and tensor
// checks as a deliberate edit would. The seeds in corpus/checkpoint carry valid checksums.
#include <algorithm>

#include "fuzz_input.hpp"

namespace {

void load(const std::string& path) {
  try {
    convnet::load_checkpoint<float>(path);
  } catch (const convnet::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convnet::SafeTensors file;
  bool decoded = true;
  try {
    file = convnet::decode_safetensors(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const convnet::Error&) {
    decoded = false;
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
  load(convnet::fuzz::write_input(data, size, "input.safetensors"));
  if (!decoded) return 0;
  std::string sealed;
  try {
    sealed = convnet::encode_checkpoint(file);
  } catch (const convnet::Error&) {
    return 0;  // a tensor encode_safetensors refuses to write (none that decoded should be)
  }
  load(convnet::fuzz::write_input(reinterpret_cast<const uint8_t*>(sealed.data()), sealed.size(),
                                  "sealed.safetensors"));
  return 0;
}
