// Fuzz target: a CIFAR-10 binary batch (the test split of a folder holding only that file).
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  convnet::fuzz::write_input(data, size, "test_batch.bin");
  try {
    const convnet::Dataset d = convnet::load_cifar10(convnet::fuzz::scratch_dir().string(), "test");
    for (int32_t label : d.labels())
      if (label < 0 || label >= d.classes()) std::abort();
  } catch (const convnet::Error&) {
  }
  return 0;
}
