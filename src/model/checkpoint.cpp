// Checkpoints: a model and its training state to and from one safetensors file. Every tensor is
// checked against what the spec builds before any is used.
#include "convnet/checkpoint.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <type_traits>

#include "convnet/spec.hpp"

namespace convnet {
namespace {

constexpr const char* kFormat = "convnet.checkpoint/1";

template <class T>
const char* dtype_of() {
  return std::is_same_v<T, float> ? "F32" : "F64";
}

std::vector<int64_t> dims(const Shape& s) {
  std::vector<int64_t> out;
  for (int i = 0; i < s.rank(); ++i) out.push_back(s[i]);
  return out;
}

std::string dims_text(const std::vector<int64_t>& d) {
  std::string out = "[";
  for (size_t i = 0; i < d.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(d[i]);
  }
  return out + "]";
}

template <class T>
SafeTensor tensor_entry(const std::string& name, const Shape& shape, const T* values) {
  SafeTensor t{name, dtype_of<T>(), dims(shape), {}};
  t.bytes.assign(reinterpret_cast<const char*>(values),
                 static_cast<size_t>(shape.numel()) * sizeof(T));
  return t;
}

template <class T>
bool is_sequential(const Model<T>& model) {
  return dynamic_cast<const Sequential<T>*>(&model) != nullptr;
}

int64_t parse_int(const std::string& path, const std::map<std::string, std::string>& meta,
                  const std::string& key) {
  const auto it = meta.find(key);
  CONVNET_CHECK(it != meta.end(), path, ": checkpoint metadata lacks \"", key, "\"");
  int64_t v = 0;
  const std::string& s = it->second;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  CONVNET_CHECK(r.ec == std::errc() && r.ptr == s.data() + s.size() && v >= 0, path,
                ": checkpoint metadata \"", key, "\" must be a non-negative integer, got '", s,
                "'");
  return v;
}

// "64x1x28x28" -> Shape.
Shape parse_shape(const std::string& path, const std::string& text) {
  Shape s;
  std::vector<int64_t> d;
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    int64_t v = 0;
    const auto r = std::from_chars(p, end, v);
    CONVNET_CHECK(r.ec == std::errc() && v >= 1 && (r.ptr == end || *r.ptr == 'x'), path,
                  ": checkpoint metadata \"input_shape\" must be like 64x1x28x28, got '", text,
                  "'");
    d.push_back(v);
    p = r.ptr == end ? end : r.ptr + 1;
  }
  CONVNET_CHECK(d.size() >= 2 && d.size() <= 4, path,
                ": checkpoint metadata \"input_shape\" must have 2 to 4 dimensions, got '", text,
                "'");
  if (d.size() == 2) s = Shape{d[0], d[1]};
  if (d.size() == 3) s = Shape{d[0], d[1], d[2]};
  if (d.size() == 4) s = Shape{d[0], d[1], d[2], d[3]};
  return s;
}

// Copies the file's tensor `name` into `dst`, checking dtype and shape.
template <class T>
void read_tensor(const std::string& path, const SafeTensors& file, const std::string& name,
                 const Shape& shape, T* dst, const std::string& why) {
  const SafeTensor* t = file.find(name);
  CONVNET_CHECK(t != nullptr, path, ": missing tensor '", name, "' (", why, ")");
  CONVNET_CHECK(t->dtype == dtype_of<T>(), path, ": tensor '", name, "' is ", t->dtype,
                " but the model is ", dtype_of<T>());
  CONVNET_CHECK(t->shape == dims(shape), path, ": tensor '", name, "' has shape ",
                dims_text(t->shape), " but the model needs ", dims_text(dims(shape)));
  std::memcpy(dst, t->bytes.data(), t->bytes.size());
}

// InputInfo <-> metadata: class names one per line, statistics comma-separated (%.9g: a float
// round-trips exactly).
void write_input_info(const InputInfo& info, std::map<std::string, std::string>& meta) {
  CONVNET_CHECK(info.mean.size() == info.stddev.size(), "checkpoint: ", info.mean.size(),
                " normalisation means but ", info.stddev.size(), " standard deviations");
  if (!info.class_names.empty()) {
    std::string names;
    for (const std::string& n : info.class_names) {
      CONVNET_CHECK(n.find('\n') == std::string::npos, "checkpoint: class name '", n,
                    "' contains a line break");
      names += (names.empty() ? "" : "\n") + n;
    }
    meta["input.class_names"] = names;
  }
  if (!info.mean.empty()) {
    auto join = [](const std::vector<float>& v) {
      std::string out;
      char buf[32];
      for (float x : v) {
        std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(x));
        out += (out.empty() ? "" : ",") + std::string(buf);
      }
      return out;
    };
    meta["input.mean"] = join(info.mean);
    meta["input.stddev"] = join(info.stddev);
  }
}

std::vector<float> parse_floats(const std::string& path, const std::string& key,
                                const std::string& text) {
  std::vector<float> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    char* end = nullptr;
    const float v = std::strtof(item.c_str(), &end);
    CONVNET_CHECK(!item.empty() && end == item.c_str() + item.size() && std::isfinite(v), path,
                  ": checkpoint metadata \"", key, "\" must be comma-separated numbers, got '",
                  text, "'");
    out.push_back(v);
    start = comma + 1;
  }
  return out;
}

