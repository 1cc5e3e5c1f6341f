// Checkpoints: a save/load round trip continues training bit for bit (optimizer state, BatchNorm
// statistics, Dropout's random stream); tensor names follow PyTorch's modules; writes are atomic;
// the loader rejects malformed and corrupted files (every header bit flipped, data bits, NaN and
// Inf, unknown keys) with a message naming the file and the fault; and a file in the format
// before checksums still loads, with a note.
#include <sys/resource.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

class Checkpoints : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("convnet_ckpt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A chain with every kind of state: parameters, BatchNorm buffers, a Dropout stream.
const char* kNet = R"(model sequential
layer conv2d out_channels=4 kernel=3 pad=1
layer batchnorm2d
layer relu
layer dropout p=0.3
layer flatten
layer linear out_features=5
)";

struct Batch {
  Tensor<float> x;
  std::vector<int32_t> labels;
};
Batch batch(uint64_t seed) {
  Rng rng(seed);
  Batch b{testing::random_normal<float>(Shape{6, 1, 6, 6}, rng), {}};
  for (int i = 0; i < 6; ++i) b.labels.push_back(static_cast<int32_t>(rng.below(5)));
  return b;
}

template <class T>
bool same_bytes(const Tensor<T>& a, const Tensor<T>& b) {
  return a.shape() == b.shape() &&
         std::memcmp(a.data(), b.data(), sizeof(T) * static_cast<size_t>(a.numel())) == 0;
}

TEST_F(Checkpoints, ResumeContinuesBitForBit) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(kNet);
  model->build(Shape{6, 1, 6, 6}, 3);
  Adam<float> adam;
  SoftmaxCrossEntropy<float> loss;
  for (uint64_t s = 0; s < 3; ++s) {
    const Batch b = batch(s);
    model->train_step(b.x, {.labels = b.labels}, loss, adam);
  }
  InputInfo regression{.class_names = {}, .mean = {}, .stddev = {}, .target = "values"};
  regression.target_names = {"angle", "scale, x"};
  regression.target_mean = {12.25f, -0.1f};
  regression.target_stddev = {30.0f, 0.333333343f};
  TrainingState state;
  state.input = regression;
  save_checkpoint<float>(path("r.safetensors"), *model, nullptr, state);
  const InputInfo back = load_checkpoint<float>(path("r.safetensors")).state.input;
  EXPECT_EQ(back.target, "values");
  EXPECT_EQ(back.target_names, regression.target_names);
  EXPECT_EQ(back.target_mean, regression.target_mean);  // exactly
  EXPECT_EQ(back.target_stddev, regression.target_stddev);
  const InputInfo input{{"zero", "one, with a comma", "two", "3", "T-shirt/top"}, {0.25f}, {0.3f}};
  save_checkpoint(path("a.safetensors"), *model, &adam,
                  {.epoch = 1, .step = 4, .seed = 3, .extra = {{"k", "v"}}, .input = input});
  EXPECT_FALSE(fs::exists(path("a.safetensors.tmp")));

  Checkpoint<float> c = load_checkpoint<float>(path("a.safetensors"));
  EXPECT_EQ(c.state.epoch, 1);
  EXPECT_EQ(c.state.step, 4);
  EXPECT_EQ(c.state.seed, 3u);
  EXPECT_EQ(c.state.extra.at("k"), "v");
  EXPECT_EQ(c.state.input.class_names, input.class_names);
  EXPECT_EQ(c.state.input.mean, input.mean);  // exactly: %.9g round-trips a float
  EXPECT_EQ(c.state.input.stddev, input.stddev);
  EXPECT_EQ(c.state.input.target, "");  // a classifier's checkpoint says nothing of a target
  EXPECT_EQ(c.optimizer, "adam");
  EXPECT_EQ(c.optimizer_steps, 3);
  EXPECT_EQ(c.model->spec(), model->spec());
  Adam<float> adam2;
  restore_optimizer(c, adam2);
  EXPECT_EQ(adam2.steps(), 3);
  for (size_t i = 0; i < model->params().size(); ++i)
    EXPECT_TRUE(same_bytes(*model->params()[i].value, *c.model->params()[i].value));
  for (size_t i = 0; i < model->buffers().size(); ++i)
    EXPECT_TRUE(same_bytes(*model->buffers()[i].value, *c.model->buffers()[i].value));
  // Both continue: same masks, same moments, same weights.
  for (uint64_t s = 3; s < 6; ++s) {
    const Batch b = batch(s);
    const StepResult r1 = model->train_step(b.x, {.labels = b.labels}, loss, adam);
    const StepResult r2 = c.model->train_step(b.x, {.labels = b.labels}, loss, adam2);
    EXPECT_EQ(r1.loss, r2.loss) << "step " << s;
  }
  for (size_t i = 0; i < model->params().size(); ++i)
    EXPECT_TRUE(same_bytes(*model->params()[i].value, *c.model->params()[i].value))
        << model->params()[i].name;
}

