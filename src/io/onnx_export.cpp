// ONNX export: walks a built model's layers in evaluation order and writes one ONNX node per
// layer (a few for the layers opset 13 has no single operator for), the layers' tensors as
// initializers under their checkpoint names, and the model around them. The encoding is
// protobuf_wire.hpp's; the field numbers are those of onnx.proto, quoted below by message.
#include <cmath>
#include <map>
#include <set>
#include <span>
#include <vector>

#include "convnet/graph.hpp"
#include "convnet/onnx.hpp"
#include "convnet/safetensors.hpp"
#include "layers/common.hpp"
#include "layers/pool_common.hpp"
#include "io/protobuf_wire.hpp"

namespace convnet {
namespace {

using protobuf::MessageWriter;

// --- onnx.proto field numbers (stable since IR version 3) -----------------------------------
namespace model_proto {
constexpr uint32_t ir_version = 1, producer_name = 2, doc_string = 6, graph = 7, opset_import = 8,
                   metadata_props = 14;
}
namespace operator_set_id_proto {
constexpr uint32_t domain = 1, version = 2;
}
namespace string_string_entry_proto {
constexpr uint32_t key = 1, value = 2;
}
namespace graph_proto {
constexpr uint32_t node = 1, name = 2, initializer = 5, input = 11, output = 12;
}
namespace node_proto {
constexpr uint32_t input = 1, output = 2, name = 3, op_type = 4, attribute = 5;
}
namespace attribute_proto {
constexpr uint32_t name = 1, f = 2, i = 3, ints = 8, type = 20;
// AttributeProto.AttributeType
constexpr uint64_t kFloat = 1, kInt = 2, kInts = 7;
}  // namespace attribute_proto
namespace tensor_proto {
constexpr uint32_t dims = 1, data_type = 2, name = 8, raw_data = 9;
// TensorProto.DataType
constexpr uint64_t kFloat = 1, kInt64 = 7;
}  // namespace tensor_proto
namespace value_info_proto {
constexpr uint32_t name = 1, type = 2;
}
namespace type_proto {
constexpr uint32_t tensor_type = 1;
namespace tensor {  // TypeProto.Tensor
constexpr uint32_t elem_type = 1, shape = 2;
}
}  // namespace type_proto
namespace tensor_shape_proto {
constexpr uint32_t dim = 1;
namespace dimension {  // TensorShapeProto.Dimension
constexpr uint32_t dim_value = 1, dim_param = 2;
}
}  // namespace tensor_shape_proto

// The symbolic batch dimension of the graph's input and outputs.
constexpr const char* kBatchDim = "N";
constexpr int64_t kBatch = -1;  // stands for kBatchDim in a list of dimensions

struct Attribute {
  std::string name;
  uint64_t type;
  float f = 0;
  int64_t i = 0;
  std::vector<int64_t> ints;
};
Attribute float_attribute(std::string name, double value) {
  return {std::move(name), attribute_proto::kFloat, static_cast<float>(value), 0, {}};
}
Attribute int_attribute(std::string name, int64_t value) {
  return {std::move(name), attribute_proto::kInt, 0, value, {}};
}
Attribute ints_attribute(std::string name, std::vector<int64_t> values) {
  return {std::move(name), attribute_proto::kInts, 0, 0, std::move(values)};
}

std::vector<int64_t> dims_of(const Shape& shape) {
  std::vector<int64_t> d;
  for (int i = 0; i < shape.rank(); ++i) d.push_back(shape[i]);
  return d;
}

// A GraphProto being written: nodes in order, initializers, inputs and outputs. Every value (a
// node's output, an initializer, the input) is defined once; defining a name twice is an error,
// since two values of one name would silently rewire the graph.
class GraphWriter {
 public:
  explicit GraphWriter(std::map<std::string, const Tensor<float>*> tensors)
      : tensors_(std::move(tensors)) {}

