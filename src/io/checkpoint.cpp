// Checkpoints: a model and its training state to and from one safetensors file. The file's
// checksums, keys and values are checked first (decode_checkpoint), then every tensor against
// what the spec builds, before any is used.
#include "convnet/checkpoint.hpp"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <type_traits>

#include "convnet/spec.hpp"

namespace convnet {
namespace {

// The format this build writes, and the one before it, which it still reads. /2 added the
// checksums and the strict key list. (No single bit flip turns the "2" into a "1": 0x32, 0x31.)
constexpr const char* kFormat = "convnet.checkpoint/2";
constexpr const char* kFormatV1 = "convnet.checkpoint/1";

// The header's checksum, and the prefix of each tensor's ("crc32.0.weight"): a tensor name is
// never empty, so the two cannot collide.
constexpr std::string_view kHeaderCrcKey = "crc32";
constexpr std::string_view kTensorCrcPrefix = "crc32.";
constexpr std::string_view kZeroCrc = "00000000";  // the header's value while it is summed

// The metadata keys the format defines, besides the prefixed families "extra.<flag>" (the
// caller's own), "rng.<layer>" (checked against the built model) and "crc32.<tensor>".
constexpr std::string_view kKnownKeys[] = {
    "format",     "dtype",       "spec",      "input_shape",     "epoch",
    "step",       "seed",        "optimizer", "optimizer.steps", "input.class_names",
    "input.mean", "input.stddev", "output.target", "output.names", "output.mean",
    "output.stddev"};

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

// InputInfo <-> metadata: names one per line, statistics comma-separated (%.9g: a float
// round-trips exactly). The input's class names and normalisation are "input.*", what the output
// was trained to (its target's kind, names and normalisation) "output.*".
std::string join_lines(const std::vector<std::string>& names, const char* what) {
  std::string text;
  for (const std::string& n : names) {
    CONVNET_CHECK(n.find('\n') == std::string::npos, "checkpoint: ", what, " '", n,
                  "' contains a line break");
    text += (text.empty() ? "" : "\n") + n;
  }
  return text;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> names;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    names.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return names;
}

std::string join_floats(const std::vector<float>& values) {
  std::string out;
  char buf[32];
  for (float x : values) {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(x));
    out += (out.empty() ? "" : ",") + std::string(buf);
  }
  return out;
}

void write_input_info(const InputInfo& info, std::map<std::string, std::string>& meta) {
  CONVNET_CHECK(info.mean.size() == info.stddev.size(), "checkpoint: ", info.mean.size(),
                " normalisation means but ", info.stddev.size(), " standard deviations");
  CONVNET_CHECK(info.target_mean.size() == info.target_stddev.size() &&
                    (info.target_mean.empty() || info.target_mean.size() == info.target_names.size()),
                "checkpoint: ", info.target_mean.size(), " target means and ",
                info.target_stddev.size(), " standard deviations for ", info.target_names.size(),
                " targets");
  if (!info.class_names.empty()) meta["input.class_names"] = join_lines(info.class_names, "class name");
  if (!info.mean.empty()) {
    meta["input.mean"] = join_floats(info.mean);
    meta["input.stddev"] = join_floats(info.stddev);
  }
  if (!info.target.empty()) meta["output.target"] = info.target;
  if (!info.target_names.empty())
    meta["output.names"] = join_lines(info.target_names, "target name");
  if (!info.target_mean.empty()) {
    meta["output.mean"] = join_floats(info.target_mean);
    meta["output.stddev"] = join_floats(info.target_stddev);
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

// "<prefix>.mean" and "<prefix>.stddev": both or neither, `count` values each (what they
// normalise: `what`), every stddev positive.
void read_normalization(const std::string& path, const std::map<std::string, std::string>& meta,
                        const std::string& prefix, size_t count, const char* what,
                        std::vector<float>& mean, std::vector<float>& stddev) {
  const auto m = meta.find(prefix + ".mean"), s = meta.find(prefix + ".stddev");
  CONVNET_CHECK((m == meta.end()) == (s == meta.end()), path, ": checkpoint metadata has one of \"",
                prefix, ".mean\" and \"", prefix, ".stddev\" without the other");
  if (m == meta.end()) return;
  mean = parse_floats(path, prefix + ".mean", m->second);
  stddev = parse_floats(path, prefix + ".stddev", s->second);
  CONVNET_CHECK(mean.size() == count && stddev.size() == count, path, ": checkpoint ",
                prefix == "input" ? "normalisation" : "target normalisation", " has ", mean.size(),
                " means and ", stddev.size(), " standard deviations for ", count, " ", what);
  for (float v : stddev)
    CONVNET_CHECK(v > 0, path, ": checkpoint metadata \"", prefix,
                  ".stddev\" must be positive, got ", v);
}

InputInfo read_input_info(const std::string& path, const std::map<std::string, std::string>& meta,
                          int64_t channels) {
  InputInfo info;
  if (const auto it = meta.find("input.class_names"); it != meta.end())
    info.class_names = split_lines(it->second);
  read_normalization(path, meta, "input", static_cast<size_t>(channels), "input channels",
                     info.mean, info.stddev);
  if (const auto it = meta.find("output.target"); it != meta.end()) {
    CONVNET_CHECK(it->second == "labels" || it->second == "values" || it->second == "input", path,
                  ": checkpoint metadata \"output.target\" must be labels, values or input, got '",
                  it->second, "'");
    info.target = it->second;
  }
  if (const auto it = meta.find("output.names"); it != meta.end())
    info.target_names = split_lines(it->second);
  read_normalization(path, meta, "output", info.target_names.size(), "targets", info.target_mean,
                     info.target_stddev);
  return info;
}

// --- integrity -----------------------------------------------------------------------------

bool is_crc_text(const std::string& s) {
  return s.size() == 8 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// The recorded checksum under `key`, checked to be 8 lowercase hex digits.
const std::string& recorded_crc(const std::string& source,
                                const std::map<std::string, std::string>& meta,
                                const std::string& key, const std::string& what) {
  const auto it = meta.find(key);
  CONVNET_CHECK(it != meta.end(), source, ": ", what, " has no checksum: metadata \"", key,
                "\" is missing (", kFormat, " records one for the header and every tensor)");
  CONVNET_CHECK(is_crc_text(it->second), source, ": metadata \"", key,
                "\" must be a checksum, a CRC-32 as 8 lowercase hex digits, got '", it->second,
                "'");
  return it->second;
}

// The header's "crc32" entry as written: `"crc32":"XXXXXXXX"`. Inside a JSON string every quote
// is escaped, so in a valid header this text can only be the entry itself.
std::string header_crc_entry(std::string_view crc) {
  return detail::concat('"', kHeaderCrcKey, "\":\"", crc, '"');
}

// Where the 8 digits of the header's checksum start in `head` (the file's first 8 + N bytes).
size_t header_crc_offset(const std::string& source, std::string_view head, std::string_view crc) {
  const std::string entry = header_crc_entry(crc);
  const size_t at = head.find(entry);
  CONVNET_CHECK(at != std::string_view::npos && head.find(entry, at + 1) == std::string_view::npos,
                source, ": the header's checksum entry is not written as ", kFormat, " writes it (",
                entry, " exactly once)");
  return at + entry.size() - 9;  // the digits end one byte before the closing quote
}

// The 8 + N bytes the header checksum covers: the length and the header, padding included.
std::string_view checksummed_head(std::string_view file_bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i)
    n |= static_cast<uint64_t>(static_cast<unsigned char>(file_bytes[static_cast<size_t>(i)]))
         << (8 * i);
  return file_bytes.substr(0, 8 + n);  // decode_safetensors has checked that n fits
}

// CRC-32 of the head with its checksum's digits read as "00000000".
std::string head_crc(std::string_view head, size_t digits_at) {
  std::string zeroed(head);
  zeroed.replace(digits_at, kZeroCrc.size(), kZeroCrc);
  return checkpoint_crc32(zeroed);
}

// The header's checksum, then every tensor's; a checksum key that names no tensor is an error.
void verify_checksums(std::string_view bytes, const SafeTensors& file, const std::string& source) {
  const std::string key(kHeaderCrcKey);
  const std::string& recorded = recorded_crc(source, file.metadata, key, "the header");
  const std::string_view head = checksummed_head(bytes);
  const std::string computed = head_crc(head, header_crc_offset(source, head, recorded));
  CONVNET_CHECK(computed == recorded, source, ": header: checksum mismatch (CRC-32 expected ",
                recorded, ", got ", computed, "): the header is corrupt");
  for (const SafeTensor& t : file.tensors) {
    const std::string& want = recorded_crc(
        source, file.metadata, std::string(kTensorCrcPrefix) + t.name, "tensor '" + t.name + "'");
    const std::string got = checkpoint_crc32(t.bytes);
    CONVNET_CHECK(got == want, source, ": tensor '", t.name,
                  "': checksum mismatch (CRC-32 expected ", want, ", got ", got,
                  "): its data is corrupt");
  }
  for (const auto& [k, v] : file.metadata)
    if (k.starts_with(kTensorCrcPrefix))
      CONVNET_CHECK(file.find(k.substr(kTensorCrcPrefix.size())) != nullptr, source,
                    ": metadata \"", k, "\" is the checksum of a tensor the file does not hold");
}

// Every key is one the format defines. "rng.<layer>" keys are matched to layers once the model
// is built (load_checkpoint); the checksums only belong in a /2 file.
void check_known_keys(const std::map<std::string, std::string>& meta, const std::string& source,
                      const std::string& format) {
  const bool v2 = format == kFormat;
  for (const auto& [key, value] : meta) {
    const bool known =
        std::find(std::begin(kKnownKeys), std::end(kKnownKeys), key) != std::end(kKnownKeys) ||
        key.starts_with("extra.") || key.starts_with("rng.") ||
        (v2 && (key == kHeaderCrcKey || key.starts_with(kTensorCrcPrefix)));
    CONVNET_CHECK(known, source, ": unknown metadata key \"", key, "\" in a ", format,
                  " file (docs/model-spec.md lists the keys; a caller's own go under \"extra.\")");
  }
}

// Weights, buffers and optimizer state must be finite: a NaN or Inf loaded is a model that
// silently predicts nothing or a run that diverges at its first step.
template <class V>
void check_finite_values(const SafeTensor& t, const std::string& source) {
  const size_t n = t.bytes.size() / sizeof(V);
  for (size_t i = 0; i < n; ++i) {
    V v;
    std::memcpy(&v, t.bytes.data() + i * sizeof(V), sizeof(V));
    CONVNET_CHECK(std::isfinite(v), source, ": tensor '", t.name, "' holds ",
                  static_cast<double>(v), " at index ", i, " (of ", n,
                  "): a checkpoint's weights, buffers and optimizer state must be finite");
  }
}

}  // namespace

std::string checkpoint_crc32(std::string_view bytes) {
  const uLong crc =
      crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), bytes.size());
  char text[9];
  std::snprintf(text, sizeof text, "%08lx", static_cast<unsigned long>(crc));
  return text;
}

