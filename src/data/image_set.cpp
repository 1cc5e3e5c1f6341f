// Image sets read as they are used: the index (a class-folder tree or a list file), torchvision's
// crop conventions, and one file made into one sample.
#include "convnet/image_set.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/image.hpp"
#include "data/loading.hpp"

namespace convnet {
namespace {

// Integer labels name classes 0 .. the largest; a typo such as 1000000000 must not make a
// billion classes.
constexpr int64_t kMaxListClasses = 100000;

// "0.08,1" -> {0.08, 1}; both finite, 0 < lo <= hi.
std::pair<double, double> parse_range(const std::string& text, const std::string& flag,
                                      const char* what) {
  const size_t comma = text.find(',');
  char* end = nullptr;
  const std::string lo_text = text.substr(0, comma);
  const double lo = std::strtod(lo_text.c_str(), &end);
  const bool lo_ok = comma != std::string::npos && !lo_text.empty() && *end == '\0';
  const std::string hi_text = comma == std::string::npos ? "" : text.substr(comma + 1);
  const double hi = std::strtod(hi_text.c_str(), &end);
  const bool hi_ok = !hi_text.empty() && *end == '\0';
  CONVNET_CHECK(lo_ok && hi_ok && std::isfinite(lo) && std::isfinite(hi) && lo > 0 && lo <= hi,
                flag, ": expected the ", what, " as LO,HI with 0 < LO <= HI, got '", text, "'");
  return {lo, hi};
}

}  // namespace

ImageIndex index_image_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  CONVNET_CHECK(fs::is_directory(dir, ec), dir, ": image folder not found");
  std::vector<fs::path> classes;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_directory()) classes.push_back(entry.path());
  CONVNET_CHECK(!ec, dir, ": cannot list: ", ec.message());
  CONVNET_CHECK(!classes.empty(), dir, ": no class sub-folders (expected ", dir,
                "/<class>/<image files>)");
  std::sort(classes.begin(), classes.end());
  ImageIndex index;
  for (size_t label = 0; label < classes.size(); ++label) {
    std::vector<std::string> files;
    for (const auto& entry : fs::directory_iterator(classes[label], ec))
      if (entry.is_regular_file() && is_image_file(entry.path()))
        files.push_back(entry.path().string());
    CONVNET_CHECK(!ec, classes[label].string(), ": cannot list: ", ec.message());
    CONVNET_CHECK(!files.empty(), classes[label].string(),
                  ": class folder has no images (.png, .jpg, .jpeg, .pgm, .ppm, .pnm, .bmp)");
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      index.files.push_back(std::move(f));
      index.labels.push_back(static_cast<int32_t>(label));
    }
    index.class_names.push_back(classes[label].filename().string());
  }
  return index;
}

ImageIndex parse_image_list(const std::string& text, const std::string& path,
                            const std::string& dir) {
  std::istringstream in(text);
  std::string line;
  int64_t number = 0;
  std::vector<std::string> files, label_texts;
  std::vector<int64_t> lines;
  bool all_numeric = true;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    const size_t last = line.find_last_not_of(" \t");
    line = line.substr(first, last - first + 1);
    const size_t split = line.find_last_of(" \t");
    CONVNET_CHECK(split != std::string::npos, path, ":", number,
                  ": expected '<image path> <label>', got '", line, "'");
    std::string file = line.substr(0, split);
    file.erase(file.find_last_not_of(" \t") + 1);
    const std::string label = line.substr(split + 1);
    const bool numeric =
        label.find_first_not_of("0123456789") == std::string::npos && label.size() <= 9;
    all_numeric = all_numeric && numeric;
    std::filesystem::path p(file);
    files.push_back(p.is_absolute() || dir.empty() ? file
                                                   : (std::filesystem::path(dir) / p).string());
    label_texts.push_back(label);
    lines.push_back(number);
  }
  CONVNET_CHECK(!files.empty(), path, ": the list has no images ('<image path> <label>' per line)");
  ImageIndex index;
  index.files = std::move(files);
  if (all_numeric) {
    int64_t classes = 0;
    for (size_t i = 0; i < label_texts.size(); ++i) {
      const int64_t label = std::stoll(label_texts[i]);
      CONVNET_CHECK(label < kMaxListClasses, path, ":", lines[i], ": label ", label,
                    " is past the most classes a list may have (", kMaxListClasses, ")");
      classes = std::max<int64_t>(classes, label + 1);
    }
    for (const std::string& l : label_texts)
      index.labels.push_back(static_cast<int32_t>(std::stoll(l)));
    for (int64_t c = 0; c < classes; ++c) index.class_names.push_back(std::to_string(c));
    return index;
  }
  // Class names: numbered in sorted order. A label that looks like a number among names is
  // most likely a mistake; it is taken as a name, like the others.
  std::map<std::string, int32_t> names;
  for (const std::string& l : label_texts) names.emplace(l, 0);
  int32_t next = 0;
  for (auto& [name, id] : names) {
    id = next++;
    index.class_names.push_back(name);
  }
  for (const std::string& l : label_texts) index.labels.push_back(names.at(l));
  return index;
}

