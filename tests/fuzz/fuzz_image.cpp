// Fuzz target: image files (PNG, JPEG, PGM/PPM, BMP through stb_image), read as grey and RGB
// with a pixel limit, then resized.
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convnet::fuzz::write_input(data, size, "input.img");
  for (int64_t channels : {1, 3}) {
    try {
      const convnet::Image image = convnet::read_image(path, channels, 1 << 20);
      if (static_cast<int64_t>(image.pixels.size()) != image.channels * image.height * image.width)
        std::abort();
      convnet::resize_image(image, 7, 9);
    } catch (const convnet::Error&) {
    }
  }
  return 0;
}