std::string encode_checkpoint(SafeTensors file) {
  std::erase_if(file.metadata, [](const auto& entry) {
    return entry.first == kHeaderCrcKey || entry.first.starts_with(kTensorCrcPrefix);
  });
  for (const SafeTensor& t : file.tensors)
    file.metadata[std::string(kTensorCrcPrefix) + t.name] = checkpoint_crc32(t.bytes);
  file.metadata[std::string(kHeaderCrcKey)] = std::string(kZeroCrc);
  std::string bytes = encode_safetensors(file);
  const std::string_view head = checksummed_head(bytes);
  const size_t at = header_crc_offset("checkpoint", head, kZeroCrc);
  const std::string crc = head_crc(head, at);
  bytes.replace(at, crc.size(), crc);
  return bytes;
}

SafeTensors decode_checkpoint(std::string_view bytes, const std::string& source,
                              std::vector<std::string>* notes) {
  SafeTensors file = decode_safetensors(bytes, source);
  const auto format = file.metadata.find("format");
  CONVNET_CHECK(format != file.metadata.end(), source,
                ": not a convnet checkpoint (its metadata has no \"format\": \"", kFormat, "\")");
  CONVNET_CHECK(format->second == kFormat || format->second == kFormatV1, source,
                ": checkpoint format '", format->second, "', this build reads '", kFormat,
                "' and '", kFormatV1, "'");
  if (format->second == kFormat) {
    verify_checksums(bytes, file, source);
  } else if (notes) {
    notes->push_back(detail::concat(source, ": a ", kFormatV1,
                                    " file, written before checksums: corruption of its data "
                                    "cannot be detected (saving it again adds them)"));
  }
  check_known_keys(file.metadata, source, format->second);
  for (const SafeTensor& t : file.tensors) {
    if (t.dtype == "F32") check_finite_values<float>(t, source);
    if (t.dtype == "F64") check_finite_values<double>(t, source);
  }
  return file;
}

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
      CONVNET_CHECK(optimizer->state_size() == params.size(), path,
                    ": the optimizer has state for ", optimizer->state_size(),
                    " tensors but the model has ", params.size());
      for (size_t i = 0; i < params.size(); ++i)
        for (size_t k = 0; k < names.size(); ++k) {
          const std::span<const T> s = optimizer->state(i, k);
          CONVNET_CHECK(static_cast<int64_t>(s.size()) == params[i].value->numel(), path,
                        ": optimizer state of '", params[i].name, "' does not match its size");
          file.tensors.push_back(
              tensor_entry("optimizer." + checkpoint_name(params[i].name, seq) + "." + names[k],
                           params[i].value->shape(), s.data()));
        }
    }
  }
  write_file_atomic(path, encode_checkpoint(std::move(file)));
}

