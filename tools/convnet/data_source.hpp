// The datasets a --data folder holds, by what is in it: MNIST-format IDX files, CIFAR-10 binary
// batches, or train/ and test/ folders of class sub-folders of images. Shared by train and eval.
#pragma once

#include <string>

#include "args.hpp"
#include "convnet/data.hpp"

namespace convnet::cli {

enum class Split { Train, Test };

// --stream: image folders (or train.txt / test.txt lists) read as they are used, decoded on
// `workers` threads through these transforms (convnet/image_set.hpp).
struct StreamOptions {
  bool on = false;
  int workers = 2;
  ImageTransform train, eval;
};
// --stream, --workers, --train-transform and --eval-transform; a UsageError naming the flag.
StreamOptions stream_options(const ArgParser& args);

struct LoadedSplit {
  Dataset data;
  std::string format;  // "IDX", "CIFAR-10", "image folders"
};

// One split of a --data folder; images of an image folder are converted to image_shape (C x H x
// W). A folder of class sub-folders without train/ and test/ is itself the (only) set, and
// serves as either split. IDX sets carry no class names; a Fashion-MNIST folder (known by its
// name) gets that set's.
LoadedSplit load_split(const std::string& dir, Split split, const Shape& image_shape,
                       const StreamOptions& stream = {});

struct TrainTest {
  Dataset train, test;
  std::string format;
};
// Both splits, which must have the same classes.
TrainTest load_train_test(const std::string& dir, const Shape& image_shape,
                          const StreamOptions& stream = {});

// A seeded share of the training set held out for validation (split_validation); a streamed
// set's validation part is read through the evaluation transform.
TrainValidation split_for_validation(const Dataset& train, double fraction, uint64_t seed,
                                     const StreamOptions& stream);

}  // namespace convnet::cli