  void node(const std::string& op_type, const std::vector<std::string>& inputs,
            const std::string& output, const std::string& name,
            const std::vector<Attribute>& attributes = {}) {
    define(output, name);
    MessageWriter n;
    for (const std::string& in : inputs) n.bytes_field(node_proto::input, in);
    n.bytes_field(node_proto::output, output);
    n.bytes_field(node_proto::name, name);
    n.bytes_field(node_proto::op_type, op_type);
    for (const Attribute& a : attributes) {
      MessageWriter m;
      m.bytes_field(attribute_proto::name, a.name);
      m.varint_field(attribute_proto::type, a.type);
      if (a.type == attribute_proto::kFloat) m.float_field(attribute_proto::f, a.f);
      if (a.type == attribute_proto::kInt) m.int_field(attribute_proto::i, a.i);
      for (int64_t v : a.ints) m.int_field(attribute_proto::ints, v);
      n.message_field(node_proto::attribute, m);
    }
    nodes_.message_field(graph_proto::node, n);
  }

  // A float initializer: `values` little-endian in raw_data.
  void float_initializer(const std::string& name, const std::vector<int64_t>& dims,
                         std::span<const float> values) {
    std::string raw;
    raw.reserve(values.size() * 4);
    for (float v : values) protobuf::append_float_le(raw, v);
    initializer(name, dims, tensor_proto::kFloat, raw);
  }
  void int64_initializer(const std::string& name, std::span<const int64_t> values) {
    std::string raw;
    for (int64_t v : values)
      for (int shift = 0; shift < 64; shift += 8)
        raw.push_back(static_cast<char>(static_cast<uint64_t>(v) >> shift));
    initializer(name, {static_cast<int64_t>(values.size())}, tensor_proto::kInt64, raw);
  }

  // The model tensor `name` (a checkpoint name: "3.weight"), as an initializer of its own shape.
  std::string model_tensor(const std::string& name) {
    const auto it = tensors_.find(name);
    CONVNET_CHECK(it != tensors_.end(), "onnx export: the model has no tensor '", name, "'");
    const Tensor<float>& t = *it->second;
    float_initializer(name, dims_of(t.shape()),
                      std::span<const float>(t.data(), static_cast<size_t>(t.numel())));
    return name;
  }

  // A scalar constant, written once however many nodes read it.
  std::string scalar(const std::string& name, float value) {
    if (!defined_.count(name)) float_initializer(name, {}, std::span<const float>(&value, 1));
    return name;
  }

  void input(const std::string& name, const std::vector<int64_t>& dims) {
    define(name, "the graph input");
    inputs_.message_field(graph_proto::input, value_info(name, dims));
  }
  void output(const std::string& name, const std::vector<int64_t>& dims) {
    outputs_.message_field(graph_proto::output, value_info(name, dims));
  }

  // The GraphProto's bytes: its name, then each kind of field. The fields of a message may come
  // in any order, so each kind is collected in a writer of its own and concatenated.
  std::string finish(const std::string& graph_name) const {
    MessageWriter name;
    name.bytes_field(graph_proto::name, graph_name);
    return name.bytes() + nodes_.bytes() + initializers_.bytes() + inputs_.bytes() +
           outputs_.bytes();
  }

 private:
  void define(const std::string& name, const std::string& by) {
    CONVNET_CHECK(defined_.insert(name).second, "onnx export: two values would be named '", name,
                  "' (the second from ", by, "); rename that node");
  }

  void initializer(const std::string& name, const std::vector<int64_t>& dims, uint64_t data_type,
                   const std::string& raw) {
    define(name, "an initializer");
    MessageWriter t;
    for (int64_t d : dims) t.int_field(tensor_proto::dims, d);
    t.varint_field(tensor_proto::data_type, data_type);
    t.bytes_field(tensor_proto::name, name);
    t.bytes_field(tensor_proto::raw_data, raw);
    initializers_.message_field(graph_proto::initializer, t);
  }