template <class T>
Checkpoint<T> load_checkpoint(const std::string& path, int64_t batch) {
  Checkpoint<T> c;
  c.path = path;
  c.file = decode_checkpoint(read_file(path), path, &c.notes);
  const auto& meta = c.file.metadata;
  const auto dtype = meta.find("dtype");
  CONVNET_CHECK(dtype != meta.end() && dtype->second == dtype_of<T>(), path, ": checkpoint holds ",
                dtype != meta.end() ? dtype->second : "no dtype", " tensors, the model is ",
                dtype_of<T>());
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

  // The spec's errors name the checkpoint: the parser's as "PATH (spec):LINE:COLUMN: ...", and
  // any other (a layer's options, a graph's wiring, shapes that do not fit the input) is
  // prefixed "PATH (spec): " unless it already names the file.
  try {
    c.model = parse_model_spec<T>(spec->second, path + " (spec)");
    c.model->build(input, c.state.seed);
  } catch (const Error& e) {
    const std::string message = e.what();
    if (message.starts_with(path)) throw;
    throw Error(detail::concat(path, " (spec): ", message));
  }
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
  std::set<std::string> rng_keys;
  for (const NamedLayer<T>& l : c.model->named_layers()) {
    if (l.layer->rng_state().empty()) continue;
    const std::string key = "rng." + checkpoint_name(l.name, seq);
    rng_keys.insert(key);
    const auto it = meta.find(key);
    CONVNET_CHECK(it != meta.end(), path, ": checkpoint metadata lacks \"", key, "\" (layer '",
                  l.name, "' draws random numbers)");
    try {
      l.layer->set_rng_state(it->second);
    } catch (const Error& e) {
      throw Error(detail::concat(path, ": metadata \"", key, "\": ", e.what()));
    }
  }
  for (const auto& [key, value] : meta)
    CONVNET_CHECK(!key.starts_with("rng.") || rng_keys.count(key), path, ": metadata \"", key,
                  "\" names no layer of the spec that draws random numbers");
  const auto optimizer = meta.find("optimizer");
  if (optimizer != meta.end()) {
    c.optimizer = optimizer->second;
    c.optimizer_steps = parse_int(path, meta, "optimizer.steps");
  }
  // The optimizer's tensors are checked by restore_optimizer, which knows what it keeps; any
  // other tensor is one the spec does not explain.
  for (const SafeTensor& t : c.file.tensors)
    CONVNET_CHECK(
        used.count(t.name) || (!c.optimizer.empty() && t.name.rfind("optimizer.", 0) == 0), path,
        ": unexpected tensor '", t.name,
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
        read_tensor(c.path, c.file, "optimizer." + checkpoint_name(params[i].name, seq) + "." + n,
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
