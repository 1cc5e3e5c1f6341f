// Built-in models, unbuilt: the caller builds them for its input shape and batch size.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "convnet/graph.hpp"
#include "convnet/model.hpp"

namespace convnet {

// "lenet":        conv5x5(6, pad 2)-relu-maxpool2-conv5x5(16)-relu-maxpool2-flatten
//                 -fc120-relu-fc84-relu-fc<classes>
// "vgg-small":    [conv3x3(32)-relu-conv3x3(32)-relu-maxpool2] [conv3x3(64)-relu-conv3x3(64)-relu-
//                 maxpool2] [conv3x3(128)-relu-maxpool2]-flatten-fc256-relu-fc<classes>, every
//                 conv padded by 1.
// "resnet-small": a graph: stem conv3x3(32)-bn-relu; three stages of two residual blocks with
//                 32, 64 and 128 channels (`width`, twice and four times it), each block conv3x3-bn-relu-conv3x3-bn plus the identity
//                 (or, where a stage halves the size with stride 2, a 1x1 stride-2 conv-bn
//                 projection), then relu; global average pooling; fc<classes>. Convolutions
//                 before a BatchNorm have no bias. Node names follow a PyTorch module layout:
//                 stem.conv, stage2.0.conv1, stage2.0.shortcut.bn, fc, ...
// Input channels and the first fully connected layer's inputs are inferred at build time.
// Unbuilt: the caller builds them for its input shape and batch size. Throws convnet::Error
// listing the known names for an unknown one.
template <class T>
std::unique_ptr<Model<T>> make_model(const std::string& name, int64_t classes = 10);

// The sequential built-ins (lenet, vgg-small) as Sequential, for code that walks their layers.
template <class T>
Sequential<T> make_sequential(const std::string& name, int64_t classes = 10);

template <class T>
Graph<T> make_resnet_small(int64_t classes = 10, int64_t width = 32);

std::vector<std::string> model_names();

}  // namespace convnet
