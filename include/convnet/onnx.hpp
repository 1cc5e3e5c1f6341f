// ONNX export: a trained model as an ONNX file (https://onnx.ai) for inference in other
// runtimes. The file is written with a small hand-written protobuf encoder (no protobuf library);
// the mapping of every layer to ONNX operators is in docs/export.md.
//
// The exported graph computes what evaluation-mode forward computes (Dropout is the identity,
// BatchNorm uses its running statistics) on the input `convnet predict` starts from:
//   input          float [N, C, H, W] (or [N, F]) pixels in [0, 1], N symbolic ("N")
//   (Sub mean, Div stddev, per channel, when InputInfo records a normalisation)
//   logits         float [N, K], the model's output
//   probabilities  float [N, K], Softmax(logits) over axis 1
// Initializers carry the checkpoint's tensor names ("stage1.0.conv1.weight", "0.bias"), so they
// match the safetensors file and PyTorch's module paths.
#pragma once

#include <cstdint>
#include <string>

#include "convnet/checkpoint.hpp"
#include "convnet/model.hpp"

namespace convnet {

// Opset 13 has every operator needed (Erf for GELU, Softmax on one axis); IR version 7 is the
// one that opset came with, so older ONNX tools read the file too.
constexpr int64_t kOnnxOpsetVersion = 13;
constexpr int64_t kOnnxIrVersion = 7;

// The serialized ModelProto of a built model. Throws convnet::Error naming the layer when one has
// no ONNX mapping, and when the output is not (N, K) or the normalisation does not have one value
// per input channel.
std::string encode_onnx(const Model<float>& model, const InputInfo& input);

// encode_onnx(), written to `path` atomically (write_file_atomic): on failure `path` is left as
// it was and the error names it.
void export_onnx(const Model<float>& model, const InputInfo& input, const std::string& path);

}  // namespace convnet
