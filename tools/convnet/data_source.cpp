// Loading a --data folder: which format it is, then the loaders of convnet/data.hpp.
#include "data_source.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <new>

#include "convnet/error.hpp"

namespace convnet::cli {
namespace {

namespace fs = std::filesystem;

bool is_fashion_folder(const std::string& dir) {
  std::string folder = fs::absolute(fs::path(dir)).lexically_normal().string();
  std::transform(folder.begin(), folder.end(), folder.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return folder.find("fashion") != std::string::npos;
}

// load_split, without turning std::bad_alloc into a message.
LoadedSplit load_split_of_kind(const std::string& dir, Split split, const Shape& image_shape) {
  std::error_code ec;
  const bool train = split == Split::Train;
  if (is_cifar10_folder(dir)) return {load_cifar10(dir, train ? "train" : "test"), "CIFAR-10"};
  if (!is_mnist_folder(dir) && fs::is_directory(dir, ec)) {
    const fs::path part = fs::path(dir) / (train ? "train" : "test");
    const fs::path other = fs::path(dir) / (train ? "test" : "train");
    if (fs::is_directory(part, ec) && fs::is_directory(other, ec)) {
      if (fs::exists(part / "targets.csv", ec))
        return {load_image_targets(part.string(), image_shape), "images with targets.csv"};
      return {load_image_folder(part.string(), image_shape), "image folders"};
    }
    // A folder of images with targets.csv (and no train/ or test/) is one set.
    if (fs::exists(fs::path(dir) / "targets.csv", ec) && !fs::exists(part, ec) &&
        !fs::exists(other, ec))
      return {load_image_targets(dir, image_shape), "image folder"};
    // A folder of class sub-folders of images (and no IDX files) is one set.
    bool has_subfolders = false;
    for (const auto& entry : fs::directory_iterator(dir, ec))
      has_subfolders = has_subfolders || entry.is_directory(ec);
    if (has_subfolders && !fs::exists(part, ec) && !fs::exists(other, ec))
      return {load_image_folder(dir, image_shape), "image folder"};
  }
  // Otherwise IDX. Its loader names what is missing when the folder is something else: an IDX
  // file, or the test/ (or train/) folder when only one of an image-folder set is there.
  LoadedSplit out{load_mnist_split(dir, train ? "train" : "t10k"), "IDX"};
  if (is_fashion_folder(dir) && out.data.classes() == 10)
    out.data.set_class_names({"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                              "Shirt", "Sneaker", "Bag", "Ankle boot"});
  return out;
}

}  // namespace

LoadedSplit load_split(const std::string& dir, Split split, const Shape& image_shape) {
  // The loaders name the file and size of what does not fit; this catches what they do not.
  try {
    return load_split_of_kind(dir, split, image_shape);
  } catch (const std::bad_alloc&) {
    throw Error(dir + ": out of memory loading data (the " +
                (split == Split::Train ? "training" : "test") + " set)");
  }
}

TrainTest load_train_test(const std::string& dir, const Shape& image_shape) {
  LoadedSplit train = load_split(dir, Split::Train, image_shape);
  if (train.format == "image folder")
    throw Error(dir + ": one folder of class sub-folders is a single set; training needs train/ "
                      "and test/ folders, each with the same class sub-folders");
  LoadedSplit test = load_split(dir, Split::Test, image_shape);
  if (train.data.class_names() != test.data.class_names())
    throw Error(dir + ": train/ and test/ must hold the same class sub-folders");
  if (train.data.target_names() != test.data.target_names())
    throw Error(dir + ": the training and test sets must have the same targets (" +
                std::to_string(train.data.target_size()) + " and " +
                std::to_string(test.data.target_size()) + " named columns)");
  return {std::move(train.data), std::move(test.data), train.format};
}

}  // namespace convnet::cli
