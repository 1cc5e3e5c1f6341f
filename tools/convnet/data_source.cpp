// Loading a --data folder: which format it is, then the loaders of convnet/data.hpp.
#include "data_source.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <new>

#include "convnet/context.hpp"
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

// --stream: <dir>/<split>/ of class sub-folders, or <dir>/<split>.txt, a list of files.
LoadedSplit stream_split(const std::string& dir, Split split, const Shape& image_shape,
                         const StreamOptions& stream) {
  std::error_code ec;
  const bool train = split == Split::Train;
  const fs::path part = fs::path(dir) / (train ? "train" : "test");
  const fs::path list = fs::path(dir) / (train ? "train.txt" : "test.txt");
  const ImageTransform& transform = train ? stream.train : stream.eval;
  if (fs::is_directory(part, ec))
    return {Dataset::from_image_index(index_image_folder(part.string()), image_shape, transform,
                                      stream.workers),
            "image folders, streamed"};
  if (fs::is_regular_file(list, ec))
    return {Dataset::from_image_index(read_image_list(list.string()), image_shape, transform,
                                      stream.workers),
            "image lists, streamed"};
  throw Error(dir + ": --stream reads " + part.string() + "/ (class sub-folders of images) or " +
              list.string() + " ('<path> <label>' per line); neither is there");
}

// load_split, without turning std::bad_alloc into a message.
LoadedSplit load_split_of_kind(const std::string& dir, Split split, const Shape& image_shape,
                               const StreamOptions& stream) {
  std::error_code ec;
  const bool train = split == Split::Train;
  if (stream.on) return stream_split(dir, split, image_shape, stream);
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

StreamOptions stream_options(const ArgParser& args) {
  StreamOptions o;
  o.on = args.get_switch("stream");
  const int64_t workers = args.get_int("workers", 1);
  if (workers < 1 || workers > kMaxThreads)
    throw UsageError{"--workers " + std::to_string(workers) + ": expected 1 to " +
                     std::to_string(kMaxThreads) + " decoding threads"};
  o.workers = static_cast<int>(workers);
  for (auto [flag, transform] :
       {std::pair{"train-transform", &o.train}, {"eval-transform", &o.eval}}) {
    try {
      *transform = ImageTransform::parse(args.get(flag), std::string("--") + flag);
    } catch (const Error& e) {
      throw UsageError{e.what()};
    }
    if (!o.on && args.value_text(flag) != "resize")
      throw UsageError{std::string("--") + flag + " applies to images read with --stream"};
  }
  return o;
}

TrainValidation split_for_validation(const Dataset& train, double fraction, uint64_t seed,
                                     const StreamOptions& stream) {
  TrainValidation parts = split_validation(train, fraction, seed);
  if (parts.validation.streamed())
    parts.validation = parts.validation.with_image_transform(stream.eval);
  return parts;
}

LoadedSplit load_split(const std::string& dir, Split split, const Shape& image_shape,
                       const StreamOptions& stream) {
  // The loaders name the file and size of what does not fit; this catches what they do not.
  try {
    return load_split_of_kind(dir, split, image_shape, stream);
  } catch (const std::bad_alloc&) {
    throw Error(dir + ": out of memory loading data (the " +
                (split == Split::Train ? "training" : "test") + " set)");
  }
}

TrainTest load_train_test(const std::string& dir, const Shape& image_shape,
                          const StreamOptions& stream) {
  LoadedSplit train = load_split(dir, Split::Train, image_shape, stream);
  if (train.format == "image folder")
    throw Error(dir + ": one folder of class sub-folders is a single set; training needs train/ "
                      "and test/ folders, each with the same class sub-folders");
  LoadedSplit test = load_split(dir, Split::Test, image_shape, stream);
  if (train.data.class_names() != test.data.class_names())
    throw Error(dir + ": train/ and test/ must hold the same class sub-folders");
  if (train.data.target_names() != test.data.target_names())
    throw Error(dir + ": the training and test sets must have the same targets (" +
                std::to_string(train.data.target_size()) + " and " +
                std::to_string(test.data.target_size()) + " named columns)");
  return {std::move(train.data), std::move(test.data), train.format};
}

}  // namespace convnet::cli