TEST_F(Checkpoints, NamesFollowPyTorchModules) {
  std::unique_ptr<Model<float>> seq = parse_model_spec<float>(kNet);
  seq->build(Shape{2, 1, 6, 6}, 1);
  Sgd<float> sgd({.lr = 0.1, .momentum = 0.9});
  SoftmaxCrossEntropy<float> loss;
  const Batch b = batch(1);
  seq->train_step(b.x, {.labels = b.labels}, loss, sgd);
  save_checkpoint(path("s.safetensors"), *seq, &sgd, {});
  const SafeTensors f = read_safetensors(path("s.safetensors"));
  std::vector<std::string> names;
  for (const SafeTensor& t : f.tensors) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias",
                       "1.running_mean", "1.running_var", "optimizer.0.weight.momentum_buffer",
                       "optimizer.0.bias.momentum_buffer", "optimizer.1.weight.momentum_buffer",
                       "optimizer.1.bias.momentum_buffer", "optimizer.5.weight.momentum_buffer",
                       "optimizer.5.bias.momentum_buffer"}));
  EXPECT_EQ(f.find("0.weight")->shape, (std::vector<int64_t>{4, 1, 3, 3}));
  EXPECT_EQ(f.metadata.at("spec"), seq->spec());
  EXPECT_EQ(f.metadata.at("optimizer"), "sgd");
  EXPECT_EQ(f.metadata.at("optimizer.steps"), "1");
  EXPECT_EQ(f.metadata.at("input_shape"), "2x1x6x6");
  EXPECT_TRUE(f.metadata.count("rng.3")) << "the Dropout layer's stream";

  std::unique_ptr<Model<float>> graph = make_model<float>("resnet-small");
  graph->build(Shape{1, 1, 8, 8}, 1);
  save_checkpoint<float>(path("g.safetensors"), *graph, nullptr, {});
  const SafeTensors g = read_safetensors(path("g.safetensors"));
  EXPECT_NE(g.find("stage2.0.shortcut.conv.weight"), nullptr);
  EXPECT_NE(g.find("stage1.0.bn1.running_var"), nullptr);
  EXPECT_FALSE(g.metadata.count("optimizer"));
  // The data starts 8-byte aligned, as the reference writer pads it.
  EXPECT_EQ(read_bytes(path("g.safetensors")).size() % 8, 0u);
}

TEST_F(Checkpoints, OptimizerMustMatch) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(kNet);
  model->build(Shape{6, 1, 6, 6}, 1);
  Adam<float> adam;
  SoftmaxCrossEntropy<float> loss;
  const Batch b = batch(1);
  model->train_step(b.x, {.labels = b.labels}, loss, adam);
  const std::string p = path("a.safetensors");
  save_checkpoint(p, *model, &adam, {});
  const Checkpoint<float> c = load_checkpoint<float>(p);
  Sgd<float> sgd({.momentum = 0.9});
  try {
    restore_optimizer(c, sgd);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              p + ": the checkpoint holds adam state, which cannot continue as sgd (resume with "
                  "the same optimizer)");
  }
  // A float checkpoint is not a double model.
  try {
    load_checkpoint<double>(p);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), p + ": checkpoint holds F32 tensors, the model is F64");
  }
}

