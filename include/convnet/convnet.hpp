// convnet: the whole public API in one include.
#pragma once

#include "convnet/data.hpp"
#include "convnet/error.hpp"
#include "convnet/gradcheck.hpp"
#include "convnet/graph.hpp"
#include "convnet/image.hpp"
#include "convnet/layers.hpp"
#include "convnet/loss.hpp"
#include "convnet/model.hpp"
#include "convnet/optim.hpp"
#include "convnet/rng.hpp"
#include "convnet/runtime.hpp"
#include "convnet/shape.hpp"
#include "convnet/spec.hpp"
#include "convnet/tensor.hpp"
#include "convnet/train.hpp"
#include "convnet/zoo.hpp"
