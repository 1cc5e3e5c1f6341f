// CIFAR-10, binary version (https://www.cs.toronto.edu/~kriz/cifar.html): each batch file is
// records of 1 label byte followed by 3072 pixel bytes (1024 red, 1024 green, 1024 blue, each
// 32 x 32 row-major): already our planar C x H x W layout, copied as it is.
#include <filesystem>
#include <fstream>

#include "convnet/data.hpp"
#include "data/loading.hpp"

namespace convnet {
namespace {

constexpr int64_t kPixels = 3 * 32 * 32, kRecord = 1 + kPixels;

void append_batch(const std::string& path, std::vector<uint8_t>& pixels,
                  std::vector<int32_t>& labels) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_regular_file(path, ec), path, ": no such file (a CIFAR-10 binary batch)");
  const auto size = static_cast<int64_t>(fs::file_size(path, ec));
  CONVNET_CHECK(!ec, path, ": cannot read its size: ", ec.message());
  CONVNET_CHECK(size > 0 && size % kRecord == 0, path, ": ", size,
                " bytes is not a whole number of CIFAR-10 records of ", kRecord,
                " bytes (truncated or not a CIFAR-10 binary batch)");
  std::ifstream in(path, std::ios::binary);
  CONVNET_CHECK(in.good(), path, ": cannot open");
  const int64_t records = size / kRecord;
  try {
    pixels.reserve(pixels.size() + static_cast<size_t>(records * kPixels));
    labels.reserve(labels.size() + static_cast<size_t>(records));
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat(path, ": out of memory loading data: its ", records,
                               " images of 3x32x32 need ",
                               bytes_text(static_cast<uint64_t>(records * kPixels)),
                               ", on top of the ", pixels.size(), " bytes of images already read"));
  }
  std::vector<uint8_t> record(static_cast<size_t>(kRecord));
  for (int64_t r = 0; r < records; ++r) {
    in.read(reinterpret_cast<char*>(record.data()), kRecord);
    CONVNET_CHECK(in.gcount() == kRecord, path, ": read failed at record ", r);
    CONVNET_CHECK(record[0] < 10, path, ": record ", r, " has label ", int{record[0]},
                  " (CIFAR-10 labels are 0..9)");
    labels.push_back(record[0]);
    pixels.insert(pixels.end(), record.begin() + 1, record.end());
  }
}

}  // namespace

bool is_cifar10_folder(const std::string& dir) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::path(dir) / "data_batch_1.bin", ec) ||
         std::filesystem::exists(std::filesystem::path(dir) / "test_batch.bin", ec);
}

Dataset load_cifar10(const std::string& dir, const std::string& split) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_directory(dir, ec), dir, ": data directory not found (expected CIFAR-10's ",
                "binary batches data_batch_1.bin ... test_batch.bin)");
  CONVNET_CHECK(split == "train" || split == "test", "cifar10: split must be train or test, got '",
                split, "'");
  std::vector<uint8_t> pixels;
  std::vector<int32_t> labels;
  if (split == "train")
    for (int b = 1; b <= 5; ++b)
      append_batch((fs::path(dir) / ("data_batch_" + std::to_string(b) + ".bin")).string(), pixels,
                   labels);
  else
    append_batch((fs::path(dir) / "test_batch.bin").string(), pixels, labels);
  const auto n = static_cast<int64_t>(labels.size());
  Dataset data = Dataset::from_bytes(Shape{n, 3, 32, 32}, std::move(pixels), std::move(labels), 10);
  // batches.meta.txt: the ten class names, one per line.
  std::ifstream meta(fs::path(dir) / "batches.meta.txt");
  std::vector<std::string> names;
  for (std::string line; std::getline(meta, line);)
    if (!line.empty()) names.push_back(line);
  if (names.size() == 10) data.set_class_names(std::move(names));
  return data;
}

}  // namespace convnet
