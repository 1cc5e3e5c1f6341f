// Checkpoints: one safetensors file (convnet/safetensors.hpp) holding a model's spec, every
// parameter and buffer, the optimizer's state and step count, the epochs completed, the seed and
// the state of every layer's own random stream, so that training resumes bit for bit, and the
// weights open in PyTorch under its module names. The layout is in docs/model-spec.md.
//
// Integrity (format convnet.checkpoint/2): the metadata records a CRC-32 of every tensor's bytes
// ("crc32.<tensor>") and one of the header itself ("crc32": the file's first 8 + N bytes, the
// length and the header with its padding, as they are with that value written as "00000000"),
// each as 8 lowercase hex digits. Every load checks both, so a flipped bit anywhere in the header
// or the data is an error naming the tensor; non-finite values and unknown metadata keys are
// errors too. convnet.checkpoint/1 files (written before the checksums) still load, with a note.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
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
  // What the output was trained to: "" or "labels" (classes), "values" (regression targets,
  // named; normalised when target_mean/target_stddev are set, so a prediction p means
  // p·target_stddev[k] + target_mean[k]) or "input" (a reconstruction of the input).
  std::string target{};
  std::vector<std::string> target_names{};
  std::vector<float> target_mean{}, target_stddev{};
};

struct TrainingState {
  int64_t epoch = 0;  // epochs completed
  int64_t step = 0;   // batches run of the next epoch (a run stopped mid-epoch), else 0
  uint64_t seed = 0;  // the run's seed (initialisation, shuffling, augmentation)
  // The caller's own strings (the CLI keeps its flags here), stored as "extra.<key>".
  std::map<std::string, std::string> extra;
  InputInfo input;
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
  std::string optimizer;  // the optimizer whose state the file holds ("" if none)
  int64_t optimizer_steps = 0;
  SafeTensors file;  // the file as read, for restore_optimizer
  // What the user should hear about the file that is no error, one line each, naming the file
  // ("PATH: ..."): today only that a convnet.checkpoint/1 file carries no checksums. The library
  // prints nothing; the CLI prints each as "convnet CMD: warning: LINE".
  std::vector<std::string> notes;
};

// Reads a checkpoint: checks the file (decode_checkpoint), parses its spec, builds the model for
// the saved input shape (with batch `batch` when > 0), and sets every parameter, buffer and
// random stream. Throws convnet::Error naming the file and what is wrong: anything
// decode_checkpoint rejects, a missing, unexpected or misshapen tensor, a dtype other than T's,
// metadata that is absent or bad, or a spec that does not parse or build.
template <class T>
Checkpoint<T> load_checkpoint(const std::string& path, int64_t batch = 0);

// The checks of a checkpoint file that need no model, in this order: the container
// (decode_safetensors), the "format" key, then for convnet.checkpoint/2 the header's checksum and
// every tensor's, then that every metadata key is one the format defines and that every value of
// every tensor is finite. `source` (a path) names the file in errors, which also name the tensor
// or key and, for a checksum, the CRC-32 recorded and the one computed. A convnet.checkpoint/1
// file has no checksums to check: a line saying so is appended to `notes` when given.
SafeTensors decode_checkpoint(std::string_view bytes, const std::string& source,
                              std::vector<std::string>* notes = nullptr);

// The bytes of a convnet.checkpoint/2 file holding `file`'s tensors and metadata, with the
// checksums computed afresh (any "crc32" keys in `file`, as in one read from disk, are replaced).
// save_checkpoint writes these; a tool or test that edits a checkpoint on purpose uses it to keep
// the edited file loadable. The caller sets "format" and every other key.
std::string encode_checkpoint(SafeTensors file);

// CRC-32 of `bytes` (zlib's crc32(), the ISO-HDLC CRC that Python's zlib.crc32 also computes) as
// the 8 lowercase hex digits checkpoints record.
std::string checkpoint_crc32(std::string_view bytes);

// Continues `optimizer` from the checkpoint's state and step count. Throws convnet::Error if the
// file holds another optimizer's state (or different state, as SGD with and without momentum).
template <class T>
void restore_optimizer(const Checkpoint<T>& checkpoint, Optimizer<T>& optimizer);

// The name a checkpoint gives a model tensor: a Sequential's "layer3.weight" becomes "3.weight"
// (PyTorch's nn.Sequential); Graph node names already are module paths and stay.
std::string checkpoint_name(const std::string& model_name, bool sequential);

}  // namespace convnet