TEST_F(Checkpoints, FailedWriteLeavesThePreviousFile) {
  const std::string p = path("c.safetensors");
  SafeTensors small;
  small.tensors.push_back({"w", "F32", {2}, std::string(8, '\1')});
  write_safetensors(p, small);
  const std::string before = read_bytes(p);
  // A file-size limit makes the write fail halfway, as a full disk would.
  SafeTensors big;
  big.tensors.push_back({"w", "F32", {100000}, std::string(400000, '\2')});
  struct rlimit old {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limit = old;
  limit.rlim_cur = 100000;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
  std::string message;
  try {
    write_safetensors(p, big);
  } catch (const Error& e) {
    message = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_NE(message.find(p + ": cannot write byte "), std::string::npos) << message;
  EXPECT_NE(message.find("File too large (" + p + " is left as it was)"), std::string::npos)
      << message;
  EXPECT_EQ(read_bytes(p), before);
  // A target that is a folder is refused before any temporary is made.
  fs::create_directory(path("folder"));
  EXPECT_THROW(write_safetensors(path("folder"), small), Error);
  EXPECT_TRUE(fs::is_directory(path("folder")));
  // Nothing is left beside them: c.safetensors and the folder only.
  EXPECT_EQ(std::distance(fs::directory_iterator(path("")), fs::directory_iterator()), 2);
}

// --- malformed files -----------------------------------------------------------------------
// 8-byte little-endian length, then the header, then the data.
std::string raw(const std::string& header, const std::string& data, int64_t length = -1) {
  const uint64_t n = length < 0 ? header.size() : static_cast<uint64_t>(length);
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

TEST_F(Checkpoints, MalformedFilesAreRejectedWithTheFault) {
  const std::string p = path("bad.safetensors");
  const std::string f8(8, '\0');
  struct Case {
    const char* what;
    std::string bytes;
    std::string message;  // after "PATH: "
  };
  const Case cases[] = {
      {"empty", "",
       "truncated: 0 bytes, too short for the 8-byte header length of a "
       "safetensors file"},
      {"length past the end", raw("{}", "", 1000),
       "header length 1000 goes past the end of the file (10 bytes): truncated, or not a "
       "safetensors file"},
      {"bad json", raw("{\"a\": {\"dtype\": \"F32\",}}", ""),
       "bad safetensors header: at header byte 22: expected a string key, got '}'"},
      {"not an object", raw("[1]", ""), "bad safetensors header: expected an object, got an array"},
      {"trailing garbage", raw("{} x", ""),
       "bad safetensors header: at header byte 3: expected the end of the header after the "
       "top-level object, got 'x'"},
      {"duplicate key",
       raw(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]},"a":{}})", f8.substr(0, 4)),
       "bad safetensors header: at header byte 53: duplicate key \"a\", got '\"'"},
      {"float in header", raw(R"({"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", ""),
       "bad safetensors header: at header byte 30: expected an integer (a safetensors header "
       "holds no fractions), got '.'"},
      {"control character", raw("{\"a\x01\":1}", ""),
       "bad safetensors header: at header byte 3: expected no control character in a string, "
       "got byte 0x1"},
      {"unsupported dtype",
       raw(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", f8.substr(0, 4)),
       "bad safetensors header: tensor 'a': unsupported dtype 'BF16' (convnet reads F32 and "
       "F64)"},
      {"missing field", raw(R"({"a":{"dtype":"F32","shape":[2]}})", f8),
       "bad safetensors header: tensor 'a': missing field 'data_offsets'"},
      {"unknown field", raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}})", f8),
       "bad safetensors header: tensor 'a': unknown field 'x' (expected dtype, shape and "
       "data_offsets)"},
      {"negative dimension", raw(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", f8),
       "bad safetensors header: tensor 'a': shape must be an array of non-negative integers"},
      {"offsets do not match the shape",
       raw(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", f8),
       "bad safetensors header: tensor 'a': data_offsets [0, 8] hold 8 bytes, but shape [3] of "
       "F32 needs 12"},
      {"reversed offsets", raw(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", f8),
       "bad safetensors header: tensor 'a': data_offsets must be [begin, end] with 0 <= begin <= "
       "end"},
      {"overlapping offsets",
       raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           f8 + f8.substr(0, 4)),
       "bad safetensors header: tensors 'a' [0, 8) and 'b' [4, 12) overlap"},
      {"a hole", raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", f8),
       "bad safetensors header: data bytes [0, 4) belong to no tensor"},
      {"truncated data", raw(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})", f8),
       "truncated: the header describes 16 bytes of tensor data after byte 63, the file holds 8"},
      {"trailing data", raw(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", f8 + "xy"),
       "2 bytes after the last tensor: the file is longer than its header describes"},
      {"metadata not strings", raw(R"({"__metadata__":{"epoch":3}})", ""),
       "bad safetensors header: __metadata__ value of 'epoch' must be a string, got an integer"},
      {"not a checkpoint", raw(R"({"__metadata__":{"epoch":"3"}})", ""),
       "not a convnet checkpoint (its metadata has no \"format\": \"convnet.checkpoint/2\")"},
      {"another format", raw(R"({"__metadata__":{"format":"convnet.checkpoint/3"}})", ""),
       "checkpoint format 'convnet.checkpoint/3', this build reads 'convnet.checkpoint/2' and "
       "'convnet.checkpoint/1'"},
  };
  for (const Case& c : cases) {
    write_bytes(p, c.bytes);
    std::string message = "(no error)";
    try {
      load_checkpoint<float>(p);
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_EQ(message, p + ": " + c.message) << c.what;
  }
}

// A real checkpoint, edited: the loader checks it against what its spec builds.
TEST_F(Checkpoints, TensorsMustMatchTheSpec) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(kNet);
  model->build(Shape{2, 1, 6, 6}, 1);
  const std::string good = path("good.safetensors"), p = path("bad.safetensors");
  save_checkpoint<float>(good, *model, nullptr, {});
  auto expect_error = [&](SafeTensors f, const std::string& message) {
    write_bytes(p, encode_checkpoint(f));  // fresh checksums: the edit is what is tested
    std::string got = "(no error)";
    try {
      load_checkpoint<float>(p);
    } catch (const Error& e) {
      got = e.what();
    }
    EXPECT_EQ(got, p + message);
  };
  const SafeTensors f = read_safetensors(good);
  {
    SafeTensors g = f;
    g.tensors.erase(g.tensors.begin() + 1);
    expect_error(g, ": missing tensor '0.bias' (a parameter of the spec)");
  }
  {
    SafeTensors g = f;
    g.tensors[0].shape = {4, 1, 9};
    expect_error(g, ": tensor '0.weight' has shape [4, 1, 9] but the model needs [4, 1, 3, 3]");
  }
  {
    SafeTensors g = f;
    g.tensors.push_back({"9.weight", "F32", {1}, std::string(4, '\0')});
    expect_error(g,
                 ": unexpected tensor '9.weight' (the model's spec has no parameter or buffer "
                 "of that name)");
  }
  {
    SafeTensors g = f;
    g.metadata.erase("rng.3");
    expect_error(g, ": checkpoint metadata lacks \"rng.3\" (layer 'layer3' draws random numbers)");
  }
  {
    SafeTensors g = f;
    g.metadata["spec"] = "model sequential\nlayer conv2d out_channels=4\n";
    expect_error(g,
                 " (spec):2:7: missing required option 'kernel' for conv2d (or both kernel_h "
                 "and kernel_w)");
  }
  {
    SafeTensors g = f;
    g.metadata["input.mean"] = "0.5";
    expect_error(g,
                 ": checkpoint metadata has one of \"input.mean\" and \"input.stddev\" without "
                 "the other");
    g.metadata["input.stddev"] = "0.5,0.2";
    expect_error(g,
                 ": checkpoint normalisation has 1 means and 2 standard deviations for 1 input "
                 "channels");
    g.metadata["input.stddev"] = "abc";
    expect_error(g,
                 ": checkpoint metadata \"input.stddev\" must be comma-separated numbers, got "
                 "'abc'");
    g.metadata["input.stddev"] = "0";
    expect_error(g, ": checkpoint metadata \"input.stddev\" must be positive, got 0");
  }
  {  // What a regression model's output means: the target's kind, names and normalisation.
    SafeTensors g = f;
    g.metadata["output.target"] = "angles";
    expect_error(g, ": checkpoint metadata \"output.target\" must be labels, values or input, "
                    "got 'angles'");
    g.metadata["output.target"] = "values";
    g.metadata["output.names"] = "angle\nscale";
    g.metadata["output.mean"] = "1,2";
    expect_error(g, ": checkpoint metadata has one of \"output.mean\" and \"output.stddev\" "
                    "without the other");
    g.metadata["output.stddev"] = "0.5";
    expect_error(g, ": checkpoint target normalisation has 2 means and 1 standard deviations "
                    "for 2 targets");
    g.metadata["output.stddev"] = "0.5,-1";
    expect_error(g, ": checkpoint metadata \"output.stddev\" must be positive, got -1");
  }
  {
    SafeTensors g = f;
    g.metadata["epoch"] = "two";
    expect_error(g, ": checkpoint metadata \"epoch\" must be a non-negative integer, got 'two'");
  }
  // Cut anywhere, the file is rejected, never read short.
  const std::string bytes = read_bytes(good);
  for (size_t cut : {size_t{4}, size_t{8}, size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    write_bytes(p, bytes.substr(0, cut));
    EXPECT_THROW(load_checkpoint<float>(p), Error) << "cut at " << cut;
  }
}

// --- integrity -----------------------------------------------------------------------------
// A small checkpoint with every kind of key but a Dropout stream (whose 6 KB of state would make
// the header 5 times longer): parameters, BatchNorm buffers, SGD momentum, step, extra, class
// names, normalisation.
const char* kSmallNet = R"(model sequential
layer conv2d out_channels=2 kernel=3 pad=1
layer batchnorm2d
layer relu
layer flatten
layer linear out_features=3
)";

// A checkpoint in the format before checksums (see OldFormatLoadsWithANote). The data folder
// is tests/data.
const std::string kV1Fixture = (fs::path(CONVNET_TEST_DATA_DIR).parent_path() / "model" /
                                "fixtures" / "checkpoint-v1.safetensors")
                                   .string();

void save_small_checkpoint(const std::string& path) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(kSmallNet);
  model->build(Shape{2, 1, 4, 4}, 2);
  Sgd<float> sgd({.lr = 0.1, .momentum = 0.9});
  SoftmaxCrossEntropy<float> loss;
  Rng rng(4);
  const Tensor<float> x = testing::random_normal<float>(Shape{2, 1, 4, 4}, rng);
  const std::vector<int32_t> labels = {0, 2};
  model->train_step(x, {.labels = labels}, loss, sgd);
  save_checkpoint(path, *model, &sgd,
                  {.epoch = 2,
                   .step = 1,
                   .seed = 2,
                   .extra = {{"lr", "0.1"}, {"data", "images"}},
                   .input = {{"cat", "dog", "eel"}, {0.5f}, {0.2f}}});
}

