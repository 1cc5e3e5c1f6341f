// Image sets read as they are used: only the list of files and labels is held in memory, and each
// sample is decoded, cropped and resized when a batch needs it (Dataset::from_image_index in
// convnet/data.hpp), so a set of any size trains in the memory of a few batches. The transforms
// follow torchvision's conventions (RandomResizedCrop and a flip for training; resize of the
// shorter side and a centre crop for evaluation), each random choice drawn from a stream keyed by
// the sample, so a batch is the same whoever decodes it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "convnet/rng.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

// Labelled image files: files[i] has label labels[i] in [0, class_names.size()).
struct ImageIndex {
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  std::vector<std::string> class_names;
};

// <dir>/<class>/<image files>: classes are the sub-folders in sorted order, files sorted within
// each (as load_image_folder reads them). Throws naming the folder for no class sub-folders or a
// class without images.
ImageIndex index_image_folder(const std::string& dir);

// A list file: one "<path> <label>" per line (the last space or tab separates them, so a path
// may hold spaces; a relative path is joined to `dir`, the list's folder); blank lines and lines
// starting with '#' are skipped. When every label is an integer, they are the classes 0 to the
// largest (below 100000), named by their numbers; otherwise labels are class names, numbered in
// sorted order. Throws naming path:line for a line without a label or an integer label past the
// limit, and naming path for a list without images.
ImageIndex parse_image_list(const std::string& text, const std::string& path,
                            const std::string& dir);
ImageIndex read_image_list(const std::string& path);

// How a file becomes a sample of the model's input size.
struct ImageTransform {
  enum class Crop {
    Resize,         // the whole image resized to the input size (what load_image_folder does)
    RandomResized,  // torchvision RandomResizedCrop(size, scale, ratio): training
    Center,         // torchvision Resize(resize) then CenterCrop(size): evaluation
  };
  Crop crop = Crop::Resize;
  double scale_min = 0.08, scale_max = 1.0;             // RandomResized: share of the image's area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // RandomResized: width / height
  int64_t resize = 0;  // Center: the shorter side is first resized to this (0: the crop's size)
  bool horizontal_flip = false;  // mirror with probability 1/2 (training)
  // "resize", "random-resized-crop[:SMIN,SMAX[:RMIN,RMAX]]", "center-crop[:RESIZE]", each
  // optionally followed by "+flip". Throws naming `flag` for anything else.
  static ImageTransform parse(const std::string& text, const std::string& flag);
  std::string str() const;  // the text parse() reads back
  bool random() const { return crop == Crop::RandomResized || horizontal_flip; }
};

// The region of a height x width image that becomes the sample (fractions of pixels allowed),
// and whether it is mirrored. RandomResized draws as torchvision's RandomResizedCrop.get_params
// does: up to 10 tries of an area share in [scale_min, scale_max] and a log-uniform aspect
// ratio, accepted when the crop fits, at a uniform position; else the largest centred crop
// whose aspect ratio is clamped to [ratio_min, ratio_max]. `rng` is used only when random().
struct CropBox {
  double x = 0, y = 0, width = 0, height = 0;
  bool flip = false;
};
CropBox crop_box(const ImageTransform& t, int64_t height, int64_t width, int64_t out_height,
                 int64_t out_width, Rng& rng);

// Reads `path` and makes it one sample of sample_shape (C x H x W bytes into out): the crop box
// drawn from rng, the JPEG decoded at the smallest scale that keeps the box at least H x W,
// resampled and mirrored. Throws convnet::Error naming the file for a file that cannot be read.
void load_image_sample(const std::string& path, const ImageTransform& t, const Shape& sample_shape,
                       Rng& rng, uint8_t* out);

}  // namespace convnet