ImageIndex read_image_list(const std::string& path) {
  std::error_code ec;
  CONVNET_CHECK(std::filesystem::is_regular_file(path, ec), path, ": image list not found");
  std::ifstream in(path, std::ios::binary);
  CONVNET_CHECK(in.good(), path, ": cannot open: ", std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  CONVNET_CHECK(!in.bad(), path, ": cannot read");
  return parse_image_list(text.str(), path, std::filesystem::path(path).parent_path().string());
}

ImageTransform ImageTransform::parse(const std::string& text, const std::string& flag) {
  ImageTransform t;
  std::string rest = text;
  const std::string flip = "+flip";
  if (rest.size() > flip.size() &&
      rest.compare(rest.size() - flip.size(), flip.size(), flip) == 0) {
    t.horizontal_flip = true;
    rest.resize(rest.size() - flip.size());
  }
  const size_t colon = rest.find(':');
  const std::string name = rest.substr(0, colon);
  const std::string args = colon == std::string::npos ? "" : rest.substr(colon + 1);
  if (name == "resize" && args.empty()) {
    t.crop = Crop::Resize;
  } else if (name == "random-resized-crop") {
    t.crop = Crop::RandomResized;
    if (!args.empty()) {
      const size_t second = args.find(':');
      std::tie(t.scale_min, t.scale_max) = parse_range(args.substr(0, second), flag, "area scale");
      CONVNET_CHECK(t.scale_max <= 1, flag,
                    ": the area scale is a share of the image, at most 1, got ", t.scale_max);
      if (second != std::string::npos)
        std::tie(t.ratio_min, t.ratio_max) =
            parse_range(args.substr(second + 1), flag, "aspect ratio");
    }
  } else if (name == "center-crop") {
    t.crop = Crop::Center;
    if (!args.empty()) {
      char* end = nullptr;
      const long long v = std::strtoll(args.c_str(), &end, 10);
      CONVNET_CHECK(*end == '\0' && v > 0 && v <= 32768, flag,
                    ": center-crop:RESIZE takes a side of 1 to 32768 pixels, got '", args, "'");
      t.resize = v;
    }
  } else {
    throw Error(
        detail::concat(flag, ": expected resize, random-resized-crop[:SMIN,SMAX[:RMIN,RMAX]] or ",
                       "center-crop[:RESIZE], optionally followed by +flip; got '", text, "'"));
  }
  return t;
}

std::string ImageTransform::str() const {
  std::ostringstream out;
  out.precision(17);
  switch (crop) {
    case Crop::Resize:
      out << "resize";
      break;
    case Crop::RandomResized:
      out << "random-resized-crop:" << scale_min << "," << scale_max << ":" << ratio_min << ","
          << ratio_max;
      break;
    case Crop::Center:
      out << "center-crop";
      if (resize > 0) out << ":" << resize;
      break;
  }
  if (horizontal_flip) out << "+flip";
  return out.str();
}

CropBox crop_box(const ImageTransform& t, int64_t height, int64_t width, int64_t out_height,
                 int64_t out_width, Rng& rng) {
  CropBox box{0, 0, static_cast<double>(width), static_cast<double>(height), false};
  const double H = static_cast<double>(height), W = static_cast<double>(width);
  if (t.crop == ImageTransform::Crop::RandomResized) {
    // torchvision's RandomResizedCrop.get_params; Python's round() is to nearest, ties to even,
    // as std::nearbyint in the default rounding mode.
    const double area = H * W;
    const double log_lo = std::log(t.ratio_min), log_hi = std::log(t.ratio_max);
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double target = area * rng.uniform(t.scale_min, t.scale_max);
      const double aspect = std::exp(rng.uniform(log_lo, log_hi));
      const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * aspect)));
      const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / aspect)));
      if (0 < w && w <= width && 0 < h && h <= height) {
        box.y = static_cast<double>(rng.below(static_cast<uint64_t>(height - h + 1)));
        box.x = static_cast<double>(rng.below(static_cast<uint64_t>(width - w + 1)));
        box.width = static_cast<double>(w);
        box.height = static_cast<double>(h);
        found = true;
      }
    }
    if (!found) {  // the largest centred crop with the ratio clamped
      int64_t w = width, h = height;
      const double in_ratio = W / H;
      if (in_ratio < t.ratio_min)
        h = static_cast<int64_t>(std::nearbyint(W / t.ratio_min));
      else if (in_ratio > t.ratio_max)
        w = static_cast<int64_t>(std::nearbyint(H * t.ratio_max));
      w = std::clamp<int64_t>(w, 1, width);
      h = std::clamp<int64_t>(h, 1, height);
      box = {static_cast<double>((width - w) / 2), static_cast<double>((height - h) / 2),
             static_cast<double>(w), static_cast<double>(h), false};
    }
  } else if (t.crop == ImageTransform::Crop::Center) {
    // torchvision Resize(resize): the shorter side to `resize`, the other int(resize * long /
    // short); then CenterCrop(out): top = int(round((rh - out_h) / 2)). Mapped back onto the
    // original pixels, so one resampling does both.
    const int64_t side = t.resize > 0 ? t.resize : std::max(out_height, out_width);
    int64_t rh = side, rw = side;
    if (width < height)
      rh = static_cast<int64_t>(static_cast<double>(side) * H / W);
    else if (height < width)
      rw = static_cast<int64_t>(static_cast<double>(side) * W / H);
    CONVNET_CHECK(rh >= out_height && rw >= out_width, "center-crop: resizing the ", width, "x",
                  height, " image's shorter side to ", side, " gives ", rw, "x", rh,
                  ", smaller than the ", out_width, "x", out_height, " crop");
    const double top = std::nearbyint(static_cast<double>(rh - out_height) / 2.0);
    const double left = std::nearbyint(static_cast<double>(rw - out_width) / 2.0);
    const double sy = H / static_cast<double>(rh), sx = W / static_cast<double>(rw);
    box = {left * sx, top * sy, static_cast<double>(out_width) * sx,
           static_cast<double>(out_height) * sy, false};
  }
  if (t.horizontal_flip) box.flip = rng.uniform() < 0.5;
  return box;
}

