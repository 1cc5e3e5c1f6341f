// A folder of labelled images: <dir>/<class>/<file>.png|jpg|jpeg|pgm|ppm|pnm|bmp. Classes are
// the sub-folders in sorted order (so a label means the same on every machine), files within a
// class sorted too; each image is converted to the requested channels and resized.
#include <algorithm>
#include <filesystem>

#include "convnet/data.hpp"
#include "convnet/image.hpp"
#include "data/loading.hpp"

namespace convnet {
namespace {

bool is_image_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* known : {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp"})
    if (ext == known) return true;
  return false;
}

}  // namespace

Dataset load_image_folder(const std::string& dir, const Shape& sample_shape) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_directory(dir, ec), dir, ": image folder not found");
  CONVNET_CHECK(sample_shape.rank() == 3 && (sample_shape[0] == 1 || sample_shape[0] == 3) &&
                    sample_shape[1] > 0 && sample_shape[2] > 0,
                dir, ": images are loaded as 1 or 3 channels of positive size, not ",
                sample_shape.str());
  std::vector<fs::path> classes;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory()) classes.push_back(entry.path());
  CONVNET_CHECK(!ec, dir, ": cannot list: ", ec.message());
  CONVNET_CHECK(!classes.empty(), dir, ": no class sub-folders (expected ", dir,
                "/<class>/<image files>)");
  std::sort(classes.begin(), classes.end());

  const int64_t C = sample_shape[0], H = sample_shape[1], W = sample_shape[2];
  // Every class's files are listed first, so the memory they need is known (and refused with
  // its size) before any image is decoded.
  std::vector<std::vector<fs::path>> files(classes.size());
  size_t total = 0;
  for (size_t label = 0; label < classes.size(); ++label) {
    for (const auto& entry : fs::directory_iterator(classes[label], ec))
      if (entry.is_regular_file() && is_image_file(entry.path()))
        files[label].push_back(entry.path());
    CONVNET_CHECK(!ec, classes[label].string(), ": cannot list: ", ec.message());
    CONVNET_CHECK(!files[label].empty(), classes[label].string(),
                  ": class folder has no images (.png, .jpg, .jpeg, .pgm, .ppm, .pnm, .bmp)");
    std::sort(files[label].begin(), files[label].end());
    total += files[label].size();
  }
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  const auto bytes = static_cast<uint64_t>(total) * static_cast<uint64_t>(C * H * W);
  try {
    pixels.reserve(static_cast<size_t>(bytes));
    labels.reserve(total);
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat(dir, ": out of memory loading data: its ", total,
                               total == 1 ? " image" : " images", " of ", sample_shape.str(),
                               " need ", bytes_text(bytes)));
  }
  std::vector<std::string> names;
  for (size_t label = 0; label < classes.size(); ++label) {
    for (const fs::path& file : files[label]) {
      const Image image = resize_image(read_image(file.string(), C), H, W);
      pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
      labels.push_back(static_cast<int32_t>(label));
    }
    names.push_back(classes[label].filename().string());
  }
  const auto n = static_cast<int64_t>(labels.size());
  const auto class_count = static_cast<int64_t>(names.size());
  Dataset data =
      Dataset::from_bytes(Shape{n, C, H, W}, std::move(pixels), std::move(labels), class_count);
  data.set_class_names(std::move(names));
  return data;
}

}  // namespace convnet
