// Checkpoints: a save/load round trip continues training bit for bit (optimizer state, BatchNorm
// statistics, Dropout's random stream); tensor names follow PyTorch's modules; writes are atomic;
// and the loader rejects malformed files with a message naming the file and the fault.
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <cstring>
#include <fstream>
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
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
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
      {"empty", "", "truncated: 0 bytes, too short for the 8-byte header length of a "
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
      {"unsupported dtype", raw(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", f8.substr(0, 4)),
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
       "not a convnet checkpoint (its metadata has no \"format\": \"convnet.checkpoint/1\")"},
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
    write_safetensors(p, f);
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
    expect_error(g, ": unexpected tensor '9.weight' (the model's spec has no parameter or buffer "
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
    expect_error(g, " (spec):2:7: missing required option 'kernel' for conv2d (or both kernel_h "
                    "and kernel_w)");
  }
  {
    SafeTensors g = f;
    g.metadata["input.mean"] = "0.5";
    expect_error(g, ": checkpoint metadata has one of \"input.mean\" and \"input.stddev\" without "
                    "the other");
    g.metadata["input.stddev"] = "0.5,0.2";
    expect_error(g, ": checkpoint normalisation has 1 means and 2 standard deviations for 1 input "
                    "channels");
    g.metadata["input.stddev"] = "abc";
    expect_error(g, ": checkpoint metadata \"input.stddev\" must be comma-separated numbers, got "
                    "'abc'");
    g.metadata["input.stddev"] = "0";
    expect_error(g, ": checkpoint metadata \"input.stddev\" must be positive, got 0");
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
  const SafeTensors h = decode_safetensors(
      raw(R"({"__metadata__":{"k":"\u00e9\ud83d\ude00\/"}})", ""), "mem");
  EXPECT_EQ(h.metadata.at("k"), "\xc3\xa9\xf0\x9f\x98\x80/");
}

}  // namespace
}  // namespace convnet
