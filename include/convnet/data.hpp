// Data: the IDX format of MNIST and Fashion-MNIST (plain or gzip), CIFAR-10's binary batches,
// folders of images, an in-memory labelled image set with normalisation, validation splits and
// training-time augmentation. Readers check magic numbers, sizes and labels before using a byte.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "convnet/image_set.hpp"
#include "convnet/rng.hpp"
#include "convnet/tensor.hpp"

namespace convnet {

namespace detail {
struct ImageStream;  // src/data/dataset.cpp: a streamed set's files, transform and decode threads
}

// A decoded IDX file: dims and the row-major values' bytes, of unsigned bytes (type code 0x08,
// images and labels) or of big-endian 32-bit floats (0x0D, regression targets).
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> values;
  uint8_t type = 0x08;
};

// Reads an IDX file; gzip-compressed files (.gz or not) are detected and inflated.
// Throws convnet::Error naming the file for: a missing, empty or unreadable file, a bad magic
// number, an unsupported type, a truncated body, bytes past the end of the data, or data that
// does not fit in memory (with its size).
IdxArray read_idx(const std::string& path);
// An IDX array's values as floats (bytes as 0..255); a float that is not finite is an error
// naming `path` and its index.
std::vector<float> idx_floats(const IdxArray& idx, const std::string& path);

// Labelled images, N x C x H x W. Samples are stored either as bytes (`pixels`, what IDX files
// hold: a quarter of the memory of floats, scaled by 1/255 as they are copied into a batch) or as
// floats (`images`, for data made in memory); exactly one of the two is non-empty.
// Labels are in [0, classes).
// A mean and a standard deviation per channel (or per regression output).
struct MeanStddev {
  std::vector<float> mean, stddev;
};

class Dataset {
 public:
  Dataset() = default;
  static Dataset from_bytes(const Shape& shape, std::vector<uint8_t> pixels,
                            std::vector<int32_t> labels, int64_t classes);
  static Dataset from_floats(Tensor<float> images, std::vector<int32_t> labels, int64_t classes);
  // A set read as it is used (convnet/image_set.hpp): only the index is held; gather() decodes
  // each sample it is asked for on `workers` threads of its own (at least 1), through
  // `transform` into sample_shape. Memory does not grow with the number of images.
  static Dataset from_image_index(ImageIndex index, const Shape& sample_shape,
                                  const ImageTransform& transform, int workers);
  bool streamed() const { return stream_ != nullptr; }
  // A streamed set's transform, and the same files through another (a training set's
  // evaluation view: a validation split, the images a report shows).
  const ImageTransform& image_transform() const;
  Dataset with_image_transform(const ImageTransform& transform) const;
  // A streamed set's files, in sample order.
  const std::vector<std::string>& files() const;

  int64_t size() const { return shape_[0]; }
  int64_t classes() const { return classes_; }
  // N x C x H x W of the whole set, and C x H x W of one sample.
  const Shape& shape() const { return shape_; }
  Shape sample_shape() const { return Shape{shape_[1], shape_[2], shape_[3]}; }
  const std::vector<int32_t>& labels() const { return labels_; }
  // Writes samples order[0..k) as floats into out (k x C x H x W) and their labels; each value
  // is normalised, (v - mean[c]) / stddev[c], when a normalisation is set. With `targets` (and
  // targets set), also their targets (k x target_size(), normalised when that is set).
  // A streamed set decodes them; its random transforms draw from Rng(draw).split(n) for sample
  // n, so a batch does not depend on how many threads decode it or which batch holds a sample
  // (fit() passes a draw per epoch). Throws naming the file for one that cannot be read.
  void gather(std::span<const int64_t> order, float* out, int32_t* labels, float* targets = nullptr,
              uint64_t draw = 0) const;

  // Regression: real-valued targets, target_size() per sample (row-major, size() x
  // target_size()), named (a CSV header's columns; "y" or "y1", "y2", ... otherwise). A set
  // with targets keeps labels too (0 where the source has none, with classes() 0).
  void set_targets(std::vector<float> values, std::vector<std::string> names);
  bool has_targets() const { return !target_names_.empty(); }
  int64_t target_size() const { return static_cast<int64_t>(target_names_.size()); }
  const std::vector<std::string>& target_names() const { return target_names_; }
  // Sample n's targets as stored (not normalised).
  std::span<const float> targets_of(int64_t n) const;
  // Per-output normalisation of the targets gather() writes, (t - mean[k]) / stddev[k]; what a
  // model trained on them predicts is mapped back by p·stddev[k] + mean[k].
  void set_target_normalization(std::vector<float> mean, std::vector<float> stddev);
  const std::vector<float>& target_mean() const { return target_mean_; }
  const std::vector<float>& target_stddev() const { return target_stddev_; }
  // Per-output mean and (population) standard deviation of the stored targets (1 where an
  // output is constant).
  MeanStddev target_stats() const;
  // Keeps only the first n samples (n <= size()).
  void truncate(int64_t n);
  // A new set of samples indices[0..k) (any order, repeats allowed), with this set's class
  // names and normalisation.
  Dataset subset(std::span<const int64_t> indices) const;

