// Image files through well-kept libraries: JPEG through libjpeg-turbo's TurboJPEG API (Debian's
// libturbojpeg0-dev: SIMD decoding, and decoding at 1/2, 1/4 or 1/8 of the size in the inverse
// DCT itself); everything else, resampling and PNG encoding through stb (Debian's libstb-dev ships
// stb_image, stb_image_resize and stb_image_write as one shared library). We convert between
// their interleaved H x W x C bytes and our planar C x H x W.
#include "convnet/image.hpp"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <new>

#include "convnet/error.hpp"
#include "convnet/files.hpp"

namespace convnet {
namespace {

std::vector<uint8_t> interleaved(const Image& image) {
  const int64_t hw = image.height * image.width;
  std::vector<uint8_t> out(image.pixels.size());
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t i = 0; i < hw; ++i)
      out[static_cast<size_t>(i * image.channels + c)] = image.pixels[static_cast<size_t>(c * hw + i)];
  return out;
}

Image planar(const uint8_t* data, int64_t channels, int64_t height, int64_t width) {
  Image image{channels, height, width, std::vector<uint8_t>(static_cast<size_t>(channels * height * width))};
  const int64_t hw = height * width;
  for (int64_t c = 0; c < channels; ++c)
    for (int64_t i = 0; i < hw; ++i)
      image.pixels[static_cast<size_t>(c * hw + i)] = data[i * channels + c];
  return image;
}

void check_image(const Image& image, const char* what) {
  CONVNET_CHECK((image.channels == 1 || image.channels == 3) && image.height > 0 &&
                    image.width > 0 &&
                    static_cast<int64_t>(image.pixels.size()) ==
                        image.channels * image.height * image.width,
                what, ": expected a 1- or 3-channel image with C*H*W bytes, got ", image.channels,
                "x", image.height, "x", image.width, " with ", image.pixels.size(), " bytes");
}

// Binary PGM/PPM (P5, P6) must hold the pixels their header declares: stb_image decodes a short
// one without complaint, leaving the missing pixels uninitialised (found by tests/fuzz).
void check_pnm_length(const std::string& path, FILE* file) {
  char head[256];
  const size_t got = std::fread(head, 1, sizeof head, file);
  std::rewind(file);
  if (got < 2 || head[0] != 'P' || (head[1] != '5' && head[1] != '6')) return;
  size_t at = 2;
  int64_t fields[3] = {0, 0, 0};  // width, height, maxval
  for (int64_t& field : fields) {
    for (;;) {  // whitespace and # comments
      while (at < got && std::isspace(static_cast<unsigned char>(head[at]))) ++at;
      if (at < got && head[at] == '#') {
        while (at < got && head[at] != '\n') ++at;
        continue;
      }
      break;
    }
    if (at >= got || !std::isdigit(static_cast<unsigned char>(head[at]))) return;  // stb decides
    while (at < got && std::isdigit(static_cast<unsigned char>(head[at])) && field < (1 << 30))
      field = field * 10 + (head[at++] - '0');
  }
  if (at >= got) return;
  ++at;  // the single whitespace byte before the pixels
  // In double: the fields may be as large as 2^30 each (found by tests/fuzz/fuzz_image).
  const double bytes = static_cast<double>(fields[0]) * static_cast<double>(fields[1]) *
                       (head[1] == '6' ? 3 : 1) * (fields[2] > 255 ? 2 : 1);
  std::error_code ec;
  const auto size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
  CONVNET_CHECK(ec || static_cast<double>(size - static_cast<int64_t>(at)) >= bytes, path,
                ": truncated: the ", fields[0], "x", fields[1], " P", head[1], " image needs ",
                static_cast<int64_t>(std::min(bytes, 9e18)), " bytes of pixels, the file has ",
                size - static_cast<int64_t>(at));
}

// Every PNG chunk must fit in the file: stb_image allocates a chunk's declared length before
// reading it, so an 81-byte file claiming a 1.3 GB IDAT made it allocate 1.3 GB (found by
// tests/fuzz/fuzz_image).
void check_png_chunks(const std::string& path, FILE* file) {
  unsigned char b[8];
  const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  const bool png = std::fread(b, 1, 8, file) == 8 && std::equal(b, b + 8, signature);
  if (png) {
    std::error_code ec;
    const auto size = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    int64_t at = 8;
    while (!ec && std::fread(b, 1, 8, file) == 8) {
      const int64_t length = (int64_t{b[0]} << 24) | (b[1] << 16) | (b[2] << 8) | b[3];
      const std::string type(reinterpret_cast<const char*>(b + 4), 4);
      // 8 bytes of length and type, the data, 4 of CRC.
      CONVNET_CHECK(at + 12 + length <= size, path, ": truncated or corrupt PNG: chunk '", type,
                    "' at byte ", at, " declares ", length, " bytes, the file has ",
                    std::max<int64_t>(size - at - 12, 0), " left");
      if (type == "IEND") break;
      at += 12 + length;
      if (std::fseek(file, static_cast<long>(at), SEEK_SET) != 0) break;
    }
  }
  std::rewind(file);
}

// The size a PNG, JPEG or BMP header declares, read here rather than by stb_image: stb refuses
// a size it cannot decode but reports only "unknown image type", the reason of its last guess.
struct DeclaredSize {
  const char* format = nullptr;  // null: not one of these, or the header is not readable
  int64_t width = 0, height = 0;
};

DeclaredSize declared_size(FILE* file) {
  unsigned char b[32] = {};
  const size_t got = std::fread(b, 1, sizeof b, file);
  DeclaredSize out;
  auto big_endian = [](const unsigned char* p, int bytes) {
    int64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
    return v;
  };
  auto little_endian = [](const unsigned char* p, int bytes) {
    int64_t v = 0;
    for (int i = bytes; i-- > 0;) v = (v << 8) | p[i];
    return v;
  };
  const unsigned char png[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (got >= 24 && std::equal(png, png + 8, b) && std::memcmp(b + 12, "IHDR", 4) == 0) {
    out = {"PNG", big_endian(b + 16, 4), big_endian(b + 20, 4)};
  } else if (got >= 26 && b[0] == 'B' && b[1] == 'M') {
    if (little_endian(b + 14, 4) == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
      out = {"BMP", little_endian(b + 18, 2), little_endian(b + 20, 2)};
    } else {  // BITMAPINFOHEADER and later: signed 32-bit, a negative height is top-down
      const auto width = static_cast<int32_t>(little_endian(b + 18, 4));
      const auto height = static_cast<int32_t>(little_endian(b + 22, 4));
      out = {"BMP", std::abs(int64_t{width}), std::abs(int64_t{height})};
    }
  } else if (got >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
    // JPEG: segments FF <marker> <16-bit length> up to a start-of-frame, which holds the size.
    long at = 2;
    for (int segment = 0; segment < 4096; ++segment) {
      unsigned char m[9];
      if (std::fseek(file, at, SEEK_SET) != 0 || std::fread(m, 1, 4, file) != 4 || m[0] != 0xFF)
        break;
      const int marker = m[1];
      if (marker == 0xFF) {  // fill byte
        at += 1;
        continue;
      }
      const bool frame =
          marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
      if (frame) {
        if (std::fread(m + 4, 1, 5, file) == 5)
          out = {"JPEG", big_endian(m + 7, 2), big_endian(m + 5, 2)};
        break;
      }
      if (marker == 0xD9 || marker == 0xDA) break;  // end of image, start of scan: no frame
      at += 2 + static_cast<long>(big_endian(m + 2, 2));
    }
  }
  std::rewind(file);
  return out;
}

// "PATH: too large: its PNG header declares 100000x100000 pixels, more than the limit of ...".
void check_size(const std::string& path, const char* format, int64_t width, int64_t height,
                int64_t max_pixels) {
  // stb_image's int sizes of a PNM header past 2^31 come back wrapped, negative: not a size to
  // report; check_pnm_length reads the header's own numbers next.
  if (width < 0 || height < 0) return;
  // Compared by division: two 32-bit sizes from a header multiply past int64 (found by
  // tests/fuzz/fuzz_image; regression test in tests/data/test_loaders.cpp).
  CONVNET_CHECK(width <= max_pixels && height <= max_pixels &&
                    (height == 0 || width <= max_pixels / height),
                path, ": too large: its ", format,
                " header declares ", width, "x", height, " pixels, more than the limit of ",
                max_pixels, " pixels");
}

// Decoded in the file's own channels, and converted here: stb_image's own conversion of a
// 16-bit PGM/PPM to other channels reads past its buffer (found by tests/fuzz/fuzz_image;
// regression test in tests/data/test_loaders.cpp). Throws std::bad_alloc when memory runs out.
PixelRows decode(const std::string& path, FILE* file, int64_t channels) {
  int w = 0, h = 0, n = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(stbi_load_from_file(file, &w, &h, &n, 0),
                                                 &stbi_image_free);
  // stb_image reports a failed allocation only by its reason: made a bad_alloc, which the
  // caller turns into a message with the image's size.
  if (data == nullptr && std::strcmp(stbi_failure_reason(), "outofmem") == 0)
    throw std::bad_alloc();
  CONVNET_CHECK(data != nullptr, path, ": cannot decode: ", stbi_failure_reason());
  CONVNET_CHECK(n >= 1 && n <= 4, path, ": cannot decode: ", n, " channels");
  const int64_t pixels = static_cast<int64_t>(w) * h;
  std::vector<stbi_uc> converted(static_cast<size_t>(pixels * channels));
  for (int64_t i = 0; i < pixels; ++i) {
    const stbi_uc* px = data.get() + i * n;
    stbi_uc* out = converted.data() + i * channels;
    const bool colour = n >= 3;  // RGB or RGBA; otherwise grey or grey+alpha. Alpha is dropped.
    if (channels == 3) {
      for (int c = 0; c < 3; ++c) out[c] = colour ? px[c] : px[0];
    } else {
      // stb_image's luma: (77 R + 150 G + 29 B) / 256.
      out[0] = colour ? static_cast<stbi_uc>((px[0] * 77 + px[1] * 150 + px[2] * 29) >> 8) : px[0];
    }
  }
  return {channels, h, w, std::move(converted)};
}

// A TurboJPEG decompressor per thread (loader threads decode side by side), made once.
tjhandle jpeg_decompressor() {
  struct Handle {
    tjhandle h = tjInitDecompress();
    ~Handle() {
      if (h) tjDestroy(h);
    }
  };
  thread_local Handle handle;
  CONVNET_CHECK(handle.h != nullptr,
                "libjpeg-turbo: cannot make a decompressor: ", tjGetErrorStr2(nullptr));
  return handle.h;
}

// A JPEG decoded at 1/reduction of its size (reduction 1, 2, 4 or 8) straight into `channels`
// (libjpeg-turbo converts: grey to RGB by copying, colour to grey by its luma Y). A warning
// (a truncated or corrupt stream, which libjpeg would fill with grey) is an error here.
PixelRows decode_jpeg(const std::string& path, FILE* file, int64_t channels, int reduction) {
  std::error_code ec;
  const auto size = static_cast<size_t>(std::filesystem::file_size(path, ec));
  CONVNET_CHECK(!ec, path, ": cannot read its size: ", ec.message());
  std::vector<unsigned char> bytes(size);
  CONVNET_CHECK(std::fread(bytes.data(), 1, size, file) == size, path,
                ": cannot read: ", std::strerror(errno));
  tjhandle tj = jpeg_decompressor();
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  CONVNET_CHECK(tjDecompressHeader3(tj, bytes.data(), static_cast<unsigned long>(size), &width,
                                    &height, &subsampling, &colorspace) == 0,
                path, ": not a readable JPEG: ", tjGetErrorStr2(tj));
  const tjscalingfactor factor{1, reduction};
  const int w = TJSCALED(width, factor), h = TJSCALED(height, factor);
  std::vector<unsigned char> pixels(static_cast<size_t>(w) * static_cast<size_t>(h) *
                                    static_cast<size_t>(channels));
  const int status =
      tjDecompress2(tj, bytes.data(), static_cast<unsigned long>(size), pixels.data(), w, 0, h,
                    channels == 3 ? TJPF_RGB : TJPF_GRAY, TJFLAG_STOPONWARNING);
  CONVNET_CHECK(status == 0, path, ": cannot decode: ", tjGetErrorStr2(tj),
                tjGetErrorCode(tj) == TJERR_WARNING ? " (truncated or corrupt)" : "");
  return {channels, h, w, std::move(pixels)};
}

}  // namespace

Image read_image(const std::string& path, int64_t channels, int64_t max_pixels) {
  return read_image(path, channels, max_pixels, nullptr);
}

Image read_image(const std::string& path, int64_t channels, int64_t max_pixels,
                 const std::function<int(int64_t height, int64_t width)>& reduction) {
  const PixelRows rows = read_image_rows(path, channels, max_pixels, reduction);
  return planar(rows.pixels.data(), rows.channels, rows.height, rows.width);
}

PixelRows read_image_rows(const std::string& path, int64_t channels, int64_t max_pixels,
                          const std::function<int(int64_t height, int64_t width)>& reduction) {
  CONVNET_CHECK(channels == 1 || channels == 3, path, ": images are read as 1 (grey) or 3 (RGB) ",
                "channels, not ", channels);
  std::error_code ec;
  CONVNET_CHECK(std::filesystem::exists(path, ec), path, ": no such file");
  CONVNET_CHECK(!std::filesystem::is_directory(path, ec), path, ": is a directory, not an image");
  CONVNET_CHECK(std::filesystem::file_size(path, ec) != 0 || ec, path,
                ": empty file (0 bytes), not an image");
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  CONVNET_CHECK(file != nullptr, path, ": cannot open: ", std::strerror(errno));
  // The header first: a file claiming a huge size is refused before anything is allocated.
  const DeclaredSize declared = declared_size(file.get());
  if (declared.format)
    check_size(path, declared.format, declared.width, declared.height, max_pixels);
  if (declared.format && std::strcmp(declared.format, "JPEG") == 0) {
    int factor = reduction ? reduction(declared.height, declared.width) : 1;
    CONVNET_CHECK(factor == 1 || factor == 2 || factor == 4 || factor == 8, path,
                  ": a JPEG is decoded at 1/1, 1/2, 1/4 or 1/8 of its size, not 1/", factor);
    try {
      return decode_jpeg(path, file.get(), channels, factor);
    } catch (const std::bad_alloc&) {
      throw Error(detail::concat(path, ": out of memory decoding its ", declared.width, "x",
                                 declared.height, " JPEG"));
    }
  }
  int width = 0, height = 0, stored_channels = 0;
  CONVNET_CHECK(stbi_info_from_file(file.get(), &width, &height, &stored_channels) == 1, path,
                ": not a readable image (PNG, JPEG, PGM/PPM or BMP): ", stbi_failure_reason());
  check_size(path, "image", width, height, max_pixels);
  check_pnm_length(path, file.get());
  check_png_chunks(path, file.get());
  try {
    return decode(path, file.get(), channels);
  } catch (const std::bad_alloc&) {
    const int64_t pixels = static_cast<int64_t>(width) * height;
    throw Error(detail::concat(path, ": out of memory decoding its ", width, "x", height,
                               " image (", pixels * stored_channels, " bytes decoded, ",
                               pixels * channels, " more converted)"));
  }
}

Image resize_image(const Image& image, int64_t height, int64_t width) {
  check_image(image, "resize_image");
  CONVNET_CHECK(height > 0 && width > 0 && height <= (1 << 15) && width <= (1 << 15),
                "resize_image: target size must be 1..32768 on each side, got ", height, "x",
                width);
  if (height == image.height && width == image.width) return image;
  const std::vector<uint8_t> in = interleaved(image);
  std::vector<uint8_t> out(static_cast<size_t>(height * width * image.channels));
  const int ok = stbir_resize_uint8(in.data(), static_cast<int>(image.width),
                                    static_cast<int>(image.height), 0, out.data(),
                                    static_cast<int>(width), static_cast<int>(height), 0,
                                    static_cast<int>(image.channels));
  CONVNET_CHECK(ok == 1, "resize_image: resampling ", image.width, "x", image.height, " to ", width,
                "x", height, " failed (out of memory)");
  return planar(out.data(), image.channels, height, width);
}

namespace {

void check_rows(const PixelRows& image, int64_t height, int64_t width, const char* what) {
  CONVNET_CHECK(
      (image.channels == 1 || image.channels == 3) && image.height > 0 && image.width > 0 &&
          static_cast<int64_t>(image.pixels.size()) == image.channels * image.height * image.width,
      what, ": expected a 1- or 3-channel image with H*W*C bytes, got ", image.channels, "x",
      image.height, "x", image.width, " with ", image.pixels.size(), " bytes");
  CONVNET_CHECK(height > 0 && width > 0 && height <= (1 << 15) && width <= (1 << 15), what,
                ": target size must be 1..32768 on each side, got ", height, "x", width);
}

}  // namespace

void resize_region(const PixelRows& image, int64_t x, int64_t y, int64_t w, int64_t h,
                   int64_t height, int64_t width, uint8_t* out) {
  check_rows(image, height, width, "resize_region");
  CONVNET_CHECK(w > 0 && h > 0 && x >= 0 && y >= 0 && x + w <= image.width && y + h <= image.height,
                "resize_region: region ", w, "x", h, " at (", x, ", ", y, ") is not inside the ",
                image.width, "x", image.height, " image");
  // The region's rows copied out, then resampled whole: stb_image_resize's own sub-region
  // sampling trips an assertion of its own on regions a pixel or two wide (found by
  // tests/fuzz/fuzz_image).
  PixelRows region{image.channels, h, w,
                   std::vector<uint8_t>(static_cast<size_t>(h * w * image.channels))};
  const int64_t row = w * image.channels;
  for (int64_t r = 0; r < h; ++r)
    std::copy_n(image.pixels.data() + ((y + r) * image.width + x) * image.channels, row,
                region.pixels.data() + r * row);
  resize_rows(region, height, width, out);
}

void resize_rows(const PixelRows& image, int64_t height, int64_t width, uint8_t* out) {
  check_rows(image, height, width, "resize_rows");
  const int64_t hw = height * width;
  if (height == image.height && width == image.width) {
    for (int64_t c = 0; c < image.channels; ++c)
      for (int64_t i = 0; i < hw; ++i)
        out[c * hw + i] = image.pixels[static_cast<size_t>(i * image.channels + c)];
    return;
  }
  // The call resize_image makes, so that the bytes are resize_image's.
  std::vector<uint8_t> resized(static_cast<size_t>(hw * image.channels));
  const int ok = stbir_resize_uint8(image.pixels.data(), static_cast<int>(image.width),
                                    static_cast<int>(image.height), 0, resized.data(),
                                    static_cast<int>(width), static_cast<int>(height), 0,
                                    static_cast<int>(image.channels));
  CONVNET_CHECK(ok == 1, "resize_rows: resampling failed (out of memory)");
  for (int64_t c = 0; c < image.channels; ++c)
    for (int64_t i = 0; i < hw; ++i)
      out[c * hw + i] = resized[static_cast<size_t>(i * image.channels + c)];
}

std::string encode_png(const Image& image) {
  check_image(image, "encode_png");
  const std::vector<uint8_t> data = interleaved(image);
  std::string out;
  const int ok = stbi_write_png_to_func(
      [](void* context, void* bytes, int size) {
        static_cast<std::string*>(context)->append(static_cast<const char*>(bytes),
                                                   static_cast<size_t>(size));
      },
      &out, static_cast<int>(image.width), static_cast<int>(image.height),
      static_cast<int>(image.channels), data.data(), static_cast<int>(image.width * image.channels));
  CONVNET_CHECK(ok == 1, "encode_png: stb_image_write failed (out of memory)");
  return out;
}

std::string encode_jpeg(const Image& image, int quality) {
  check_image(image, "encode_jpeg");
  CONVNET_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be 1 to 100, got ",
                quality);
  const std::vector<uint8_t> data = interleaved(image);
  std::unique_ptr<void, int (*)(tjhandle)> tj(tjInitCompress(), &tjDestroy);
  CONVNET_CHECK(tj != nullptr, "encode_jpeg: cannot make a compressor: ", tjGetErrorStr2(nullptr));
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const bool colour = image.channels == 3;
  const int status = tjCompress2(tj.get(), data.data(), static_cast<int>(image.width), 0,
                                 static_cast<int>(image.height), colour ? TJPF_RGB : TJPF_GRAY,
                                 &jpeg, &size, colour ? TJSAMP_420 : TJSAMP_GRAY, quality, 0);
  std::unique_ptr<unsigned char, void (*)(unsigned char*)> owned(jpeg, &tjFree);
  CONVNET_CHECK(status == 0, "encode_jpeg: ", tjGetErrorStr2(tj.get()));
  return std::string(reinterpret_cast<const char*>(jpeg), size);
}

void write_png(const std::string& path, const Image& image) {
  check_image(image, path.c_str());
  write_file_atomic(path, encode_png(image));
}

}  // namespace convnet
