// A folder of labelled images: <dir>/<class>/<file>.png|jpg|jpeg|pgm|ppm|pnm|bmp. Classes are
// the sub-folders in sorted order (so a label means the same on every machine), files within a
// class sorted too; each image is converted to the requested channels and resized. Or a folder
// of images with real-valued targets listed in <dir>/targets.csv, in the file's order.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "convnet/data.hpp"
#include "convnet/image.hpp"
#include "data/loading.hpp"

namespace convnet {

bool is_image_file(const std::filesystem::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* known : {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp"})
    if (ext == known) return true;
  return false;
}

Dataset load_image_folder(const std::string& dir, const Shape& sample_shape) {
  std::error_code ec;
  CONVNET_CHECK(std::filesystem::is_directory(dir, ec), dir, ": image folder not found");
  CONVNET_CHECK(sample_shape.rank() == 3 && (sample_shape[0] == 1 || sample_shape[0] == 3) &&
                    sample_shape[1] > 0 && sample_shape[2] > 0,
                dir, ": images are loaded as 1 or 3 channels of positive size, not ",
                sample_shape.str());
  // Every class's files are listed first (index_image_folder), so the memory they need is known
  // (and refused with its size) before any image is decoded.
  ImageIndex index = index_image_folder(dir);
  const int64_t C = sample_shape[0], H = sample_shape[1], W = sample_shape[2];
  const size_t total = index.files.size();
  std::vector<uint8_t> pixels;
  const auto bytes = static_cast<uint64_t>(total) * static_cast<uint64_t>(C * H * W);
  try {
    pixels.reserve(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat(dir, ": out of memory loading data: its ", total,
                               total == 1 ? " image" : " images", " of ", sample_shape.str(),
                               " need ", bytes_text(bytes)));
  }
  for (const std::string& file : index.files) {
    const Image image = resize_image(read_image(file, C), H, W);
    pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
  }
  const auto n = static_cast<int64_t>(total);
  const auto class_count = static_cast<int64_t>(index.class_names.size());
  Dataset data = Dataset::from_bytes(Shape{n, C, H, W}, std::move(pixels), std::move(index.labels),
                                     class_count);
  data.set_class_names(std::move(index.class_names));
  return data;
}

namespace {

// The fields of one CSV line: separated by commas, a field in double quotes may hold commas
// and doubled quotes (""). Throws naming path:line for an unterminated quote.
std::vector<std::string> csv_fields(const std::string& line, const std::string& where) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  CONVNET_CHECK(!quoted, where, ": a quoted field is not closed");
  for (std::string& f : fields) {  // spaces around a field are not part of it
    const size_t first = f.find_first_not_of(" \t"), last = f.find_last_not_of(" \t");
    f = first == std::string::npos ? std::string() : f.substr(first, last - first + 1);
  }
  return fields;
}

}  // namespace

TargetsCsv parse_targets_csv(const std::string& text, const std::string& path) {
  TargetsCsv out;
  std::istringstream in(text);
  std::string line;
  int64_t number = 0;
  bool header = true;
  std::set<std::string> seen;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string where = path + ":" + std::to_string(number);
    if (line.find_first_not_of(" \t") == std::string::npos) continue;  // blank lines
    std::vector<std::string> fields = csv_fields(line, where);
    if (header) {
      CONVNET_CHECK(fields.size() >= 2, where,
                    ": the header needs a file column and at least one target column "
                    "(file,<name1>,...), got ", fields.size(), " column", fields.size() == 1 ? "" : "s");
      for (size_t k = 1; k < fields.size(); ++k) {
        CONVNET_CHECK(!fields[k].empty(), where, ": target column ", k + 1, " has no name");
        out.names.push_back(fields[k]);
      }
      header = false;
      continue;
    }
    CONVNET_CHECK(fields.size() == out.names.size() + 1, where, ": expected ",
                  out.names.size() + 1, " fields (a file and ", out.names.size(),
                  " target", out.names.size() == 1 ? "" : "s", "), got ", fields.size());
    CONVNET_CHECK(!fields[0].empty(), where, ": the file field is empty");
    CONVNET_CHECK(seen.insert(fields[0]).second, where, ": ", fields[0],
                  " is listed a second time");
    for (size_t k = 1; k < fields.size(); ++k) {
      const std::string& field = fields[k];
      char* end = nullptr;
      errno = 0;
      const float v = field.empty() ? NAN : std::strtof(field.c_str(), &end);
      CONVNET_CHECK(!field.empty() && end == field.c_str() + field.size() && errno == 0 &&
                        std::isfinite(v),
                    where, ": column ", k + 1, " (", out.names[k - 1], ") is '", field,
                    "', not a finite number");
      out.values.push_back(v);
    }
    out.files.push_back(std::move(fields[0]));
  }
  CONVNET_CHECK(!header, path, ": empty: expected a header row file,<name1>,... and one row per image");
  CONVNET_CHECK(!out.files.empty(), path, ": has a header but no rows of targets");
  return out;
}