  // Class names, when the source has them (an image folder's sub-folders, CIFAR-10's labels);
  // empty otherwise.
  const std::vector<std::string>& class_names() const { return class_names_; }
  void set_class_names(std::vector<std::string> names);

  // Per-channel normalisation applied by gather(); one mean and one stddev (> 0) per channel.
  void set_normalization(std::vector<float> mean, std::vector<float> stddev);
  const std::vector<float>& mean() const { return mean_; }
  const std::vector<float>& stddev() const { return stddev_; }
  // The value a zero pixel of channel c has after normalisation (what padding is filled with).
  float zero_value(int64_t c) const;
  // Per-channel mean and (population) standard deviation of the samples as gather() would
  // produce them without normalisation: what to pass to set_normalization. A streamed set's
  // come from at most 1024 of its samples, evenly spaced, without random transforms.
  using ChannelStats = MeanStddev;
  ChannelStats channel_stats() const;

 private:
  Shape shape_{0, 0, 0, 0};
  std::vector<uint8_t> pixels_;
  Tensor<float> images_;
  std::vector<int32_t> labels_;
  int64_t classes_ = 0;
  std::vector<std::string> class_names_;
  std::vector<float> mean_, stddev_;
  std::vector<float> targets_;
  std::vector<std::string> target_names_;
  std::vector<float> target_mean_, target_stddev_;
  std::shared_ptr<detail::ImageStream> stream_;
};

// Training-time augmentation, applied to a gathered batch, seeded through the Rng passed in.
struct Augmentation {
  // Random crop with padding: each image is padded by this many pixels of zero (before
  // normalisation) on every side and a window of its own size is cut at a random offset.
  int64_t crop_padding = 0;
  bool horizontal_flip = false;  // mirror each image left-right with probability 1/2
  bool active() const { return crop_padding > 0 || horizontal_flip; }
};

// Applies `augmentation` to count images of `data`'s sample shape at batch (count x C x H x W),
// in place; scratch holds one image (it is resized once and then reused).
void augment_batch(const Augmentation& augmentation, const Dataset& data, Rng& rng, float* batch,
                   int64_t count, std::vector<float>& scratch);

// Splits off a held-out validation set: a seeded random `fraction` of the samples (at least one
// of each, when fraction > 0), the rest for training, both keeping their original order.
struct TrainValidation {
  Dataset train, validation;
};
TrainValidation split_validation(const Dataset& data, double fraction, uint64_t seed);

// Pairs an IDX image file (N, H, W) with an IDX label file (N); pixels / 255.
// Throws if the counts differ or a label is >= classes.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path,
                         int64_t classes = 10);

// Loads "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels, where split is "train"
// or "t10k" (the MNIST file names, shared by Fashion-MNIST). Regression targets, when the folder
// has "<split>-targets-idx2-float[.gz]" (N x K floats, IDX type 0x0D) or "-idx1-float" (N), come
// with them, and the labels file is then optional. A file present both plain and
// gzipped must hold the same data in both (the plain one is read); copies that differ are an
// error naming both. Throws naming the missing file, or, for a folder with only one of train/ and
// test/, the folder an image-folder dataset lacks.
Dataset load_mnist_split(const std::string& dir, const std::string& split);

// CIFAR-10's binary version: "<dir>/data_batch_{1..5}.bin" (split "train") or
// "<dir>/test_batch.bin" (split "test"), each record a label byte then 3 x 32 x 32 pixel bytes;
// class names from batches.meta.txt when present. Throws naming the file for a missing file, a
// size that is not a whole number of records, a label above 9, or records that do not fit in
// memory (with the bytes they need).
Dataset load_cifar10(const std::string& dir, const std::string& split);

// A folder of images, one sub-folder per class (classes are the sub-folder names, sorted), read
// as PNG, JPEG, PGM/PPM or BMP, converted to sample_shape's channels and resized to its height
// and width. Files with other extensions are skipped; a file that does not decode is an error
// naming it. Throws if the folder has no class sub-folders, a class has no images, or the images
// do not fit in memory (with the bytes they need).
Dataset load_image_folder(const std::string& dir, const Shape& sample_shape);

// A folder of images with real-valued targets: "<dir>/targets.csv", a header row
// "file,<name1>,...,<nameK>" then one row per image, its path relative to dir and K numbers.
// Images are converted and resized as load_image_folder does. Throws naming the file and line
// for a row with another count of fields, a value that is not a finite number, a file listed
// twice or missing, and naming the image for an image file in dir that has no row.
Dataset load_image_targets(const std::string& dir, const Shape& sample_shape);
// The rows of a targets.csv (exposed for the fuzzer): names from the header, then per row the
// file and its values. `path` names the file in errors.
struct TargetsCsv {
  std::vector<std::string> names, files;
  std::vector<float> values;  // files.size() x names.size()
};
TargetsCsv parse_targets_csv(const std::string& text, const std::string& path);

// True when `dir` looks like the given layout (used to detect a --data folder's format).
bool is_mnist_folder(const std::string& dir);
bool is_cifar10_folder(const std::string& dir);

}  // namespace convnet
