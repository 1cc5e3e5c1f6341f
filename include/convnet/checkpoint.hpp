// Checkpoints: one safetensors file (convnet/safetensors.hpp) holding a model's spec, every
// parameter and buffer, the optimizer's state and step count, the epochs completed, the seed and
// the state of every layer's own random stream, so that training resumes bit for bit, and the
// weights open in PyTorch under its module names. The layout is in docs/model-spec.md.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convnet/model.hpp"
#include "convnet/optim.hpp"
#include "convnet/safetensors.hpp"

namespace convnet {

// What inference needs to know about the data a model was trained on: the class names (empty:
// none recorded) and the per-channel normalisation applied to inputs scaled to [0, 1] (empty:
// none). Stored as metadata "input.class_names" (one name per line), "input.mean" and
// "input.stddev" (comma-separated).
struct InputInfo {
  std::vector<std::string> class_names;
  std::vector<float> mean, stddev;
};

struct TrainingState {
  int64_t epoch = 0;   // epochs completed
  uint64_t seed = 0;   // the run's seed (initialisation, shuffling, augmentation)
  // The caller's own strings (the CLI keeps its flags here), stored as "extra.<key>".
  std::map<std::string, std::string> extra;
};

// Writes a checkpoint of a built model atomically (write_file_atomic). `optimizer` may be null
// (weights only). Tensors are named as checkpoint_name() says; optimizer state as
// "optimizer.<tensor>.<state>" ("optimizer.fc.weight.exp_avg").
template <class T>
void save_checkpoint(const std::string& path, const Model<T>& model, const Optimizer<T>* optimizer,
                     const TrainingState& state);

template <class T>
struct Checkpoint {
  std::string path;
  std::unique_ptr<Model<T>> model;  // built, with the saved parameters, buffers and RNG states
  TrainingState state;
  std::string optimizer;            // the optimizer whose state the file holds ("" if none)
  int64_t optimizer_steps = 0;
  SafeTensors file;                 // the file as read, for restore_optimizer
};

// Reads a checkpoint: parses its spec, builds the model for the saved input shape (with batch
// `batch` when > 0), and sets every parameter, buffer and random stream. Throws convnet::Error
// naming the file and what is wrong: a malformed file (see decode_safetensors), a missing,
// unexpected or misshapen tensor, a dtype other than T's, or metadata that is absent or bad.
template <class T>
Checkpoint<T> load_checkpoint(const std::string& path, int64_t batch = 0);

// Continues `optimizer` from the checkpoint's state and step count. Throws convnet::Error if the
// file holds another optimizer's state (or different state, as SGD with and without momentum).
template <class T>
void restore_optimizer(const Checkpoint<T>& checkpoint, Optimizer<T>& optimizer);

// The name a checkpoint gives a model tensor: a Sequential's "layer3.weight" becomes "3.weight"
// (PyTorch's nn.Sequential); Graph node names already are module paths and stay.
std::string checkpoint_name(const std::string& model_name, bool sequential);

}  // namespace convnet