std::string load_error(const std::string& path) {
  try {
    load_checkpoint<float>(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// CRC-32 as zlib computes it, independently of the library's checkpoint_crc32.
std::string zlib_crc32(const std::string& bytes) {
  char text[9];
  std::snprintf(
      text, sizeof text, "%08lx",
      crc32(0L, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
  return text;
}

uint64_t header_length(const std::string& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[static_cast<size_t>(i)]))
         << (8 * i);
  return n;
}

// Every single bit of the length and the header (names, dtypes, shapes, offsets, metadata keys
// and values, padding; 2 KB), flipped one at a time: none loads. A flip that leaves a well-formed
// safetensors file is caught by the header's checksum (or, in "format", by the format check).
TEST_F(Checkpoints, EveryHeaderBitFlipIsRejected) {
  const std::string good = path("good.safetensors"), p = path("flipped.safetensors");
  save_small_checkpoint(good);
  const std::string bytes = read_bytes(good);
  const uint64_t head = 8 + header_length(bytes);
  ASSERT_LT(head, bytes.size());
  int loaded = 0, by_checksum = 0;
  for (uint64_t bit = 0; bit < 8 * head; ++bit) {
    std::string flipped = bytes;
    flipped[bit / 8] = static_cast<char>(flipped[bit / 8] ^ (1 << (bit % 8)));
    // load_checkpoint checks the bytes with decode_checkpoint before anything else: in memory,
    // then from a file only when that passes (it never should), the whole load.
    std::string message = "(no error)";
    try {
      decode_checkpoint(flipped, p);
    } catch (const Error& e) {
      message = e.what();
    }
    if (message == "(no error)") {
      write_bytes(p, flipped);
      message = load_error(p);
    }
    const bool names_checksum = message.find("checksum") != std::string::npos;
    by_checksum += names_checksum;
    if (message == "(no error)") {
      ++loaded;
      ADD_FAILURE() << "byte " << bit / 8 << " bit " << bit % 8 << " ('" << bytes[bit / 8]
                    << "') flipped: loads";
      continue;
    }
    EXPECT_EQ(message.rfind(p + ": ", 0), 0u) << message;
    if (names_checksum || message.find("format") != std::string::npos) continue;
    // Any other message must be the container's: the flip broke the safetensors structure.
    EXPECT_THROW(decode_safetensors(flipped, p), Error)
        << "byte " << bit / 8 << " bit " << bit % 8 << ": " << message;
  }
  EXPECT_EQ(loaded, 0) << "of " << 8 * head << " header bits";
  EXPECT_GT(by_checksum, 0);
}

// A flipped bit in a tensor's data (an exponent bit, as a bad disk or a cosmic ray leaves it:
// the weight becomes 1e36 and still loads without the checksum) is an error naming the tensor,
// with the recorded and the computed CRC-32; every tensor, optimizer state included, and every
// bit of one.
TEST_F(Checkpoints, FlippedDataBitNamesTheTensor) {
  const std::string good = path("good.safetensors"), p = path("flipped.safetensors");
  save_small_checkpoint(good);
  const std::string bytes = read_bytes(good);
  const SafeTensors file = read_safetensors(good);
  const size_t data_start = 8 + header_length(bytes);
  size_t offset = data_start;
  for (const SafeTensor& t : file.tensors) {
    ASSERT_EQ(bytes.substr(offset, t.bytes.size()), t.bytes);
    const auto recorded = file.metadata.find("crc32." + t.name);
    ASSERT_NE(recorded, file.metadata.end()) << t.name << " has no checksum";
    EXPECT_EQ(recorded->second, zlib_crc32(t.bytes)) << t.name;
    const size_t bits = t.name == "0.bias" ? 8 * t.bytes.size() : 1;
    for (size_t bit = 0; bit < bits; ++bit) {
      // Bit 30 of the first float, its exponent's top bit, when one bit is flipped.
      const size_t at = bits == 1 ? 3 : bit / 8;
      const int mask = bits == 1 ? 0x40 : 1 << (bit % 8);
      std::string flipped = bytes;
      flipped[offset + at] = static_cast<char>(flipped[offset + at] ^ mask);
      std::string data = t.bytes;
      data[at] = static_cast<char>(data[at] ^ mask);
      write_bytes(p, flipped);
      EXPECT_EQ(load_error(p), p + ": tensor '" + t.name +
                                   "': checksum mismatch (CRC-32 expected " + recorded->second +
                                   ", got " + zlib_crc32(data) + "): its data is corrupt");
    }
    offset += t.bytes.size();
  }
  EXPECT_EQ(offset, bytes.size());
}

// NaN and Inf are refused wherever they are: a weight, a buffer, an optimizer state.
TEST_F(Checkpoints, NonFiniteValuesAreRefused) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::string p = path("bad.safetensors");
  auto expect_refused = [&](auto edit, const std::string& message) {
    std::unique_ptr<Model<float>> model = parse_model_spec<float>(kSmallNet);
    model->build(Shape{2, 1, 4, 4}, 1);
    Adam<float> adam;
    SoftmaxCrossEntropy<float> loss;
    Rng rng(1);
    const std::vector<int32_t> labels = {0, 1};
    model->train_step(testing::random_normal<float>(Shape{2, 1, 4, 4}, rng), {.labels = labels},
                      loss, adam);
    edit(*model, adam);
    save_checkpoint(p, *model, &adam, {});
    EXPECT_EQ(load_error(p), p + message);
  };
  const std::string finite =
      " (of 18): a checkpoint's weights, buffers and optimizer state must be finite";
  expect_refused([&](Model<float>& m, Adam<float>&) { (*m.params()[0].value)[5] = nan; },
                 ": tensor '0.weight' holds nan at index 5" + finite);
  expect_refused([&](Model<float>& m, Adam<float>&) { (*m.params()[0].value)[17] = -inf; },
                 ": tensor '0.weight' holds -inf at index 17" + finite);
  expect_refused([&](Model<float>& m, Adam<float>&) { (*m.buffers()[1].value)[1] = inf; },
                 ": tensor '1.running_var' holds inf at index 1 (of 2): a checkpoint's weights, "
                 "buffers and optimizer state must be finite");
  expect_refused(
      [&](Model<float>&, Adam<float>& adam) {
        std::vector<std::vector<std::vector<float>>> state;
        for (size_t i = 0; i < 6; ++i) {
          auto& tensors = state.emplace_back();
          for (size_t k = 0; k < 2; ++k) {
            const std::span<const float> s = adam.state(i, k);
            tensors.emplace_back(s.begin(), s.end());
          }
        }
        state[4][1][7] = nan;  // 4.weight's (the linear layer's) exp_avg_sq
        adam.restore(adam.steps(), state);
      },
      ": tensor 'optimizer.4.weight.exp_avg_sq' holds nan at index 7 (of 96): a checkpoint's "
      "weights, buffers and optimizer state must be finite");
}

// A key the format does not define is an error, even with valid checksums (a tool's edit, or a
// v1 file whose key was corrupted: "input.class_names" misspelt would drop the class names).
TEST_F(Checkpoints, UnknownMetadataKeysAreRefused) {
  const std::string good = path("good.safetensors"), p = path("bad.safetensors");
  {
    std::unique_ptr<Model<float>> model = parse_model_spec<float>(kNet);
    model->build(Shape{2, 1, 6, 6}, 1);
    save_checkpoint<float>(good, *model, nullptr, {.extra = {{"colour", "red"}}, .input = {}});
  }
  ASSERT_EQ(load_error(good), "(no error)") << "extra.* keys are the caller's own";
  const SafeTensors f = read_safetensors(good);
  auto expect_error = [&](const SafeTensors& g, const std::string& message) {
    write_bytes(p, encode_checkpoint(g));
    EXPECT_EQ(load_error(p), p + message);
  };
  {
    SafeTensors g = f;
    g.metadata["colour"] = "red";
    expect_error(g,
                 ": unknown metadata key \"colour\" in a convnet.checkpoint/2 file "
                 "(docs/model-spec.md lists the keys; a caller's own go under \"extra.\")");
  }
  {
    SafeTensors g = f;
    g.metadata["input.class_namez"] = "a\nb";
    expect_error(g,
                 ": unknown metadata key \"input.class_namez\" in a convnet.checkpoint/2 file "
                 "(docs/model-spec.md lists the keys; a caller's own go under \"extra.\")");
  }
  {
    SafeTensors g = f;
    g.metadata["rng.5"] = g.metadata.at("rng.3");
    expect_error(g, ": metadata \"rng.5\" names no layer of the spec that draws random numbers");
  }
  // A convnet.checkpoint/1 file with a key of neither format.
  SafeTensors v1 = read_safetensors(kV1Fixture);
  v1.metadata["input.class_namez"] = v1.metadata.at("input.class_names");
  v1.metadata.erase("input.class_names");
  write_bytes(p, encode_safetensors(v1));
  EXPECT_EQ(load_error(p), p + ": unknown metadata key \"input.class_namez\" in a "
                               "convnet.checkpoint/1 file (docs/model-spec.md lists the keys; a "
                               "caller's own go under \"extra.\")");
  v1.metadata["input.class_names"] = v1.metadata.at("input.class_namez");
  v1.metadata.erase("input.class_namez");
  v1.metadata["crc32"] = "00000000";
  write_bytes(p, encode_safetensors(v1));
  EXPECT_EQ(load_error(p), p + ": unknown metadata key \"crc32\" in a convnet.checkpoint/1 file "
                               "(docs/model-spec.md lists the keys; a caller's own go under "
                               "\"extra.\")");
}

// The header's checksum as docs/model-spec.md defines it, computed here with zlib: the CRC-32 of
// the file's first 8 + N bytes with the 8 digits of "crc32" read as "00000000". `seal` gives
// an edited file a valid header checksum, as a writer that follows the documentation would.
std::string seal(std::string bytes) {
  const size_t head = 8 + header_length(bytes);
  const std::string key = "\"crc32\":\"";
  const size_t at = bytes.find(key) + key.size();
  EXPECT_LT(at, head);
  bytes.replace(at, 8, "00000000");
  bytes.replace(at, 8, zlib_crc32(bytes.substr(0, head)));
  return bytes;
}

TEST_F(Checkpoints, ChecksumsFollowTheDocumentedDefinition) {
  const std::string good = path("good.safetensors"), p = path("bad.safetensors");
  save_small_checkpoint(good);
  const std::string bytes = read_bytes(good);
  EXPECT_EQ(seal(bytes), bytes);
  const SafeTensors f = read_safetensors(good);
  EXPECT_EQ(encode_checkpoint(f), bytes) << "read and written again, the same bytes";
  EXPECT_EQ(checkpoint_crc32("123456789"), "cbf43926");  // the CRC-32 check value
  // Files whose header checksum is valid but whose tensor checksums are not as the format says.
  auto expect_error = [&](SafeTensors g, const std::string& message) {
    write_bytes(p, seal(encode_safetensors(g)));
    EXPECT_EQ(load_error(p), p + message);
  };
  {
    SafeTensors g = f;
    g.metadata.erase("crc32.0.bias");
    expect_error(g,
                 ": tensor '0.bias' has no checksum: metadata \"crc32.0.bias\" is missing "
                 "(convnet.checkpoint/2 records one for the header and every tensor)");
  }
  {
    SafeTensors g = f;
    g.metadata["crc32.0.bias"] = "CBF43926";
    expect_error(
        g,
        ": metadata \"crc32.0.bias\" must be a checksum, a CRC-32 as 8 lowercase hex digits, got "
        "'CBF43926'");
  }
  {
    SafeTensors g = f;
    g.metadata["crc32.9.weight"] = "cbf43926";
    expect_error(g,
                 ": metadata \"crc32.9.weight\" is the checksum of a tensor the file does not "
                 "hold");
  }
  {
    SafeTensors g = f;
    g.metadata.erase("crc32");
    write_bytes(p, encode_safetensors(g));
    EXPECT_EQ(load_error(p), p + ": the header has no checksum: metadata \"crc32\" is missing "
                                 "(convnet.checkpoint/2 records one for the header and every "
                                 "tensor)");
  }
}

// tests/model/fixtures/checkpoint-v1.safetensors was written by convnet at commit 07af5bb, the
// last before checksums (format convnet.checkpoint/1): kNet-like (conv, BatchNorm, Dropout p=0.25,
// linear 3) built for 2x1x4x4 with seed 7, two Adam steps (lr 0.01), saved with epoch 1, step 2,
// extra lr=0.01, classes circle/square/triangle, mean 0.5, stddev 0.25. It loads, with one note,
// and saved again it is a checksummed file with the same tensors.
TEST_F(Checkpoints, OldFormatLoadsWithANote) {
  Checkpoint<float> c = load_checkpoint<float>(kV1Fixture);
  EXPECT_EQ(c.notes,
            std::vector<std::string>{kV1Fixture + ": a convnet.checkpoint/1 file, written "
                                                  "before checksums: corruption of its data cannot "
                                                  "be detected (saving it again adds them)"});
  EXPECT_EQ(c.state.epoch, 1);
  EXPECT_EQ(c.state.step, 2);
  EXPECT_EQ(c.state.seed, 7u);
  EXPECT_EQ(c.state.extra, (std::map<std::string, std::string>{{"lr", "0.01"}}));
  EXPECT_EQ(c.state.input.class_names, (std::vector<std::string>{"circle", "square", "triangle"}));
  EXPECT_EQ(c.state.input.mean, std::vector<float>{0.5f});
  EXPECT_EQ(c.state.input.stddev, std::vector<float>{0.25f});
  EXPECT_EQ(c.optimizer, "adam");
  EXPECT_EQ(c.optimizer_steps, 2);
  Adam<float> adam({.lr = 0.01});
  restore_optimizer(c, adam);
  EXPECT_EQ(adam.steps(), 2);
  const SafeTensors v1 = read_safetensors(kV1Fixture);
  EXPECT_FALSE(v1.metadata.count("crc32"));
  const std::string p = path("v2.safetensors");
  save_checkpoint(p, *c.model, &adam, c.state);
  Checkpoint<float> again = load_checkpoint<float>(p);
  EXPECT_TRUE(again.notes.empty());
  const SafeTensors v2 = read_safetensors(p);
  ASSERT_EQ(v2.tensors.size(), v1.tensors.size());
  for (size_t i = 0; i < v1.tensors.size(); ++i) {
    EXPECT_EQ(v2.tensors[i].name, v1.tensors[i].name);
    EXPECT_EQ(v2.tensors[i].bytes, v1.tensors[i].bytes) << v1.tensors[i].name;
  }
  for (const auto& [key, value] : v1.metadata) {
    if (key != "format") {
      EXPECT_EQ(v2.metadata.at(key), value) << key;
    }
  }
  EXPECT_EQ(v2.metadata.at("format"), "convnet.checkpoint/2");
}

// A spec that parses but does not build, or does not parse, names the checkpoint it came from.
TEST_F(Checkpoints, SpecErrorsNameTheCheckpoint) {
  std::unique_ptr<Model<float>> model = parse_model_spec<float>(kNet);
  model->build(Shape{2, 1, 6, 6}, 1);
  const std::string good = path("good.safetensors"), p = path("bad.safetensors");
  save_checkpoint<float>(good, *model, nullptr, {});
  const SafeTensors f = read_safetensors(good);
  for (const char* spec : {
           "model sequential\nlayer conv2d out_channels=4 kernel=9\n",  // larger than 6x6
           "model sequential\nlayer conv2d out_channels=4 kernel=3 stride=0\n",
           "model graph\nnode a relu in=nowhere\n",
           "model graph\nnode a add in=input\n",
       }) {
    SafeTensors g = f;
    g.metadata["spec"] = spec;
    write_bytes(p, encode_checkpoint(g));
    const std::string message = load_error(p);
    EXPECT_EQ(message.rfind(p + " (spec)", 0), 0u) << spec << "\n" << message;
  }
}

TEST(SafeTensorsFormat, EncodesEscapesAndReadsThemBack) {
  SafeTensors f;
  f.metadata["text"] = "line 1\nline \"2\"\t\\ \x01 é";
  f.tensors.push_back({"b", "F64", {}, std::string(8, '\3')});
  f.tensors.push_back({"a", "F32", {0, 3}, ""});
  const SafeTensors g = decode_safetensors(encode_safetensors(f), "mem");
  EXPECT_EQ(g.metadata.at("text"), f.metadata.at("text"));
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].name, "b");
  EXPECT_EQ(g.tensors[0].bytes, std::string(8, '\3'));
  EXPECT_EQ(g.tensors[1].shape, (std::vector<int64_t>{0, 3}));
  // \u escapes, surrogate pairs included, as other writers produce them.
  const SafeTensors h =
      decode_safetensors(raw(R"({"__metadata__":{"k":"\u00e9\ud83d\ude00\/"}})", ""), "mem");
  EXPECT_EQ(h.metadata.at("k"), "\xc3\xa9\xf0\x9f\x98\x80/");
}

}  // namespace
}  // namespace convnet
