// Built-in models, unbuilt: the caller builds them for its input shape and batch size.
#pragma once

#include <string>
#include <vector>

#include "convnet/model.hpp"

namespace convnet {

// "lenet":     conv5x5(6, pad 2)-relu-maxpool2-conv5x5(16)-relu-maxpool2-flatten
//              -fc120-relu-fc84-relu-fc<classes>
// "vgg-small": [conv3x3(32)-relu-conv3x3(32)-relu-maxpool2] [conv3x3(64)-relu-conv3x3(64)-relu-
//              maxpool2] [conv3x3(128)-relu-maxpool2]-flatten-fc256-relu-fc<classes>, every conv
//              padded by 1.
// Input channels and the first fully connected layer's inputs are inferred at build time.
// Throws convnet::Error listing the known names for an unknown one.
template <class T>
Sequential<T> make_model(const std::string& name, int64_t classes = 10);

std::vector<std::string> model_names();

}  // namespace convnet
