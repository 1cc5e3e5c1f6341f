// Model-spec files: a network as text, one layer per line with named options, so a model can be
// defined without recompiling. The grammar is in docs/model-spec.md; Model::spec() writes it.
// This reads the structure only: weights live in checkpoints (convnet/checkpoint.hpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "convnet/model.hpp"

namespace convnet {

// Reads a model spec into an unbuilt Sequential or Graph. `source` names the text in errors.
// Throws convnet::Error as "SOURCE:LINE:COLUMN: what was expected, what was found", for an
// unknown statement or layer type, an unknown, duplicate, missing or malformed option, an input
// naming no node, or options a layer rejects.
template <class T>
std::unique_ptr<Model<T>> parse_model_spec(std::string_view text,
                                           const std::string& source = "<spec>");

// Reads the spec file at `path` (errors name the path).
template <class T>
std::unique_ptr<Model<T>> load_model_spec(const std::string& path);

// True when `name` is a spec file rather than a built-in model name: it ends in ".txt" or
// contains a '/'.
bool is_model_spec_path(const std::string& name);

// The built-in model `name` (make_model, with `classes` outputs) or, when is_model_spec_path,
// the spec file at that path (its own output count).
template <class T>
std::unique_ptr<Model<T>> load_model(const std::string& name_or_path, int64_t classes = 10);

}  // namespace convnet