  // ValueInfoProto{name, TypeProto{tensor_type: {elem_type FLOAT, shape}}}.
  static MessageWriter value_info(const std::string& name, const std::vector<int64_t>& dims) {
    MessageWriter shape;
    for (int64_t d : dims) {
      MessageWriter dim;
      if (d == kBatch)
        dim.bytes_field(tensor_shape_proto::dimension::dim_param, kBatchDim);
      else
        dim.int_field(tensor_shape_proto::dimension::dim_value, d);
      shape.message_field(tensor_shape_proto::dim, dim);
    }
    MessageWriter tensor;
    tensor.varint_field(type_proto::tensor::elem_type, tensor_proto::kFloat);
    tensor.message_field(type_proto::tensor::shape, shape);
    MessageWriter type;
    type.message_field(type_proto::tensor_type, tensor);
    MessageWriter info;
    info.bytes_field(value_info_proto::name, name);
    info.message_field(value_info_proto::type, type);
    return info;
  }

  std::map<std::string, const Tensor<float>*> tensors_;
  std::set<std::string> defined_;
  MessageWriter nodes_, initializers_, inputs_, outputs_;
};

// The nodes of one layer reading value `x` (of shape `in`) and writing value `y`. `module` is
// the layer's checkpoint name ("3", "stage1.0.conv1"): its tensors are "<module>.weight" and so
// on, and the nodes are named after it.
void export_layer(GraphWriter& g, const Layer<float>& layer, const std::string& module,
                  const std::string& x, const Shape& in, const std::string& y) {
  using detail::pick;
  if (const auto* conv = dynamic_cast<const Conv2d<float>*>(&layer)) {
    // Conv: the same cross-correlation, weights (OC, IC / group, KH, KW); pads are
    // [top, left, bottom, right], ours symmetric.
    const Conv2dOptions& o = conv->options();
    const int64_t PH = pick(o.pad_h, o.pad), PW = pick(o.pad_w, o.pad);
    std::vector<std::string> inputs{x, g.model_tensor(module + ".weight")};
    if (o.bias) inputs.push_back(g.model_tensor(module + ".bias"));
    g.node(
        "Conv", inputs, y, module,
        {ints_attribute("kernel_shape", {pick(o.kernel_h, o.kernel), pick(o.kernel_w, o.kernel)}),
         ints_attribute("strides", {pick(o.stride_h, o.stride), pick(o.stride_w, o.stride)}),
         ints_attribute("pads", {PH, PW, PH, PW}),
         ints_attribute("dilations",
                        {pick(o.dilation_h, o.dilation), pick(o.dilation_w, o.dilation)}),
         int_attribute("group", o.groups)});
    return;
  }
  if (const auto* deconv = dynamic_cast<const ConvTranspose2d<float>*>(&layer)) {
    // ConvTranspose: weights (IC, OC / group, KH, KW) as ours; its output size
    // S·(H − 1) + output_padding + D·(K − 1) + 1 − 2P is ours too.
    const ConvTranspose2dOptions& o = deconv->options();
    const int64_t PH = pick(o.pad_h, o.pad), PW = pick(o.pad_w, o.pad);
    const int64_t OPH = pick(o.output_padding_h, o.output_padding);
    const int64_t OPW = pick(o.output_padding_w, o.output_padding);
    std::vector<std::string> inputs{x, g.model_tensor(module + ".weight")};
    if (o.bias) inputs.push_back(g.model_tensor(module + ".bias"));
    g.node(
        "ConvTranspose", inputs, y, module,
        {ints_attribute("kernel_shape", {pick(o.kernel_h, o.kernel), pick(o.kernel_w, o.kernel)}),
         ints_attribute("strides", {pick(o.stride_h, o.stride), pick(o.stride_w, o.stride)}),
         ints_attribute("pads", {PH, PW, PH, PW}), ints_attribute("output_padding", {OPH, OPW}),
         ints_attribute("dilations",
                        {pick(o.dilation_h, o.dilation), pick(o.dilation_w, o.dilation)}),
         int_attribute("group", o.groups)});
    return;
  }
  if (const auto* pool = dynamic_cast<const MaxPool2d<float>*>(&layer)) {
    // MaxPool pads with −∞ as ours does; both round the output size down (ceil_mode 0).
    const detail::PoolGeometry p = detail::resolve_pool(pool->options(), "maxpool2d");
    g.node("MaxPool", {x}, y, module,
           {ints_attribute("kernel_shape", {p.KH, p.KW}), ints_attribute("strides", {p.SH, p.SW}),
            ints_attribute("pads", {p.PH, p.PW, p.PH, p.PW})});
    return;
  }
  if (const auto* pool = dynamic_cast<const AvgPool2d<float>*>(&layer)) {
    // count_include_pad = 1 divides every window by KH·KW (our count_pad=true), 0 by the
    // elements inside the image.
    const detail::PoolGeometry p = detail::resolve_pool(pool->options(), "avgpool2d");
    g.node("AveragePool", {x}, y, module,
           {ints_attribute("kernel_shape", {p.KH, p.KW}), ints_attribute("strides", {p.SH, p.SW}),
            ints_attribute("pads", {p.PH, p.PW, p.PH, p.PW}),
            int_attribute("count_include_pad", pool->options().count_pad ? 1 : 0)});
    return;
  }
  if (dynamic_cast<const GlobalAvgPool2d<float>*>(&layer)) {
    g.node("GlobalAveragePool", {x}, y, module);
    return;
  }
  if (const auto* linear = dynamic_cast<const Linear<float>*>(&layer)) {
    // Gemm: y = x·Bᵀ + C with B = weight (OUT, IN) when transB = 1.
    std::vector<std::string> inputs{x, g.model_tensor(module + ".weight")};
    if (linear->options().bias) inputs.push_back(g.model_tensor(module + ".bias"));
    g.node("Gemm", inputs, y, module, {int_attribute("transB", 1)});
    return;
  }
  if (dynamic_cast<const Flatten<float>*>(&layer)) {
    // Flatten(axis 1): (N, C, H, W) -> (N, C·H·W) in the same element order.
    g.node("Flatten", {x}, y, module, {int_attribute("axis", 1)});
    return;
  }
  if (const auto* bn = dynamic_cast<const BatchNorm<float>*>(&layer)) {
    // Inference: y = scale·(x − mean)/sqrt(var + epsilon) + B over axis 1, with the running
    // statistics, as our Mode::Eval. Without affine, scale = 1 and B = 0 are written out.
    const BatchNormOptions& o = bn->options();
    std::string scale, shift;
    if (o.affine) {
      scale = g.model_tensor(module + ".weight");
      shift = g.model_tensor(module + ".bias");
    } else {
      const std::vector<float> ones(static_cast<size_t>(in[1]), 1.0f);
      const std::vector<float> zeros(static_cast<size_t>(in[1]), 0.0f);
      scale = module + "/unit_scale";
      shift = module + "/zero_shift";
      g.float_initializer(scale, {in[1]}, ones);
      g.float_initializer(shift, {in[1]}, zeros);
    }
    g.node("BatchNormalization",
           {x, scale, shift, g.model_tensor(module + ".running_mean"),
            g.model_tensor(module + ".running_var")},
           y, module, {float_attribute("epsilon", o.eps)});
    return;
  }
  if (dynamic_cast<const Dropout<float>*>(&layer)) {
    g.node("Identity", {x}, y, module);  // evaluation mode: Dropout passes x through
    return;
  }
  if (dynamic_cast<const ReLU<float>*>(&layer)) {
    g.node("Relu", {x}, y, module);
    return;
  }
  if (const auto* leaky = dynamic_cast<const LeakyReLU<float>*>(&layer)) {
    g.node("LeakyRelu", {x}, y, module, {float_attribute("alpha", leaky->slope())});
    return;
  }
  if (const auto* elu = dynamic_cast<const ELU<float>*>(&layer)) {
    g.node("Elu", {x}, y, module, {float_attribute("alpha", elu->alpha())});
    return;
  }
  if (dynamic_cast<const Sigmoid<float>*>(&layer)) {
    g.node("Sigmoid", {x}, y, module);
    return;
  }
  if (dynamic_cast<const Tanh<float>*>(&layer)) {
    g.node("Tanh", {x}, y, module);
    return;
  }
  if (dynamic_cast<const GELU<float>*>(&layer)) {
    // Opset 13 has no Gelu: ours, x·Φ(x) = x·0.5·(1 + erf(x·(1/√2))), operator by operator.
    const std::string scaled = module + "/x_over_sqrt2", erf = module + "/erf",
                      cdf2 = module + "/one_plus_erf", half_y = module + "/x_times";
    g.node("Mul", {x, g.scalar("const/inv_sqrt2", static_cast<float>(1 / std::sqrt(2.0)))}, scaled,
           scaled);
    g.node("Erf", {scaled}, erf, erf);
    g.node("Add", {erf, g.scalar("const/one", 1.0f)}, cdf2, cdf2);
    g.node("Mul", {x, cdf2}, half_y, half_y);
    g.node("Mul", {half_y, g.scalar("const/half", 0.5f)}, y, module);
    return;
  }
  if (dynamic_cast<const SiLU<float>*>(&layer)) {
    // x·σ(x).
    const std::string sigmoid = module + "/sigmoid";
    g.node("Sigmoid", {x}, sigmoid, sigmoid);
    g.node("Mul", {x, sigmoid}, y, module);
    return;
  }
  if (dynamic_cast<const Softmax<float>*>(&layer)) {
    // Ours normalises over all of a sample's elements; ONNX's Softmax (opset 13) over one axis.
    // For (N, F) that is axis 1; otherwise flatten to (N, C·H·W), softmax, and reshape back
    // (Reshape's 0 copies the batch dimension).
    if (in.rank() == 2) {
      g.node("Softmax", {x}, y, module, {int_attribute("axis", 1)});
      return;
    }
    const std::string flat = module + "/flat", soft = module + "/softmax",
                      shape = module + "/shape";
    std::vector<int64_t> back = dims_of(in);
    back[0] = 0;
    g.int64_initializer(shape, back);
    g.node("Flatten", {x}, flat, flat, {int_attribute("axis", 1)});
    g.node("Softmax", {flat}, soft, soft, {int_attribute("axis", 1)});
    g.node("Reshape", {soft, shape}, y, module);
    return;
  }
  throw Error(detail::concat("onnx export: layer '", module, "' (", layer.describe(),
                             ") has no ONNX mapping"));
}

// A merge node of a Graph: Add and Concat.
void export_merge(GraphWriter& g, const MergeLayer<float>& merge, const std::string& module,
                  const std::vector<std::string>& xs, const std::string& y) {
  if (dynamic_cast<const Add<float>*>(&merge)) {
    // ONNX's Add is binary: ((x0 + x1) + x2) + ..., the order ours sums in.
    std::string sum = xs[0];
    for (size_t i = 1; i < xs.size(); ++i) {
      const std::string out = i + 1 == xs.size() ? y : detail::concat(module, "/sum", i);
      g.node("Add", {sum, xs[i]}, out, i + 1 == xs.size() ? module : out);
      sum = out;
    }
    return;
  }
  if (dynamic_cast<const Concat<float>*>(&merge)) {
    g.node("Concat", xs, y, module, {int_attribute("axis", 1)});
    return;
  }
  throw Error(detail::concat("onnx export: merge node '", module, "' (", merge.describe(),
                             ") has no ONNX mapping"));
}

}  // namespace

std::string encode_onnx(const Model<float>& model, const InputInfo& info) {
  CONVNET_CHECK(model.built(), "onnx export: the model must be built first");
  const auto* sequential = dynamic_cast<const Sequential<float>*>(&model);
  const auto* graph = dynamic_cast<const Graph<float>*>(&model);
  CONVNET_CHECK(sequential || graph, "onnx export: only Sequential and Graph models export");
  const Shape& input_shape = model.input_shape();
  const Shape& output_shape = model.output_shape();
  // A classifier exports logits and probabilities; a regression model logits and its values in
  // the targets' units; a reconstruction (any output shape) logits and the image in pixels.
  const bool values = info.target == "values", reconstruction = info.target == "input";
  CONVNET_CHECK(output_shape.rank() == 2 || reconstruction, "onnx export: the model's output is ",
                output_shape.str_per_batch(),
                "; exporting needs (N, K) class scores or regression values");
  if (reconstruction)
    CONVNET_CHECK(output_shape.with_batch(1) == input_shape.with_batch(1),
                  "onnx export: a reconstruction's output ", output_shape.str_per_batch(),
                  " must have the input's shape ", input_shape.str_per_batch());

  // Every parameter and buffer by checkpoint name, which initializers take.
  std::map<std::string, const Tensor<float>*> tensors;
  for (const Param<float>& p : model.params())
    tensors[checkpoint_name(p.name, sequential != nullptr)] = p.value;
  for (const Buffer<float>& b : model.buffers())
    tensors[checkpoint_name(b.name, sequential != nullptr)] = b.value;
  GraphWriter g(std::move(tensors));

  std::vector<int64_t> input_dims = dims_of(input_shape);
  input_dims[0] = kBatch;
  g.input("input", input_dims);
  std::string network_input = "input";
  if (!info.mean.empty() || !info.stddev.empty()) {
    // (x − mean) / stddev per channel, with mean and stddev shaped (1, C, 1, 1) to broadcast.
    const int64_t channels = input_shape[1];
    CONVNET_CHECK(static_cast<int64_t>(info.mean.size()) == channels &&
                      static_cast<int64_t>(info.stddev.size()) == channels,
                  "onnx export: the normalisation has ", info.mean.size(), " means and ",
                  info.stddev.size(), " stddevs but the input ", input_shape.str_per_batch(),
                  " has ", channels, " channels");
    std::vector<int64_t> dims(static_cast<size_t>(input_shape.rank()), 1);
    dims[1] = channels;
    g.float_initializer("input.mean", dims, info.mean);
    g.float_initializer("input.stddev", dims, info.stddev);
    g.node("Sub", {"input", "input.mean"}, "input/centered", "input/centered");
    g.node("Div", {"input/centered", "input.stddev"}, "input/normalized", "input/normalized");
    network_input = "input/normalized";
  }

  // Each layer writes the value named after its module, the output layer "logits".
  if (sequential) {
    const std::vector<NamedLayer<float>> layers = sequential->named_layers();
    std::string x = network_input;
    for (size_t i = 0; i < layers.size(); ++i) {
      const std::string module = checkpoint_name(layers[i].name, true);
      const std::string y = i + 1 == layers.size() ? "logits" : module;
      const Shape& in = i == 0 ? input_shape : sequential->layer_output_shape(i - 1);
      export_layer(g, *layers[i].layer, module, x, in, y);
      x = y;
    }
  } else {
    std::map<std::string, std::string> value_of{{graph->input_name(), network_input}};
    std::map<std::string, Shape> shape_of{{graph->input_name(), input_shape}};
    for (size_t i = 0; i < graph->size(); ++i) {
      const std::string& name = graph->node_name(i);
      const std::string y = name == graph->output_name() ? "logits" : name;
      std::vector<std::string> xs;
      for (const std::string& in : graph->node_inputs(i)) xs.push_back(value_of.at(in));
      if (const Layer<float>* layer = graph->layer(i))
        export_layer(g, *layer, name, xs[0], shape_of.at(graph->node_inputs(i)[0]), y);
      else
        export_merge(g, *graph->merge(i), name, xs, y);
      value_of[name] = y;
      shape_of[name] = graph->node_output_shape(i);
    }
  }
  std::vector<int64_t> output_dims = dims_of(output_shape);
  output_dims[0] = kBatch;
  g.output("logits", output_dims);
  if (values || reconstruction) {
    // values = logits·stddev + mean, per output (values) or per channel (a reconstruction of a
    // normalised input), broadcast from (1, K) or (1, C, 1, 1); the logits as they are when
    // nothing was normalised.
    const std::vector<float>& mean = values ? info.target_mean : info.mean;
    const std::vector<float>& stddev = values ? info.target_stddev : info.stddev;
    if (mean.empty()) {
      g.node("Identity", {"logits"}, "values", "values");
    } else {
      CONVNET_CHECK(static_cast<int64_t>(mean.size()) == output_shape[1] &&
                        mean.size() == stddev.size(),
                    "onnx export: the target normalisation has ", mean.size(), " means and ",
                    stddev.size(), " stddevs for ", output_shape[1], " outputs");
      std::vector<int64_t> dims(static_cast<size_t>(output_shape.rank()), 1);
      dims[1] = output_shape[1];
      g.float_initializer("output.stddev", dims, stddev);
      g.float_initializer("output.mean", dims, mean);
      g.node("Mul", {"logits", "output.stddev"}, "output/scaled", "output/scaled");
      g.node("Add", {"output/scaled", "output.mean"}, "values", "values");
    }
    g.output("values", output_dims);
  } else {
    g.node("Softmax", {"logits"}, "probabilities", "probabilities", {int_attribute("axis", 1)});
    g.output("probabilities", output_dims);
  }

  MessageWriter out;
  out.int_field(model_proto::ir_version, kOnnxIrVersion);
  out.bytes_field(model_proto::producer_name, "convnet");
  out.bytes_field(model_proto::doc_string,
                  values ? "input: pixels scaled to [0, 1], before normalisation; logits: the "
                           "model's output; values: the logits in the targets' units"
                  : reconstruction
                      ? "input: pixels scaled to [0, 1], before normalisation; logits: the "
                        "model's output; values: the reconstructed image, pixels in [0, 1]"
                      : "input: pixels scaled to [0, 1], before normalisation; logits: the "
                        "model's output; probabilities: softmax(logits)");
  out.bytes_field(model_proto::graph, g.finish("convnet"));
  MessageWriter opset;
  opset.bytes_field(operator_set_id_proto::domain, "");  // the default domain, ai.onnx
  opset.int_field(operator_set_id_proto::version, kOnnxOpsetVersion);
  out.message_field(model_proto::opset_import, opset);
  if (values && !info.target_names.empty()) {
    std::string names;
    for (const std::string& n : info.target_names) names += (names.empty() ? "" : "\n") + n;
    MessageWriter entry;
    entry.bytes_field(string_string_entry_proto::key, "target_names");
    entry.bytes_field(string_string_entry_proto::value, names);
    out.message_field(model_proto::metadata_props, entry);
  } else if (!values && !reconstruction && !info.class_names.empty()) {
    std::string names;
    for (const std::string& n : info.class_names) names += (names.empty() ? "" : "\n") + n;
    MessageWriter entry;
    entry.bytes_field(string_string_entry_proto::key, "class_names");
    entry.bytes_field(string_string_entry_proto::value, names);
    out.message_field(model_proto::metadata_props, entry);
  }
  return out.bytes();
}

void export_onnx(const Model<float>& model, const InputInfo& input, const std::string& path) {
  write_file_atomic(path, encode_onnx(model, input));
}

}  // namespace convnet
