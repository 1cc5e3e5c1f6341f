// Fuzz target: image files (JPEG through libjpeg-turbo, PNG, PGM/PPM and BMP through stb_image),
// read as grey and RGB with a pixel limit, then resized; and made into a sample through the
// streamed sets' transforms (a JPEG then decoded at a reduced scale, a region resampled).
#include "fuzz_input.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = convnet::fuzz::write_input(data, size, "input.img");
  bool small = false;  // read within the fuzzing limit of pixels
  for (int64_t channels : {1, 3}) {
    try {
      const convnet::Image image = convnet::read_image(path, channels, 1 << 20);
      if (static_cast<int64_t>(image.pixels.size()) != image.channels * image.height * image.width)
        std::abort();
      convnet::resize_image(image, 7, 9);
      small = true;
    } catch (const convnet::Error&) {
    }
  }
  if (!small) return 0;  // load_image_sample's own limit is 64 Mpixels: too slow to fuzz
  const convnet::ImageTransform crop =
      convnet::ImageTransform::parse("random-resized-crop+flip", "fuzz");
  for (const convnet::Shape& sample : {convnet::Shape{3, 4, 5}, convnet::Shape{1, 1, 1}}) {
    std::vector<uint8_t> out(static_cast<size_t>(sample.numel()));
    convnet::Rng rng(static_cast<uint64_t>(size));
    try {
      convnet::load_image_sample(path, crop, sample, rng, out.data());
    } catch (const convnet::Error&) {
    }
  }
  return 0;
}