InputInfo read_input_info(const std::string& path, const std::map<std::string, std::string>& meta,
                          int64_t channels) {
  InputInfo info;
  if (const auto it = meta.find("input.class_names"); it != meta.end()) {
    size_t start = 0;
    while (start <= it->second.size()) {
      const size_t end = std::min(it->second.find('\n', start), it->second.size());
      info.class_names.push_back(it->second.substr(start, end - start));
      start = end + 1;
    }
  }
  const auto mean = meta.find("input.mean"), stddev = meta.find("input.stddev");
  CONVNET_CHECK((mean == meta.end()) == (stddev == meta.end()), path,
                ": checkpoint metadata has one of \"input.mean\" and \"input.stddev\" without the "
                "other");
  if (mean != meta.end()) {
    info.mean = parse_floats(path, "input.mean", mean->second);
    info.stddev = parse_floats(path, "input.stddev", stddev->second);
    CONVNET_CHECK(static_cast<int64_t>(info.mean.size()) == channels &&
                      static_cast<int64_t>(info.stddev.size()) == channels,
                  path, ": checkpoint normalisation has ", info.mean.size(), " means and ",
                  info.stddev.size(), " standard deviations for ", channels, " input channels");
    for (float s : info.stddev)
      CONVNET_CHECK(s > 0, path, ": checkpoint metadata \"input.stddev\" must be positive, got ",
                    s);
  }
  return info;
}

}  // namespace

std::string checkpoint_name(const std::string& model_name, bool sequential) {
  if (sequential && model_name.rfind("layer", 0) == 0) return model_name.substr(5);
  return model_name;
}

template <class T>
void save_checkpoint(const std::string& path, const Model<T>& model, const Optimizer<T>* optimizer,
                     const TrainingState& state) {
  CONVNET_CHECK(model.built(), path, ": cannot save a model that is not built");
  const bool seq = is_sequential(model);
  SafeTensors file;
  file.metadata["format"] = kFormat;
  file.metadata["dtype"] = dtype_of<T>();
  file.metadata["spec"] = model.spec();
  file.metadata["input_shape"] = model.input_shape().str();
  file.metadata["epoch"] = std::to_string(state.epoch);
  if (state.step > 0) file.metadata["step"] = std::to_string(state.step);
  file.metadata["seed"] = std::to_string(state.seed);
  for (const auto& [key, value] : state.extra) file.metadata["extra." + key] = value;
  write_input_info(state.input, file.metadata);
  for (const NamedLayer<T>& l : model.named_layers()) {
    const std::string rng = l.layer->rng_state();
    if (!rng.empty()) file.metadata["rng." + checkpoint_name(l.name, seq)] = rng;
  }
  for (const Param<T>& p : model.params())
    file.tensors.push_back(
        tensor_entry(checkpoint_name(p.name, seq), p.value->shape(), p.value->data()));
  for (const Buffer<T>& b : model.buffers())
    file.tensors.push_back(
        tensor_entry(checkpoint_name(b.name, seq), b.value->shape(), b.value->data()));
  if (optimizer) {
    file.metadata["optimizer"] = optimizer->name();
    file.metadata["optimizer.steps"] = std::to_string(optimizer->steps());
    const std::vector<std::string> names = optimizer->state_names();
    const auto params = model.params();
    if (optimizer->state_size() > 0) {
      CONVNET_CHECK(optimizer->state_size() == params.size(), path, ": the optimizer has state for ",
                    optimizer->state_size(), " tensors but the model has ", params.size());
      for (size_t i = 0; i < params.size(); ++i)
        for (size_t k = 0; k < names.size(); ++k) {
          const std::vector<T>& s = optimizer->state(i)[k];
          CONVNET_CHECK(static_cast<int64_t>(s.size()) == params[i].value->numel(), path,
                        ": optimizer state of '", params[i].name, "' does not match its size");
          file.tensors.push_back(tensor_entry(
              "optimizer." + checkpoint_name(params[i].name, seq) + "." + names[k],
              params[i].value->shape(), s.data()));
        }
    }
  }
  write_safetensors(path, file);
}

