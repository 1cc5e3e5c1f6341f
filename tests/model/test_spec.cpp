// Model-spec files: the files in models/ build exactly the built-in networks; every layer type and
// option survives write -> read -> write; each parse error points at line:column and says what
// was expected.
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/testing.hpp"

namespace convnet {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The text without comment lines: what Model::spec() writes.
std::string without_comments(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (!line.empty() && line[0] != '#') out += line + "\n";
  return out;
}

struct BuiltIn {
  const char* name;
  Shape input;
};
class BuiltInSpec : public ::testing::TestWithParam<BuiltIn> {};

TEST_P(BuiltInSpec, FileBuildsTheZooModelExactly) {
  const BuiltIn c = GetParam();
  const std::string path = std::string(CONVNET_MODELS_DIR) + "/" + c.name + ".txt";
  std::unique_ptr<Model<float>> from_file = load_model_spec<float>(path);
  std::unique_ptr<Model<float>> zoo = make_model<float>(c.name);
  EXPECT_EQ(without_comments(read_text(path)), zoo->spec())
      << "regenerate " << path << " with: convnet summary --model " << c.name << " --spec";
  from_file->build(c.input, 7);
  zoo->build(c.input, 7);
  ASSERT_EQ(from_file->params().size(), zoo->params().size());
  EXPECT_EQ(from_file->param_count(), zoo->param_count());
  for (size_t i = 0; i < zoo->params().size(); ++i) {
    EXPECT_EQ(from_file->params()[i].name, zoo->params()[i].name);
    EXPECT_EQ(from_file->params()[i].value->shape(), zoo->params()[i].value->shape());
  }
  ASSERT_EQ(from_file->buffers().size(), zoo->buffers().size());
  EXPECT_EQ(from_file->summary(), zoo->summary());
  Rng rng(3);
  const Tensor<float> x = testing::random_normal<float>(c.input, rng);
  const Tensor<float>& a = from_file->forward(x, Mode::Train);
  const Tensor<float>& b = zoo->forward(x, Mode::Train);
  ASSERT_EQ(a.shape(), b.shape());
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), sizeof(float) * static_cast<size_t>(a.numel())))
      << "outputs differ for the same seed";
}
INSTANTIATE_TEST_SUITE_P(Models, BuiltInSpec,
                         ::testing::Values(BuiltIn{"lenet", Shape{2, 1, 28, 28}},
                                           BuiltIn{"vgg-small", Shape{2, 3, 32, 32}},
                                           BuiltIn{"resnet-small", Shape{2, 1, 28, 28}}),
                         [](const ::testing::TestParamInfo<BuiltIn>& p) {
                           std::string n = p.param.name;
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// Every layer type, and every option of each set away from its default.
const char* kEverySequential = R"(# every layer and option of a chain
model sequential
layer conv2d in_channels=3 out_channels=8 kernel_h=3 kernel_w=5 stride_h=1 stride_w=2 pad_h=1 pad_w=2 dilation=1 groups=1 bias=false init=kaiming_normal
layer conv2d out_channels=8 kernel=3 stride=1 pad=1 dilation=2 dilation_h=2 dilation_w=1 groups=4 init=xavier_uniform
layer batchnorm2d num_features=8 eps=0.001 momentum=0.2 affine=false
layer leaky_relu slope=0.2
layer conv_transpose2d out_channels=6 kernel=3 stride=2 pad=1 output_padding=1 groups=2 init=kaiming_uniform
layer conv_transpose2d in_channels=6 out_channels=4 kernel_h=2 kernel_w=3 stride_h=2 stride_w=1 pad_h=0 pad_w=1 output_padding_h=1 output_padding_w=0 dilation_h=1 dilation_w=1 bias=false init=xavier_normal
layer elu alpha=0.5
layer maxpool2d kernel=3 stride=2 pad=1
layer avgpool2d kernel_h=2 kernel_w=2 stride_h=1 stride_w=1 pad_h=1 pad_w=1 count_pad=false
layer gelu
layer silu
layer sigmoid
layer tanh
layer dropout p=0.25 seed=9
layer global_avgpool2d
layer flatten
layer linear in_features=4 out_features=6 bias=false init=default
layer batchnorm1d eps=1e-05 momentum=0.5 gamma_init=0.5
layer relu
layer linear out_features=3
layer softmax
)";

const char* kEveryGraph = R"(model graph input=image
node a conv2d in=image out_channels=4 kernel=3 pad=1
node b maxpool2d in=a kernel_h=3 kernel_w=3 stride=1 pad_h=1 pad_w=1
node c conv2d in=image out_channels=4 kernel=3 pad=1
node sum add in=b,c,a
node cat concat in=sum,c
node pool global_avgpool2d in=cat
node flat flatten in=pool
node fc linear in=flat out_features=5
node unused_tail relu in=fc
output fc
)";

