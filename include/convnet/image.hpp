// Images on disk: JPEG read through libjpeg-turbo (Debian's libturbojpeg0-dev), PNG, PGM/PPM and
// BMP through stb_image (Debian's libstb-dev); resized, and PNG written. Pixels are bytes, planar C
// x H x W, as the model's input is laid out.
#pragma once

#include <cstdint>
#include <functional>
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
// The same, where a JPEG may be decoded smaller: `reduction` is called once with the size the
// file declares (height, width) and returns the largest factor (1, 2, 4 or 8) the caller can
// lose; a JPEG is then decoded at that fraction of its size by libjpeg-turbo's scaled inverse
// DCT (what PIL's draft() does: much less work than decoding everything and shrinking it). Other
// formats come at full size. The image's own height and width say what the decode gave.
Image read_image(const std::string& path, int64_t channels, int64_t max_pixels,
                 const std::function<int(int64_t height, int64_t width)>& reduction);

// Resamples to height x width (stb_image_resize's default filters: Catmull-Rom enlarging,
// Mitchell shrinking, which average properly when a photo is made much smaller).
Image resize_image(const Image& image, int64_t height, int64_t width);
// An image as the decoders give it and the resampler reads it: height x width x channels bytes,
// interleaved (an Image is its planar transpose). Loaders that resample straight after decoding
// stay in this layout and transpose once, into the sample.
struct PixelRows {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<uint8_t> pixels;  // height x width x channels
};
// read_image(path, channels, max_pixels, reduction) without the transpose.
PixelRows read_image_rows(const std::string& path, int64_t channels, int64_t max_pixels,
                          const std::function<int(int64_t height, int64_t width)>& reduction);
// Resamples the region [x, x + w) x [y, y + h) of image (whole pixels, inside the image) to
// height x width with resize_image's filters, into out (planar, C x height x width).
void resize_region(const PixelRows& image, int64_t x, int64_t y, int64_t w, int64_t h,
                   int64_t height, int64_t width, uint8_t* out);
// The whole image resampled to height x width into out (planar): resize_image's bytes.
void resize_rows(const PixelRows& image, int64_t height, int64_t width, uint8_t* out);

// A 1- or 3-channel image encoded as PNG bytes (for pages that inline their pictures).
std::string encode_png(const Image& image);

// A 1- or 3-channel image encoded as JPEG bytes at `quality` (1-100; 4:2:0 chroma for colour).
std::string encode_jpeg(const Image& image, int quality = 90);

// Writes a 1- or 3-channel image as PNG; the file appears only once complete (written beside it
// and renamed). Throws naming the file when it cannot be written.
void write_png(const std::string& path, const Image& image);

}  // namespace convnet