void load_image_sample(const std::string& path, const ImageTransform& t, const Shape& sample_shape,
                       Rng& rng, uint8_t* out) {
  const int64_t C = sample_shape[0], H = sample_shape[1], W = sample_shape[2];
  CropBox box;
  int64_t declared_h = 0, declared_w = 0;
  // The box is drawn from the size the header declares, before decoding, so that a JPEG is
  // decoded only as large as the box needs: the largest reduction keeping it at least H x W.
  const PixelRows image = read_image_rows(path, C, int64_t{1} << 26, [&](int64_t h, int64_t w) {
    declared_h = h;
    declared_w = w;
    box = crop_box(t, h, w, H, W, rng);
    int factor = 8;
    while (factor > 1 && (box.width / factor < static_cast<double>(W) ||
                          box.height / factor < static_cast<double>(H)))
      factor /= 2;
    return factor;
  });
  if (declared_h == 0) {  // not a JPEG: decoded whole
    declared_h = image.height;
    declared_w = image.width;
    box = crop_box(t, image.height, image.width, H, W, rng);
  }
  // The box on the decoded pixels (a JPEG decoded smaller scales it), to whole pixels: at
  // least one, inside the image.
  const double sy = static_cast<double>(image.height) / static_cast<double>(declared_h);
  const double sx = static_cast<double>(image.width) / static_cast<double>(declared_w);
  const auto edge = [](double v, int64_t lo, int64_t hi) {
    return std::clamp<int64_t>(static_cast<int64_t>(std::floor(v + 0.5)), lo, hi);
  };
  const int64_t x0 = edge(box.x * sx, 0, image.width - 1);
  const int64_t y0 = edge(box.y * sy, 0, image.height - 1);
  const int64_t x1 = edge((box.x + box.width) * sx, x0 + 1, image.width);
  const int64_t y1 = edge((box.y + box.height) * sy, y0 + 1, image.height);
  if (t.crop == ImageTransform::Crop::Resize)  // load_image_folder's bytes, decoded whole
    resize_rows(image, H, W, out);
  else
    resize_region(image, x0, y0, x1 - x0, y1 - y0, H, W, out);
  if (box.flip)
    for (int64_t row = 0; row < C * H; ++row) std::reverse(out + row * W, out + (row + 1) * W);
}

}  // namespace convnet
