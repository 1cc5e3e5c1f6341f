// ONNX export: the protobuf encoder's bytes against hand-worked encodings, a tiny model's file
// decoded field by field, every layer kind of the model spec exported with its attributes, and
// the errors for what cannot be exported. (tests/onnx/test_onnx.py runs exported files in ONNX
// Runtime.)
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>

#include "convnet/convnet.hpp"
#include "io/protobuf_wire.hpp"

namespace convnet {
namespace {

using protobuf::MessageWriter;

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out.push_back(static_cast<char>(v));
  return out;
}

std::string varint(uint64_t value) {
  std::string out;
  protobuf::append_varint(out, value);
  return out;
}

TEST(ProtobufWire, VarintsSplitIntoSevenBitGroupsLeastSignificantFirst) {
  EXPECT_EQ(varint(0), bytes({0x00}));
  EXPECT_EQ(varint(1), bytes({0x01}));
  EXPECT_EQ(varint(127), bytes({0x7F}));          // the largest one-byte value
  EXPECT_EQ(varint(128), bytes({0x80, 0x01}));    // 128 = 0 + 1·2^7
  EXPECT_EQ(varint(300), bytes({0xAC, 0x02}));    // 300 = 44 + 2·2^7, 44 | 0x80 = 0xAC
  EXPECT_EQ(varint(16383), bytes({0xFF, 0x7F}));  // 2^14 − 1
  EXPECT_EQ(varint(16384), bytes({0x80, 0x80, 0x01}));
  EXPECT_EQ(varint(UINT64_MAX),
            bytes({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
  // A negative int64 is its two's complement, 2^64 − 1 for −1: ten bytes.
  MessageWriter m;
  m.int_field(1, -1);
  EXPECT_EQ(m.bytes(), bytes({0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01}));
}

TEST(ProtobufWire, FieldsAreKeyedByNumberAndWireType) {
  // key = field << 3 | wire type: field 1 varint = 0x08, field 2 bytes = 0x12, field 3 bytes =
  // 0x1A, field 2 fixed32 = 0x15, field 20 varint = 160 = varint A0 01.
  MessageWriter a;
  a.varint_field(1, 150);
  EXPECT_EQ(a.bytes(), bytes({0x08, 0x96, 0x01}));
  MessageWriter b;
  b.bytes_field(2, "testing");
  EXPECT_EQ(b.bytes(), bytes({0x12, 0x07}) + "testing");
  MessageWriter c;
  c.message_field(3, a);
  EXPECT_EQ(c.bytes(), bytes({0x1A, 0x03, 0x08, 0x96, 0x01}));
  MessageWriter d;
  d.float_field(2, 1.0f);   // 0x3F800000, little-endian
  d.float_field(2, -2.5f);  // 0xC0200000
  EXPECT_EQ(d.bytes(), bytes({0x15, 0x00, 0x00, 0x80, 0x3F, 0x15, 0x00, 0x00, 0x20, 0xC0}));
  MessageWriter e;
  e.varint_field(20, 2);
  EXPECT_EQ(e.bytes(), bytes({0xA0, 0x01, 0x02}));
  MessageWriter empty;
  empty.bytes_field(1, "");
  EXPECT_EQ(empty.bytes(), bytes({0x0A, 0x00}));
}

// --- a protobuf reader for the tests: a message as its list of fields -------------------------
struct Field {
  uint32_t number = 0, wire_type = 0;
  uint64_t value = 0;  // varint and fixed32
  std::string bytes;   // length-delimited
};

uint64_t read_varint(std::string_view data, size_t& at) {
  uint64_t value = 0;
  for (int shift = 0;; shift += 7) {
    if (at >= data.size() || shift > 63) throw std::runtime_error("bad varint");
    const auto byte = static_cast<uint8_t>(data[at++]);
    value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return value;
  }
}

std::vector<Field> decode(std::string_view data) {
  std::vector<Field> fields;
  size_t at = 0;
  while (at < data.size()) {
    Field f;
    const uint64_t key = read_varint(data, at);
    f.number = static_cast<uint32_t>(key >> 3);
    f.wire_type = static_cast<uint32_t>(key & 7);
    if (f.wire_type == 0) {
      f.value = read_varint(data, at);
    } else if (f.wire_type == 2) {
      const uint64_t length = read_varint(data, at);
      if (at + length > data.size()) throw std::runtime_error("field past the end");
      f.bytes = std::string(data.substr(at, length));
      at += length;
    } else if (f.wire_type == 5) {
      if (at + 4 > data.size()) throw std::runtime_error("fixed32 past the end");
      for (int i = 0; i < 4; ++i)
        f.value |= uint64_t{static_cast<uint8_t>(data[at + i])} << (8 * i);
      at += 4;
    } else {
      throw std::runtime_error("unexpected wire type " + std::to_string(f.wire_type));
    }
    fields.push_back(std::move(f));
  }
  return fields;
}

// A decoded message: its fields of one number.
struct Message {
  std::vector<Field> fields;
  explicit Message(std::string_view bytes) : fields(decode(bytes)) {}
  std::vector<const Field*> all(uint32_t number) const {
    std::vector<const Field*> out;
    for (const Field& f : fields)
      if (f.number == number) out.push_back(&f);
    return out;
  }
  const Field& one(uint32_t number) const {
    const auto found = all(number);
    if (found.size() != 1)
      throw std::runtime_error("field " + std::to_string(number) + " occurs " +
                               std::to_string(found.size()) + " times");
    return *found[0];
  }
  std::string text(uint32_t number) const { return one(number).bytes; }
  int64_t integer(uint32_t number) const { return static_cast<int64_t>(one(number).value); }
  Message message(uint32_t number) const { return Message(one(number).bytes); }
  std::vector<Message> messages(uint32_t number) const {
    std::vector<Message> out;
    for (const Field* f : all(number)) out.emplace_back(f->bytes);
    return out;
  }
  std::vector<std::string> texts(uint32_t number) const {
    std::vector<std::string> out;
    for (const Field* f : all(number)) out.push_back(f->bytes);
    return out;
  }
  std::vector<int64_t> integers(uint32_t number) const {
    std::vector<int64_t> out;
    for (const Field* f : all(number)) out.push_back(static_cast<int64_t>(f->value));
    return out;
  }
};

// onnx.proto's field numbers, written out again here so that a wrong number in the exporter
// fails these tests instead of agreeing with itself.
enum : uint32_t {
  kModelIrVersion = 1,
  kModelProducerName = 2,
  kModelGraph = 7,
  kModelOpsetImport = 8,
  kModelMetadataProps = 14,
  kOpsetDomain = 1,
  kOpsetVersion = 2,
  kEntryKey = 1,
  kEntryValue = 2,
  kGraphNode = 1,
  kGraphName = 2,
  kGraphInitializer = 5,
  kGraphInput = 11,
  kGraphOutput = 12,
  kNodeInput = 1,
  kNodeOutput = 2,
  kNodeName = 3,
  kNodeOpType = 4,
  kNodeAttribute = 5,
  kAttributeName = 1,
  kAttributeF = 2,
  kAttributeI = 3,
  kAttributeInts = 8,
  kAttributeType = 20,
  kTensorDims = 1,
  kTensorDataType = 2,
  kTensorName = 8,
  kTensorRawData = 9,
  kValueInfoName = 1,
  kValueInfoType = 2,
  kTypeTensorType = 1,
  kTensorTypeElemType = 1,
  kTensorTypeShape = 2,
  kShapeDim = 1,
  kDimValue = 1,
  kDimParam = 2,
};

std::string float_bytes(std::initializer_list<float> values) {
  std::string out;
  for (float v : values) protobuf::append_float_le(out, v);
  return out;
}

// "N" for a symbolic dimension, else the number.
std::vector<std::string> value_dims(const Message& value_info) {
  std::vector<std::string> dims;
  const Message shape =
      value_info.message(kValueInfoType).message(kTypeTensorType).message(kTensorTypeShape);
  for (const Message& dim : shape.messages(kShapeDim))
    dims.push_back(dim.all(kDimParam).empty() ? std::to_string(dim.integer(kDimValue))
                                              : dim.text(kDimParam));
  return dims;
}

// The node's attribute called `name`, if it has one.
std::optional<Message> find_attribute(const Message& node, const std::string& name) {
  for (const Message& a : node.messages(kNodeAttribute))
    if (a.text(kAttributeName) == name) return a;
  return std::nullopt;
}

TEST(OnnxExport, TinyModelDecodedByHand) {
  Sequential<float> net;
  net.emplace<Linear>(LinearOptions{.out_features = 3});
  net.emplace<ReLU>();
  net.build(Shape{1, 2}, 1);
  auto& linear = dynamic_cast<Linear<float>&>(net.layer(0));
  const float w[6] = {0.5f, -1.25f, 2.0f, 0.0f, -0.5f, 4.0f};
  std::memcpy(linear.weight().data(), w, sizeof w);
  linear.bias()[0] = 1.0f, linear.bias()[1] = -1.0f, linear.bias()[2] = 0.25f;

  const Message model(encode_onnx(net, {.class_names = {"a", "b", "c"}, .mean = {}, .stddev = {}}));
  EXPECT_EQ(model.integer(kModelIrVersion), 7);
  EXPECT_EQ(model.text(kModelProducerName), "convnet");
  const Message opset = model.message(kModelOpsetImport);
  EXPECT_EQ(opset.text(kOpsetDomain), "");  // ai.onnx
  EXPECT_EQ(opset.integer(kOpsetVersion), 13);
  const Message metadata = model.message(kModelMetadataProps);
  EXPECT_EQ(metadata.text(kEntryKey), "class_names");
  EXPECT_EQ(metadata.text(kEntryValue), "a\nb\nc");

  const Message graph = model.message(kModelGraph);
  EXPECT_EQ(graph.text(kGraphName), "convnet");
  const std::vector<Message> nodes = graph.messages(kGraphNode);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].text(kNodeOpType), "Gemm");
  EXPECT_EQ(nodes[0].text(kNodeName), "0");
  EXPECT_EQ(nodes[0].texts(kNodeInput), (std::vector<std::string>{"input", "0.weight", "0.bias"}));
  EXPECT_EQ(nodes[0].texts(kNodeOutput), std::vector<std::string>{"0"});
  const Message trans_b = nodes[0].message(kNodeAttribute);
  EXPECT_EQ(trans_b.text(kAttributeName), "transB");
  EXPECT_EQ(trans_b.integer(kAttributeType), 2);  // INT
  EXPECT_EQ(trans_b.integer(kAttributeI), 1);
  EXPECT_EQ(nodes[1].text(kNodeOpType), "Relu");
  EXPECT_EQ(nodes[1].texts(kNodeInput), std::vector<std::string>{"0"});
  EXPECT_EQ(nodes[1].texts(kNodeOutput), std::vector<std::string>{"logits"});
  EXPECT_EQ(nodes[2].text(kNodeOpType), "Softmax");
  EXPECT_EQ(nodes[2].texts(kNodeInput), std::vector<std::string>{"logits"});
  EXPECT_EQ(nodes[2].texts(kNodeOutput), std::vector<std::string>{"probabilities"});
  EXPECT_EQ(nodes[2].message(kNodeAttribute).integer(kAttributeI), 1);  // axis

  const std::vector<Message> initializers = graph.messages(kGraphInitializer);
  ASSERT_EQ(initializers.size(), 2u);
  EXPECT_EQ(initializers[0].text(kTensorName), "0.weight");
  EXPECT_EQ(initializers[0].integers(kTensorDims), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(initializers[0].integer(kTensorDataType), 1);  // FLOAT
  EXPECT_EQ(initializers[0].text(kTensorRawData),
            bytes({0x00, 0x00, 0x00, 0x3F, 0x00, 0x00, 0xA0, 0xBF, 0x00, 0x00, 0x00, 0x40,
                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xBF, 0x00, 0x00, 0x80, 0x40}));
  EXPECT_EQ(initializers[1].text(kTensorName), "0.bias");
  EXPECT_EQ(initializers[1].integers(kTensorDims), std::vector<int64_t>{3});
  EXPECT_EQ(initializers[1].text(kTensorRawData), float_bytes({1.0f, -1.0f, 0.25f}));

  const Message input = graph.message(kGraphInput);
  EXPECT_EQ(input.text(kValueInfoName), "input");
  EXPECT_EQ(input.message(kValueInfoType).message(kTypeTensorType).integer(kTensorTypeElemType), 1);
  EXPECT_EQ(value_dims(input), (std::vector<std::string>{"N", "2"}));
  const std::vector<Message> outputs = graph.messages(kGraphOutput);
  ASSERT_EQ(outputs.size(), 2u);
  EXPECT_EQ(outputs[0].text(kValueInfoName), "logits");
  EXPECT_EQ(value_dims(outputs[0]), (std::vector<std::string>{"N", "3"}));
  EXPECT_EQ(outputs[1].text(kValueInfoName), "probabilities");
  EXPECT_EQ(value_dims(outputs[1]), (std::vector<std::string>{"N", "3"}));
}

Sequential<float> small_image_classifier() {
  Sequential<float> net;
  net.emplace<Flatten>();
  net.emplace<Linear>(LinearOptions{.out_features = 2});
  net.build(Shape{1, 3, 2, 2}, 1);
  return net;
}

TEST(OnnxExport, NormalisationIsTheFirstTwoNodes) {
  Sequential<float> net = small_image_classifier();
  const InputInfo info{
      .class_names = {}, .mean = {0.25f, 0.5f, 0.75f}, .stddev = {2.0f, 4.0f, 0.5f}};
  const Message graph = Message(encode_onnx(net, info)).message(kModelGraph);
  const std::vector<Message> nodes = graph.messages(kGraphNode);
  ASSERT_GE(nodes.size(), 3u);
  EXPECT_EQ(nodes[0].text(kNodeOpType), "Sub");
  EXPECT_EQ(nodes[0].texts(kNodeInput), (std::vector<std::string>{"input", "input.mean"}));
  EXPECT_EQ(nodes[1].text(kNodeOpType), "Div");
  EXPECT_EQ(nodes[1].texts(kNodeInput),
            (std::vector<std::string>{"input/centered", "input.stddev"}));
  EXPECT_EQ(nodes[2].text(kNodeOpType), "Flatten");
  EXPECT_EQ(nodes[2].texts(kNodeInput), std::vector<std::string>{"input/normalized"});
  std::map<std::string, Message> initializers;
  for (const Message& t : graph.messages(kGraphInitializer))
    initializers.emplace(t.text(kTensorName), t);
  ASSERT_TRUE(initializers.count("input.mean") && initializers.count("input.stddev"));
  // Shaped (1, C, 1, 1) so that they broadcast over the batch and the image.
  EXPECT_EQ(initializers.at("input.mean").integers(kTensorDims),
            (std::vector<int64_t>{1, 3, 1, 1}));
  EXPECT_EQ(initializers.at("input.mean").text(kTensorRawData), float_bytes({0.25f, 0.5f, 0.75f}));
  EXPECT_EQ(initializers.at("input.stddev").text(kTensorRawData), float_bytes({2.0f, 4.0f, 0.5f}));

  // Without a normalisation the graph starts at the first layer.
  const Message plain = Message(encode_onnx(net, {})).message(kModelGraph);
  EXPECT_EQ(plain.messages(kGraphNode)[0].text(kNodeOpType), "Flatten");
  EXPECT_EQ(plain.messages(kGraphNode)[0].texts(kNodeInput), std::vector<std::string>{"input"});
}

// Expects encode_onnx to throw convnet::Error with a message containing every one of `parts`.
void expect_export_error(const Model<float>& model, const InputInfo& info,
                         const std::vector<std::string>& parts) {
  try {
    encode_onnx(model, info);
    ADD_FAILURE() << "expected an error containing '" << parts[0] << "'";
  } catch (const Error& e) {
    for (const std::string& part : parts)
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "'" << e.what() << "' lacks '" << part << "'";
  }
}

TEST(OnnxExport, NormalisationMustHaveOneValuePerChannel) {
  Sequential<float> net = small_image_classifier();
  expect_export_error(net, {.class_names = {}, .mean = {0.5f, 0.5f}, .stddev = {1.0f, 1.0f}},
                      {"2 means and 2 stddevs", "has 3 channels"});
}

// A layer the exporter has never heard of.
template <class T>
class Mystery final : public Activation<T> {
 public:
  std::string kind() const override { return "mystery"; }
  void forward(const Tensor<T>& x, Tensor<T>& y, Mode) override { y = x; }
  void backward(const Tensor<T>&, const Tensor<T>&, const Tensor<T>&, Tensor<T>*) override {}
};

template <class T>
class Blend final : public MergeLayer<T> {
 public:
  std::string kind() const override { return "blend"; }
  Shape build(std::span<const Shape> inputs) override { return inputs[0]; }
  void forward(std::span<const Tensor<T>* const> xs, Tensor<T>& y) override { y = *xs[0]; }
  void backward(std::span<const Tensor<T>* const>, const Tensor<T>&,
                std::span<Tensor<T>* const>) override {}
};

TEST(OnnxExport, UnsupportedLayersAreNamed) {
  Sequential<float> net;
  net.emplace<Linear>(LinearOptions{.out_features = 2});
  net.emplace<Mystery>();
  net.build(Shape{1, 4}, 1);
  expect_export_error(net, {}, {"layer '1'", "mystery", "has no ONNX mapping"});

  Graph<float> graph;
  graph.emplace<Linear>("fc", {"input"}, LinearOptions{.out_features = 2});
  graph.emplace<Blend>("mix", {"fc", "input"});
  graph.build(Shape{1, 2}, 1);
  expect_export_error(graph, {}, {"merge node 'mix'", "blend", "has no ONNX mapping"});
}

TEST(OnnxExport, OutputMustBeClassScores) {
  Sequential<float> net;
  net.emplace<Conv2d>(Conv2dOptions{.out_channels = 2, .kernel = 1});
  net.build(Shape{1, 1, 3, 3}, 1);
  expect_export_error(net, {}, {"output is Nx2x3x3", "(N, K)"});
}

// A regression model exports its values in the targets' units: logits·stddev + mean, the
// normalisation of the targets broadcast over the batch; a reconstruction its image in pixels.
TEST(OnnxExport, RegressionOutputsValuesInTheTargetsUnits) {
  Sequential<float> net = small_image_classifier();  // two outputs
  InputInfo info;
  info.target = "values";
  info.target_names = {"angle", "scale"};
  info.target_mean = {12.5f, -1.0f};
  info.target_stddev = {30.0f, 0.5f};
  const Message model(encode_onnx(net, info));
  const Message metadata = model.message(kModelMetadataProps);
  EXPECT_EQ(metadata.text(kEntryKey), "target_names");
  EXPECT_EQ(metadata.text(kEntryValue), "angle\nscale");
  const Message graph = model.message(kModelGraph);
  const std::vector<Message> nodes = graph.messages(kGraphNode);
  ASSERT_GE(nodes.size(), 2u);
  const Message& mul = nodes[nodes.size() - 2];
  const Message& add = nodes.back();
  EXPECT_EQ(mul.text(kNodeOpType), "Mul");
  EXPECT_EQ(mul.texts(kNodeInput), (std::vector<std::string>{"logits", "output.stddev"}));
  EXPECT_EQ(add.text(kNodeOpType), "Add");
  EXPECT_EQ(add.texts(kNodeOutput), std::vector<std::string>{"values"});
  std::vector<std::string> outputs;
  for (const Message& o : graph.messages(kGraphOutput)) outputs.push_back(o.text(kValueInfoName));
  EXPECT_EQ(outputs, (std::vector<std::string>{"logits", "values"}));
  bool found = false;
  for (const Message& t : graph.messages(kGraphInitializer))
    if (t.text(kTensorName) == "output.stddev") {
      found = true;
      EXPECT_EQ(t.integers(kTensorDims), (std::vector<int64_t>{1, 2}));
      EXPECT_EQ(t.text(kTensorRawData), float_bytes({30.0f, 0.5f}));
    }
  EXPECT_TRUE(found);
  // Without a normalisation the values are the logits.
  info.target_mean.clear();
  info.target_stddev.clear();
  const Message plain = Message(encode_onnx(net, info)).message(kModelGraph);
  EXPECT_EQ(plain.messages(kGraphNode).back().text(kNodeOpType), "Identity");
  // A reconstruction exports whatever shape its input has.
  Sequential<float> ae;
  ae.emplace<Conv2d>(Conv2dOptions{.out_channels = 1, .kernel = 3, .pad = 1});
  ae.emplace<Sigmoid>();
  ae.build(Shape{1, 1, 4, 4}, 1);
  InputInfo image_info;
  image_info.target = "input";
  const Message image = Message(encode_onnx(ae, image_info)).message(kModelGraph);
  EXPECT_EQ(value_dims(image.messages(kGraphOutput).back()),
            (std::vector<std::string>{"N", "1", "4", "4"}));
}

TEST(OnnxExport, ValueNamesMustNotCollide) {
  // A node called "logits" that is not the output would be a second value of that name.
  Graph<float> graph;
  graph.emplace<Linear>("logits", {"input"}, LinearOptions{.out_features = 2});
  graph.emplace<ReLU>("relu", {"logits"});
  graph.build(Shape{1, 2}, 1);
  expect_export_error(graph, {}, {"two values would be named 'logits'"});
}

// The model spec files of tests/onnx, which test_onnx.py also trains and runs.
std::unique_ptr<Model<float>> spec_model(const std::string& file) {
  auto model = load_model_spec<float>(std::string(CONVNET_ONNX_TEST_DIR) + "/" + file);
  model->build(Shape{2, 3, 10, 12}, 1);
  return model;
}

std::vector<std::string> op_types(const Message& graph) {
  std::vector<std::string> ops;
  for (const Message& n : graph.messages(kGraphNode)) ops.push_back(n.text(kNodeOpType));
  return ops;
}

TEST(OnnxExport, EveryLayerKindExports) {
  // Every kind the model spec knows (src/io/spec.cpp) appears in the two test models.
  const std::set<std::string> every_kind{"conv2d",
                                         "conv_transpose2d",
                                         "maxpool2d",
                                         "avgpool2d",
                                         "global_avgpool2d",
                                         "linear",
                                         "flatten",
                                         "dropout",
                                         "batchnorm1d",
                                         "batchnorm2d",
                                         "relu",
                                         "leaky_relu",
                                         "sigmoid",
                                         "tanh",
                                         "softmax",
                                         "gelu",
                                         "silu",
                                         "elu",
                                         "add",
                                         "concat"};
  std::set<std::string> covered;
  const auto sequential = spec_model("every_layer_sequential.txt");
  const auto graph = spec_model("every_merge_graph.txt");
  for (const auto* model : {sequential.get(), graph.get()})
    for (const NamedLayer<float>& l : model->named_layers()) covered.insert(l.layer->kind());
  const auto& g = dynamic_cast<const Graph<float>&>(*graph);
  for (size_t i = 0; i < g.size(); ++i)
    if (g.merge(i)) covered.insert(g.merge(i)->kind());
  EXPECT_EQ(covered, every_kind);

  const Message seq = Message(encode_onnx(*sequential, {})).message(kModelGraph);
  EXPECT_EQ(op_types(seq), (std::vector<std::string>{"Conv",        "BatchNormalization",
                                                     "Relu",        "Conv",
                                                     "LeakyRelu",   "ConvTranspose",
                                                     "Elu",         "MaxPool",
                                                     "Mul",         "Erf",
                                                     "Add",         "Mul",
                                                     "Mul",  // gelu
                                                     "AveragePool", "Sigmoid",
                                                     "Mul",  // silu
                                                     "Conv",        "Sigmoid",
                                                     "AveragePool", "Tanh",
                                                     "Flatten",     "Identity",
                                                     "Gemm",        "BatchNormalization",
                                                     "Gemm",        "Softmax"}));
  // Attributes of the layers whose options are not their defaults.
  const std::vector<Message> nodes = seq.messages(kGraphNode);
  auto ints = [&](size_t node, const std::string& name) {
    const std::optional<Message> a = find_attribute(nodes[node], name);
    return a ? a->integers(kAttributeInts) : std::vector<int64_t>{-999};
  };
  auto integer = [&](size_t node, const std::string& name) {
    const std::optional<Message> a = find_attribute(nodes[node], name);
    return a ? a->integer(kAttributeI) : -999;
  };
  EXPECT_EQ(ints(0, "strides"), (std::vector<int64_t>{2, 1}));
  EXPECT_EQ(ints(0, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  EXPECT_EQ(ints(3, "dilations"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ints(3, "pads"), (std::vector<int64_t>{2, 2, 2, 2}));
  EXPECT_EQ(integer(3, "group"), 4);
  EXPECT_EQ(ints(5, "output_padding"), (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(ints(5, "strides"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(integer(5, "group"), 2);
  EXPECT_EQ(ints(7, "kernel_shape"), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(ints(7, "strides"), (std::vector<int64_t>{2, 2}));  // no stride: the kernel
  EXPECT_EQ(integer(13, "count_include_pad"), 0);
  EXPECT_EQ(ints(16, "kernel_shape"), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(ints(16, "pads"), (std::vector<int64_t>{1, 0, 1, 0}));
  EXPECT_EQ(nodes[16].texts(kNodeInput).size(), 2u);  // bias=false: no third input
  EXPECT_EQ(integer(18, "count_include_pad"), 1);
  EXPECT_EQ(ints(18, "pads"), (std::vector<int64_t>{1, 1, 1, 1}));
  const std::optional<Message> alpha = find_attribute(nodes[4], "alpha");
  ASSERT_TRUE(alpha.has_value());
  EXPECT_EQ(alpha->one(kAttributeF).value, std::bit_cast<uint32_t>(0.1f));

  const Message merged = Message(encode_onnx(*graph, {})).message(kModelGraph);
  EXPECT_EQ(op_types(merged),
            (std::vector<std::string>{
                "Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Add",
                "Add",                                    // three inputs: two binary Adds
                "Conv", "Flatten", "Softmax", "Reshape",  // softmax over C·H·W
                "Concat", "GlobalAveragePool", "Flatten", "Softmax", "Concat", "Gemm", "Softmax"}));
  // The graph's input node ("image") reads the ONNX input.
  EXPECT_EQ(merged.messages(kGraphNode)[0].texts(kNodeInput)[0], "input");

  // Initializers are the checkpoint's tensors, by the checkpoint's names.
  for (const auto* model : {sequential.get(), graph.get()}) {
    const Message g2 = Message(encode_onnx(*model, {})).message(kModelGraph);
    std::set<std::string> names;
    for (const Message& t : g2.messages(kGraphInitializer)) names.insert(t.text(kTensorName));
    const bool seq_model = model == sequential.get();
    for (const Param<float>& p : model->params())
      EXPECT_TRUE(names.count(checkpoint_name(p.name, seq_model))) << p.name;
    for (const Buffer<float>& b : model->buffers())
      EXPECT_TRUE(names.count(checkpoint_name(b.name, seq_model))) << b.name;
  }
}

TEST(OnnxExport, BuiltInModelsExportEveryTensor) {
  for (const char* name : {"lenet", "vgg-small", "resnet-small"}) {
    SCOPED_TRACE(name);
    auto model = make_model<float>(name);
    model->build(std::string(name) == "lenet" ? Shape{1, 1, 28, 28} : Shape{1, 3, 32, 32}, 1);
    const Message graph = Message(encode_onnx(*model, {})).message(kModelGraph);
    // One initializer per parameter and buffer, and no more: none of these models has a layer
    // that needs an added constant.
    EXPECT_EQ(graph.messages(kGraphInitializer).size(),
              model->params().size() + model->buffers().size());
    EXPECT_EQ(op_types(graph).back(), "Softmax");
    EXPECT_EQ(value_dims(graph.messages(kGraphOutput)[0]), (std::vector<std::string>{"N", "10"}));
  }
}

TEST(OnnxExport, WritesTheFileAtomically) {
  Sequential<float> net = small_image_classifier();
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "convnet_onnx_test";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "model.onnx").string();
  export_onnx(net, {}, path);
  std::ifstream in(path, std::ios::binary);
  std::stringstream written;
  written << in.rdbuf();
  EXPECT_EQ(written.str(), encode_onnx(net, {}));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::remove_all(dir);
  try {
    export_onnx(net, {}, (dir / "missing" / "model.onnx").string());
    ADD_FAILURE() << "expected an error for a folder that does not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing/model.onnx"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace convnet