template <class T>
Checkpoint<T> load_checkpoint(const std::string& path, int64_t batch) {
  Checkpoint<T> c;
  c.path = path;
  c.file = read_safetensors(path);
  const auto& meta = c.file.metadata;
  const auto format = meta.find("format");
  CONVNET_CHECK(format != meta.end(), path, ": not a convnet checkpoint (its metadata has no \"",
                "format\": \"", kFormat, "\")");
  CONVNET_CHECK(format->second == kFormat, path, ": checkpoint format '", format->second,
                "', this build reads '", kFormat, "'");
  const auto dtype = meta.find("dtype");
  CONVNET_CHECK(dtype != meta.end() && dtype->second == dtype_of<T>(), path,
                ": checkpoint holds ", dtype != meta.end() ? dtype->second : "no dtype",
                " tensors, the model is ", dtype_of<T>());
  const auto spec = meta.find("spec");
  CONVNET_CHECK(spec != meta.end(), path, ": checkpoint metadata lacks \"spec\"");
  const auto shape = meta.find("input_shape");
  CONVNET_CHECK(shape != meta.end(), path, ": checkpoint metadata lacks \"input_shape\"");
  Shape input = parse_shape(path, shape->second);
  if (batch > 0) input = input.with_batch(batch);
  c.state.epoch = parse_int(path, meta, "epoch");
  if (meta.count("step")) c.state.step = parse_int(path, meta, "step");
  c.state.seed = static_cast<uint64_t>(parse_int(path, meta, "seed"));
  for (const auto& [key, value] : meta)
    if (key.rfind("extra.", 0) == 0) c.state.extra[key.substr(6)] = value;
  c.state.input = read_input_info(path, meta, input[1]);

  c.model = parse_model_spec<T>(spec->second, path + " (spec)");
  c.model->build(input, c.state.seed);
  const bool seq = is_sequential(*c.model);
  std::set<std::string> used;
  for (const Param<T>& p : c.model->params()) {
    const std::string name = checkpoint_name(p.name, seq);
    read_tensor(path, c.file, name, p.value->shape(), p.value->data(), "a parameter of the spec");
    used.insert(name);
  }
  for (const Buffer<T>& b : c.model->buffers()) {
    const std::string name = checkpoint_name(b.name, seq);
    read_tensor(path, c.file, name, b.value->shape(), b.value->data(), "a buffer of the spec");
    used.insert(name);
  }
  for (const NamedLayer<T>& l : c.model->named_layers()) {
    if (l.layer->rng_state().empty()) continue;
    const std::string key = "rng." + checkpoint_name(l.name, seq);
    const auto it = meta.find(key);
    CONVNET_CHECK(it != meta.end(), path, ": checkpoint metadata lacks \"", key, "\" (layer '",
                  l.name, "' draws random numbers)");
    try {
      l.layer->set_rng_state(it->second);
    } catch (const Error& e) {
      throw Error(detail::concat(path, ": metadata \"", key, "\": ", e.what()));
    }
  }
  const auto optimizer = meta.find("optimizer");
  if (optimizer != meta.end()) {
    c.optimizer = optimizer->second;
    c.optimizer_steps = parse_int(path, meta, "optimizer.steps");
  }
  // The optimizer's tensors are checked by restore_optimizer, which knows what it keeps; any
  // other tensor is one the spec does not explain.
  for (const SafeTensor& t : c.file.tensors)
    CONVNET_CHECK(used.count(t.name) || (!c.optimizer.empty() && t.name.rfind("optimizer.", 0) == 0),
                  path, ": unexpected tensor '", t.name,
                  "' (the model's spec has no parameter or buffer of that name)");
  return c;
}

template <class T>
void restore_optimizer(const Checkpoint<T>& c, Optimizer<T>& optimizer) {
  CONVNET_CHECK(!c.optimizer.empty(), c.path, ": the checkpoint holds no optimizer state");
  CONVNET_CHECK(c.optimizer == optimizer.name(), c.path, ": the checkpoint holds ", c.optimizer,
                " state, which cannot continue as ", optimizer.name(),
                " (resume with the same optimizer)");
  const bool seq = is_sequential(*c.model);
  const std::vector<std::string> names = optimizer.state_names();
  const auto params = c.model->params();
  std::vector<std::vector<std::vector<T>>> state;
  size_t expected = 0;
  if (c.optimizer_steps > 0) {
    state.resize(params.size());
    for (size_t i = 0; i < params.size(); ++i)
      for (const std::string& n : names) {
        std::vector<T>& s = state[i].emplace_back(static_cast<size_t>(params[i].value->numel()));
        read_tensor(c.path, c.file,
                    "optimizer." + checkpoint_name(params[i].name, seq) + "." + n,
                    params[i].value->shape(), s.data(),
                    detail::concat(optimizer.name(), " as configured keeps ", names.size(),
                                   " state tensors per parameter"));
        ++expected;
      }
  }
  size_t found = 0;
  for (const SafeTensor& t : c.file.tensors) found += t.name.rfind("optimizer.", 0) == 0;
  CONVNET_CHECK(found == expected, c.path, ": the checkpoint holds ", found,
                " optimizer state tensors, ", optimizer.name(), " as configured keeps ", expected,
                " (was it saved with other settings, such as momentum?)");
  optimizer.restore(c.optimizer_steps, std::move(state));
}

template void save_checkpoint<float>(const std::string&, const Model<float>&,
                                     const Optimizer<float>*, const TrainingState&);
template void save_checkpoint<double>(const std::string&, const Model<double>&,
                                      const Optimizer<double>*, const TrainingState&);
template Checkpoint<float> load_checkpoint<float>(const std::string&, int64_t);
template Checkpoint<double> load_checkpoint<double>(const std::string&, int64_t);
template void restore_optimizer<float>(const Checkpoint<float>&, Optimizer<float>&);
template void restore_optimizer<double>(const Checkpoint<double>&, Optimizer<double>&);

}  // namespace convnet