template <class T>
void expect_round_trip(const std::string& text, const Shape& input) {
  std::unique_ptr<Model<T>> first = parse_model_spec<T>(text);
  const std::string written = first->spec();
  std::unique_ptr<Model<T>> second = parse_model_spec<T>(written);
  EXPECT_EQ(second->spec(), written);
  first->build(input, 1);
  second->build(input, 1);
  EXPECT_EQ(first->param_count(), second->param_count());
  EXPECT_EQ(first->summary(), second->summary());
  EXPECT_EQ(first->forward_flops(), second->forward_flops());
}

TEST(ModelSpec, EveryLayerAndOptionRoundTrips) {
  expect_round_trip<float>(kEverySequential, Shape{2, 3, 12, 12});
  expect_round_trip<double>(kEverySequential, Shape{2, 3, 12, 12});
  // The written form keeps every non-default option, in declaration order.
  const std::string written = parse_model_spec<float>(kEverySequential)->spec();
  EXPECT_NE(written.find("layer conv2d in_channels=3 out_channels=8 kernel_h=3 kernel_w=5 "
                         "stride_h=1 stride_w=2 pad_h=1 pad_w=2 bias=false init=kaiming_normal\n"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("layer leaky_relu slope=0.2\n"), std::string::npos) << written;
  EXPECT_NE(written.find("layer elu alpha=0.5\n"), std::string::npos) << written;
  EXPECT_NE(written.find("layer dropout p=0.25 seed=9\n"), std::string::npos) << written;
  EXPECT_NE(written.find("layer batchnorm2d num_features=8 eps=0.001 momentum=0.2 affine=false\n"),
            std::string::npos)
      << written;
  EXPECT_NE(written.find("count_pad=false"), std::string::npos) << written;
  EXPECT_NE(written.find("layer batchnorm1d momentum=0.5 gamma_init=0.5\n"), std::string::npos)
      << "eps=1e-05 is the default and is not written: " << written;
}

TEST(ModelSpec, GraphRoundTripsWithInputNameOutputAndMerges) {
  // The unused tail makes build() fail; round-trip the text, then build without it.
  std::unique_ptr<Model<float>> g = parse_model_spec<float>(kEveryGraph);
  const std::string written = g->spec();
  EXPECT_EQ(parse_model_spec<float>(written)->spec(), written);
  EXPECT_NE(written.find("model graph input=image\n"), std::string::npos) << written;
  EXPECT_NE(written.find("node sum add in=b,c,a\n"), std::string::npos) << written;
  EXPECT_NE(written.find("\noutput fc\n"), std::string::npos) << written;
  std::string text = kEveryGraph;
  text.replace(text.find("node unused_tail"), std::string("node unused_tail relu in=fc\n").size(),
               "");
  expect_round_trip<float>(text, Shape{2, 1, 6, 6});
}

TEST(ModelSpec, NameOrPath) {
  EXPECT_TRUE(is_model_spec_path("models/lenet.txt"));
  EXPECT_TRUE(is_model_spec_path("net.txt"));
  EXPECT_TRUE(is_model_spec_path("./net"));
  EXPECT_FALSE(is_model_spec_path("lenet"));
  EXPECT_EQ(load_model<float>("lenet")->spec(), make_model<float>("lenet")->spec());
}

std::string parse_error(const std::string& text) {
  try {
    parse_model_spec<float>(text, "net.txt");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct Malformed {
  const char* what;
  const char* text;
  const char* message;  // the whole message
};

TEST(ModelSpec, ErrorsPointAtLineAndColumn) {
  const Malformed cases[] = {
      {"empty", "# nothing\n\n",
       "net.txt:1:1: empty model spec: expected 'model sequential' or 'model graph' first"},
      {"no model line", "layer relu\n",
       "net.txt:1:1: expected 'model sequential' or 'model graph' first, got 'layer'"},
      {"model type", "model tree\n",
       "net.txt:1:7: unknown model type 'tree' (expected sequential or graph)"},
      {"no layers", "model sequential  # only this\n",
       "net.txt:1:1: model has no layers (add 'layer' lines)"},
      {"unknown layer type", "model sequential\nlayer conv3d out_channels=2\n",
       "net.txt:2:7: unknown layer type 'conv3d' (expected one of: conv2d, conv_transpose2d, "
       "maxpool2d, avgpool2d, global_avgpool2d, linear, flatten, relu, leaky_relu, sigmoid, tanh, "
       "softmax, gelu, silu, elu, dropout, batchnorm1d, batchnorm2d, add, concat)"},
      {"unknown option", "model sequential\nlayer linear out_features=2 bias=true size=3\n",
       "net.txt:2:39: unknown option 'size' for linear (expected one of: in_features, "
       "out_features, bias, init)"},
      {"option on a plain layer", "model sequential\n  layer relu inplace=true\n",
       "net.txt:2:14: unknown option 'inplace' for relu (it takes no options)"},
      {"count_pad is avgpool's", "model sequential\nlayer maxpool2d kernel=2 count_pad=false\n",
       "net.txt:2:26: unknown option 'count_pad' for maxpool2d (expected one of: kernel, "
       "kernel_h, kernel_w, stride, stride_h, stride_w, pad, pad_h, pad_w)"},
      {"bad integer", "model sequential\nlayer conv2d out_channels=6 kernel=5x5\n",
       "net.txt:2:36: bad value '5x5' for option 'kernel' of conv2d: expected an integer"},
      {"bad number", "model sequential\nlayer dropout p=half\n",
       "net.txt:2:17: bad value 'half' for option 'p' of dropout: expected a number"},
      {"bad bool", "model sequential\nlayer linear out_features=2 bias=no\n",
       "net.txt:2:34: bad value 'no' for option 'bias' of linear: expected true or false"},
      {"bad init", "model sequential\nlayer linear out_features=2 init=he\n",
       "net.txt:2:34: bad value 'he' for option 'init' of linear: expected one of default, "
       "kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal"},
      {"negative seed", "model sequential\nlayer dropout seed=-1\n",
       "net.txt:2:20: bad value '-1' for option 'seed' of dropout: expected a non-negative "
       "integer"},
      {"duplicate option", "model sequential\nlayer conv2d out_channels=6 kernel=5 kernel=3\n",
       "net.txt:2:38: duplicate option 'kernel' for conv2d (first at column 29)"},
      {"missing required", "model sequential\nlayer conv2d kernel=5\n",
       "net.txt:2:7: missing required option 'out_channels' for conv2d"},
      {"missing kernel", "model sequential\nlayer avgpool2d kernel_h=2 stride=1\n",
       "net.txt:2:7: missing required option 'kernel' for avgpool2d (or both kernel_h and "
       "kernel_w)"},
      {"not key=value", "model sequential\nlayer linear out_features 4\n",
       "net.txt:2:14: expected an option key=value for linear, got 'out_features'"},
      {"empty value", "model sequential\nlayer linear out_features=\n",
       "net.txt:2:27: option 'out_features' of linear has no value (write out_features=VALUE, "
       "without spaces)"},
      {"layer rejects a value", "model sequential\nlayer conv2d out_channels=6 kernel=5 groups=4\n",
       "net.txt:2:7: conv2d: groups (4) must be at least 1 and divide out_channels (6)"},
      {"unknown statement", "model sequential\nlayr relu\n",
       "net.txt:2:1: unknown statement 'layr' (expected layer)"},
      {"node in a sequential", "model sequential\nnode a relu in=input\n",
       "net.txt:2:1: 'node' lines belong to 'model graph'; a sequential model has 'layer TYPE "
       "...' lines"},
      {"layer in a graph", "model graph\nlayer relu\n",
       "net.txt:2:1: 'layer' lines belong to 'model sequential'; a graph has 'node NAME TYPE "
       "in=...' lines"},
      {"merge in a sequential", "model sequential\nlayer add\n",
       "net.txt:2:7: add merges several inputs: it needs 'model graph'"},
      {"second model", "model graph\nnode a relu in=input\nmodel sequential\n",
       "net.txt:3:1: a spec holds one model; 'model' is already at line 1"},
      {"missing in", "model graph\nnode a relu\n",
       "net.txt:2:8: missing required option 'in' for node 'a' (the node's inputs: "
       "in=NAME[,NAME...])"},
      {"unknown input node", "model graph\nnode a relu in=input\nnode b add in=a,c\n",
       "net.txt:3:17: unknown input node 'c' (no node of that name; the graph input is "
       "'input')"},
      {"empty input name", "model graph\nnode a add in=input,,input\n",
       "net.txt:2:21: bad input name '' in in=input,,input: expected node names separated by "
       "commas"},
      {"duplicate node", "model graph\nnode a relu in=input\n\nnode a relu in=a\n",
       "net.txt:4:6: duplicate node name 'a' (first defined at line 2)"},
      {"node named like the input", "model graph\nnode input relu in=input\n",
       "net.txt:2:6: duplicate node name 'input' (first defined at line 1)"},
      {"bad node name", "model graph\nnode a/b relu in=input\n",
       "net.txt:2:6: bad node name 'a/b': use letters, digits, '_', '.' and '-'"},
      {"one input only", "model graph\nnode a relu in=input,input\n",
       "net.txt:2:16: relu takes exactly 1 input, got 2"},
      {"merge needs two", "model graph\nnode a concat in=input\n",
       "net.txt:2:18: concat takes at least 2 inputs, got 1"},
      {"unknown output", "model graph\nnode a relu in=input\noutput b\n",
       "net.txt:3:8: unknown output node 'b' (no node of that name)"},
      {"duplicate output", "model graph\nnode a relu in=input\noutput a\noutput a\n",
       "net.txt:4:1: duplicate 'output' (first at line 3)"},
      {"graph option", "model graph inputs=x\nnode a relu in=x\n",
       "net.txt:1:13: unknown option 'inputs' for model graph (expected one of: input)"},
  };
  for (const Malformed& c : cases) EXPECT_EQ(parse_error(c.text), c.message) << c.what;
}

// A token of megabytes is quoted by its first 80 characters and its length, not echoed whole
// (a 2 MB token once put 2,000,257 bytes on stderr).
TEST(ModelSpec, LongTokensAreCutInMessages) {
  const std::string huge(2'000'000, 'a');
  // (Appended, not "'" + std::string(...): GCC 12 warns falsely about that, -Wrestrict.)
  const std::string shown = std::string(1, '\'').append(80, 'a').append("…' (2000000 characters)");
  const Malformed cases[] = {
      {"value", "model sequential\nlayer conv2d out_channels=4 kernel=", ""},
      {"layer type", "model sequential\nlayer ", ""},
      {"key", "model sequential\nlayer relu ", ""},
      {"statement", "model sequential\n", ""},
      {"input node", "model graph\nnode a relu in=", ""},
  };
  const std::string expected[] = {
      "net.txt:2:36: bad value " + shown + " for option 'kernel' of conv2d: expected an integer",
      "net.txt:2:7: unknown layer type " + shown +
          " (expected one of: conv2d, conv_transpose2d, "
          "maxpool2d, avgpool2d, global_avgpool2d, linear, flatten, relu, leaky_relu, sigmoid, "
          "tanh, "
          "softmax, gelu, silu, elu, dropout, batchnorm1d, batchnorm2d, add, concat)",
      "net.txt:2:12: expected an option key=value for relu, got " + shown,
      "net.txt:2:1: unknown statement " + shown + " (expected layer)",
      "net.txt:2:16: unknown input node " + shown +
          " (no node of that name; the graph input is 'input')",
  };
  for (size_t i = 0; i < std::size(cases); ++i) {
    const std::string message = parse_error(cases[i].text + huge + "\n");
    if (message.size() > 400) {  // (not shown whole here either)
      ADD_FAILURE() << cases[i].what << ": a message of " << message.size()
                    << " bytes: " << message.substr(0, 160) << "...";
      continue;
    }
    EXPECT_EQ(message, expected[i]) << cases[i].what;
  }
  // A long name that is valid reaches the graph's own messages, cut the same way.
  const std::string name(300, 'n');
  EXPECT_EQ(testing::error_of([&] {
              parse_model_spec<float>(
                  "model graph\nnode " + name + " relu in=input\nnode b relu in=input\n", "net.txt")
                  ->build(Shape{1, 2});
            }),
            "net.txt:2:6: graph: node '" + std::string(80, 'n') +
                "…' (300 characters) does not lead to the output 'b'");
}

// Errors found when a spec file's model is built (shapes, wiring) start with FILE:LINE:COLUMN
// of the line that defined the layer or node, as parse errors do.
TEST(ModelSpec, BuildErrorsPointAtTheLayersLine) {
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("convnet_spec_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  std::filesystem::create_directories(dir);
  struct Case {
    const char* file;
    const char* text;
    std::string message;  // after "DIR/FILE"
  };
  const Case cases[] = {
      {"linear.txt",
       "model sequential\nlayer conv2d out_channels=4 kernel=3\nlayer flatten\n"
       "layer linear in_features=7 out_features=10\n",
       ":4:7: layer 2: linear 7->10: expected 7 input features, got input 1x2704"},
      {"kernel.txt",
       "model sequential\n# a kernel larger than the image\n"
       "layer conv2d out_channels=4 kernel=30\nlayer flatten\n",
       ":3:7: layer 0: conv2d 30x30 ->4 on input 1x1x28x28: padded input 28x28 is smaller than "
       "the (dilated) kernel 30x30 (input 28x28, padding 0x0, kernel 30x30, dilation 1x1)"},
      {"add.txt",
       "model graph\nnode a conv2d in=input out_channels=4 kernel=3\n"
       "node b conv2d in=input out_channels=4 kernel=1\nnode sum add in=a,b\n",
       ":4:6: node 'sum': add: input 1 has shape 1x4x28x28 but input 0 has 1x4x26x26 (all inputs "
       "must match)"},
      {"unknown.txt", "model graph\nnode a relu in=input\nnode flat flatten in=nothere\n",
       ":3:22: unknown input node 'nothere' (no node of that name; the graph input is 'input')"},
      {"cycle.txt",
       "model graph\nnode a relu in=input\nnode b relu in=c\nnode c add in=a,b\n"
       "node flat flatten in=c\n",
       ":3:6: graph: node 'b' is on a cycle: 'b' reads 'c', which reads 'b' (a node cannot depend "
       "on its own output)"},
      {"unused.txt", "model graph input=x\nnode a relu in=x\nnode b relu in=a\noutput a\n",
       ":3:6: graph: node 'b' does not lead to the output 'a'"},
      {"cycle_of_two.txt", "model graph input=x\nnode a relu in=a2\nnode a2 relu in=a\n",
       ":2:6: graph: node 'a' is on a cycle: 'a' reads 'a2', which reads 'a' (a node cannot "
       "depend on its own output)"},
  };
  for (const Case& c : cases) {
    const std::string path = (dir / c.file).string();
    std::ofstream(path) << c.text;
    EXPECT_EQ(testing::error_of([&] {
                load_model<float>(path)->build(Shape{1, 1, 28, 28});
              }),
              path + c.message);
  }
  std::filesystem::remove_all(dir);
}

TEST(ModelSpec, MissingFileNamesThePath) {
  try {
    load_model_spec<float>("/nonexistent/net.txt");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/net.txt: cannot open model spec: No such file or directory");
  }
}

}  // namespace
}  // namespace convnet
