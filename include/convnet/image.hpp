// Images on disk: PNG, JPEG, PGM/PPM and BMP read (through stb_image, Debian's libstb-dev),
// resized, and PNG written. Pixels are bytes, planar C x H x W, as the model's input is laid out.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convnet {

struct Image {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // channels x height x width, planar
};

// Reads an image file, converted to `channels` (1: grey, 3: RGB; an alpha channel is dropped).
// Throws convnet::Error naming the file and the reason: missing, a directory, empty, not an image
// in a supported format, truncated or corrupt, larger than max_pixels (the size its header
// declares and the limit), or too large for the memory left.
Image read_image(const std::string& path, int64_t channels, int64_t max_pixels = 1 << 26);

// Resamples to height x width (stb_image_resize's default filters: Catmull-Rom enlarging,
// Mitchell shrinking, which average properly when a photo is made much smaller).
Image resize_image(const Image& image, int64_t height, int64_t width);

// A 1- or 3-channel image encoded as PNG bytes (for pages that inline their pictures).
std::string encode_png(const Image& image);

// Writes a 1- or 3-channel image as PNG; the file appears only once complete (written beside it
// and renamed). Throws naming the file when it cannot be written.
void write_png(const std::string& path, const Image& image);

}  // namespace convnet
