// safetensors (https://github.com/huggingface/safetensors): 8 bytes of little-endian header
// length N, N bytes of JSON header {"name": {"dtype": "F32", "shape": [...], "data_offsets":
// [begin, end]}, ..., "__metadata__": {"key": "value", ...}}, then the raw little-endian tensor
// bytes, offsets relative to the end of the header. A small strict reader and an atomic writer;
// only F32 and F64 tensors (what models hold). Not a general JSON library.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "convnet/files.hpp"  // write_file_atomic

namespace convnet {

struct SafeTensor {
  std::string name;
  std::string dtype;           // "F32" or "F64"
  std::vector<int64_t> shape;  // [] for a scalar
  std::string bytes;           // numel · element size bytes, little-endian
};

struct SafeTensors {
  std::map<std::string, std::string> metadata;  // "__metadata__": strings only
  std::vector<SafeTensor> tensors;              // data in this order
  // The tensor called `name`, or null.
  const SafeTensor* find(const std::string& name) const;
};

// The file's bytes: the header (padded with spaces to a multiple of 8 bytes, as the reference
// writer does), then every tensor's bytes in order.
std::string encode_safetensors(const SafeTensors& file);

// Parses and checks `bytes`; `source` (a path) names them in errors. Rejects, with a message
// naming the source and what is wrong: a header length past the end of the file, a header that
// is not strict JSON or not of the format's shape, an unknown dtype, negative or huge dimensions,
// offsets that do not match the shape, that overlap, leave holes or go past the end, duplicate
// names, and a file size other than 8 + N + the data.
SafeTensors decode_safetensors(std::string_view bytes, const std::string& source);

void write_safetensors(const std::string& path, const SafeTensors& file);
SafeTensors read_safetensors(const std::string& path);

}  // namespace convnet