Dataset load_image_targets(const std::string& dir, const Shape& sample_shape) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path csv = fs::path(dir) / "targets.csv";
  CONVNET_CHECK(fs::is_regular_file(csv, ec), csv.string(), ": not found (a folder of images with ",
                "targets needs targets.csv: file,<name1>,... then one row per image)");
  CONVNET_CHECK(sample_shape.rank() == 3 && (sample_shape[0] == 1 || sample_shape[0] == 3) &&
                    sample_shape[1] > 0 && sample_shape[2] > 0,
                dir, ": images are loaded as 1 or 3 channels of positive size, not ",
                sample_shape.str());
  std::ifstream file(csv, std::ios::binary);
  CONVNET_CHECK(file.good(), csv.string(), ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << file.rdbuf();
  TargetsCsv rows = parse_targets_csv(text.str(), csv.string());
  // Every image beside targets.csv must have its row: one left out is more likely a mistake
  // than a choice.
  std::set<fs::path> listed;
  for (size_t i = 0; i < rows.files.size(); ++i) {
    const fs::path relative(rows.files[i]);
    CONVNET_CHECK(relative.is_relative(), csv.string(), ": row ", i + 1, ": ", rows.files[i],
                  " is an absolute path; files are named relative to ", dir);
    const fs::path image = fs::path(dir) / relative;
    CONVNET_CHECK(fs::is_regular_file(image, ec), csv.string(), ": row ", i + 1, ": ",
                  image.string(), " is not a file");
    listed.insert(fs::weakly_canonical(image, ec));
  }
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && is_image_file(entry.path()))
      CONVNET_CHECK(listed.count(fs::weakly_canonical(entry.path(), ec)) == 1,
                    entry.path().string(), ": has no row in ", csv.string());
  const int64_t C = sample_shape[0], H = sample_shape[1], W = sample_shape[2];
  const auto n = static_cast<int64_t>(rows.files.size());
  const auto bytes = static_cast<uint64_t>(n) * static_cast<uint64_t>(C * H * W);
  std::vector<uint8_t> pixels;
  try {
    pixels.reserve(static_cast<size_t>(bytes));
  } catch (const std::bad_alloc&) {
    throw Error(detail::concat(dir, ": out of memory loading data: its ", n, " images of ",
                               sample_shape.str(), " need ", bytes_text(bytes)));
  }
  for (const std::string& name : rows.files) {
    const Image image = resize_image(read_image((fs::path(dir) / name).string(), C), H, W);
    pixels.insert(pixels.end(), image.pixels.begin(), image.pixels.end());
  }
  Dataset data = Dataset::from_bytes(Shape{n, C, H, W}, std::move(pixels),
                                     std::vector<int32_t>(static_cast<size_t>(n)), 0);
  data.set_targets(std::move(rows.values), std::move(rows.names));
  return data;
}

}  // namespace convnet
