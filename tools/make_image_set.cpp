// make_image_set: writes a labelled set of JPEGs for measuring image loading, with no download:
// DIR/train/<class>/<n>.jpg and DIR/test/<class>/<n>.jpg, sizes varied around WxH (+-25% on each
// side, so aspect ratios vary too), each class a pattern of its own (stripes at its own angle and
// frequency, a colour of its own, noise), so that a model can learn them. Deterministic in the
// seed. Usage:
//   build/make_image_set DIR TRAIN_IMAGES TEST_IMAGES [CLASSES=10] [WIDTH=160] [HEIGHT=120]
//                        [QUALITY=90] [SEED=1]
// DIR must not exist yet (nothing of the user's is overwritten); files are written atomically.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "convnet/error.hpp"
#include "convnet/files.hpp"
#include "convnet/image.hpp"
#include "convnet/rng.hpp"

namespace {

convnet::Image pattern(int64_t label, int64_t classes, int64_t width, int64_t height,
                       convnet::Rng& rng) {
  convnet::Image image{3, height, width,
                       std::vector<uint8_t>(static_cast<size_t>(3 * width * height))};
  const double angle =
      M_PI * static_cast<double>(label) / static_cast<double>(classes) + rng.uniform(-0.15, 0.15);
  const double frequency = (0.05 + 0.02 * static_cast<double>(label % 4)) * rng.uniform(0.8, 1.25);
  const double phase = rng.uniform(0, 2 * M_PI);
  const double tint[3] = {0.5 + 0.5 * std::cos(static_cast<double>(label)),
                          0.5 + 0.5 * std::cos(static_cast<double>(label) + 2.1),
                          0.5 + 0.5 * std::cos(static_cast<double>(label) + 4.2)};
  const double c = std::cos(angle), s = std::sin(angle);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t x = 0; x < width; ++x) {
      const double wave =
          0.5 +
          0.5 * std::sin(frequency * (c * static_cast<double>(x) + s * static_cast<double>(y)) * 2 *
                             M_PI +
                         phase);
      for (int64_t ch = 0; ch < 3; ++ch) {
        const double v = 255.0 * (0.25 + 0.6 * wave * tint[ch]) + rng.normal(0, 12);
        image.pixels[static_cast<size_t>((ch * height + y) * width + x)] =
            static_cast<uint8_t>(std::lround(std::clamp(v, 0.0, 255.0)));
      }
    }
  return image;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: make_image_set DIR TRAIN_IMAGES TEST_IMAGES [CLASSES=10] [WIDTH=160] "
                 "[HEIGHT=120] [QUALITY=90] [SEED=1]\n");
    return 2;
  }
  const std::string dir = argv[1];
  const auto arg = [&](int i, long long fallback) {
    return argc > i ? std::atoll(argv[i]) : fallback;
  };
  const long long counts[2] = {arg(2, 0), arg(3, 0)};
  const long long classes = arg(4, 10), width = arg(5, 160), height = arg(6, 120);
  const int quality = static_cast<int>(arg(7, 90));
  const auto seed = static_cast<uint64_t>(arg(8, 1));
  try {
    namespace fs = std::filesystem;
    CONVNET_CHECK(counts[0] >= 0 && counts[1] >= 0 && classes >= 1 && classes <= 1000 &&
                      width >= 8 && height >= 8 && width <= 8192 && height <= 8192,
                  "make_image_set: expected image counts >= 0, 1-1000 classes and sides of 8-8192");
    std::error_code ec;
    CONVNET_CHECK(!fs::exists(fs::symlink_status(dir, ec)), dir,
                  ": already exists; make_image_set writes a new folder only");
    const char* parts[2] = {"train", "test"};
    for (int part = 0; part < 2; ++part) {
      for (long long k = 0; k < classes; ++k)
        fs::create_directories(fs::path(dir) / parts[part] / ("class" + std::to_string(k)));
      const convnet::Rng base = convnet::Rng(seed).split(static_cast<uint64_t>(part));
      for (long long n = 0; n < counts[part]; ++n) {
        convnet::Rng rng = base.split(static_cast<uint64_t>(n));
        const long long label = n % classes;
        const auto w =
            static_cast<int64_t>(std::lround(static_cast<double>(width) * rng.uniform(0.75, 1.25)));
        const auto h = static_cast<int64_t>(
            std::lround(static_cast<double>(height) * rng.uniform(0.75, 1.25)));
        const convnet::Image image = pattern(label, classes, w, h, rng);
        const fs::path file = fs::path(dir) / parts[part] / ("class" + std::to_string(label)) /
                              (std::to_string(n) + ".jpg");
        convnet::write_file_atomic(file.string(), convnet::encode_jpeg(image, quality));
      }
    }
    std::printf("%s: %lld training and %lld test JPEGs in %lld classes, about %lldx%lld\n",
                dir.c_str(), counts[0], counts[1], classes, width, height);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
