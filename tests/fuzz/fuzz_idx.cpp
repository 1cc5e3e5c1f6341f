// Fuzz target: IDX files, plain and gzip, of bytes or floats (read_idx, idx_floats), then the
// labelled-set loader on top.
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convnet::fuzz::write_input(data, size, "input-idx3-ubyte");
  try {
    const convnet::IdxArray a = convnet::read_idx(path);
    // What was accepted is self-consistent.
    uint64_t count = 1;
    for (int64_t d : a.dims) count *= static_cast<uint64_t>(d);
    if (count * (a.type == 0x0D ? 4 : 1) != a.values.size()) std::abort();
    if (convnet::idx_floats(a, path).size() != count) std::abort();
  } catch (const convnet::Error&) {
  }
  try {  // the same bytes as both images and labels of a set
    convnet::load_idx_dataset(path, path);
  } catch (const convnet::Error&) {
  }
  return 0;
}
