// Model-spec text: the parser that reads it back, through the same option tables every layer's
// spec() writes with (src/layers/options_spec.cpp), so what is written is exactly what is read.
// Grammar and examples: docs/model-spec.md.
#include "convnet/spec.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <variant>

#include "convnet/graph.hpp"
#include "convnet/zoo.hpp"
#include "layers/options_spec.hpp"

namespace convnet {

// --- the parser ----------------------------------------------------------------------------
namespace {

using detail::batchnorm_fields;
using detail::conv2d_fields;
using detail::conv_transpose2d_fields;
using detail::dropout_fields;
using detail::elu_fields;
using detail::ELUSpec;
using detail::Field;
using detail::Fields;
using detail::kInitNames;
using detail::leaky_relu_fields;
using detail::LeakyReLUSpec;
using detail::linear_fields;
using detail::pool_fields;

struct Token {
  std::string_view text;
  int column;  // 1-based
};

struct Line {
  int number;  // 1-based
  std::vector<Token> tokens;
};

// Splits text into lines of whitespace-separated tokens, dropping comments (# to the end of the
// line) and blank lines.
std::vector<Line> tokenize(std::string_view text) {
  std::vector<Line> lines;
  int number = 0;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    ++number;
    std::string_view line = text.substr(start, end - start);
    line = line.substr(0, line.find('#'));
    Line out{number, {}};
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      const size_t begin = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      if (i > begin)
        out.tokens.push_back({line.substr(begin, i - begin), static_cast<int>(begin) + 1});
    }
    if (!out.tokens.empty()) lines.push_back(std::move(out));
    start = end + 1;
  }
  return lines;
}

// User text as messages quote it: whole up to 80 characters, otherwise its first 80 and its
// length ('aaaa…' (2000000 characters)), so a token of megabytes does not flood the terminal.
constexpr size_t kQuotedMax = 80;
std::string cut(std::string_view text) {
  if (text.size() <= kQuotedMax) return std::string(text);
  size_t end = kQuotedMax;
  while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;  // UTF-8
  return detail::concat(text.substr(0, end), "…");
}
std::string quoted(std::string_view text) {
  const std::string q = "'" + cut(text) + "'";
  return text.size() <= kQuotedMax ? q : detail::concat(q, " (", text.size(), " characters)");
}
// A name shown without quotes ("for conv2d"), cut the same way.
std::string bare(std::string_view text) {
  return text.size() <= kQuotedMax ? std::string(text)
                                   : detail::concat(cut(text), " (", text.size(), " characters)");
}

// An error that already names SOURCE:LINE:COLUMN.
struct SpecError : Error {
  using Error::Error;
};

struct Option {
  std::string_view key, value;
  int key_column, value_column;
};

class Parser {
 public:
  explicit Parser(std::string source) : source_(std::move(source)) {}

  // "SOURCE:LINE:COLUMN", what errors start with.
  std::string where(int line, int column) const {
    return detail::concat(source_, ":", line, ":", column);
  }
  [[noreturn]] void fail(int line, int column, const std::string& message) const {
    throw SpecError(detail::concat(where(line, column), ": ", message));
  }

  // key=value tokens; `what` names the statement or layer for messages.
  std::vector<Option> options(const Line& line, size_t first, const std::string& what) const {
    std::vector<Option> out;
    for (size_t t = first; t < line.tokens.size(); ++t) {
      const Token& tok = line.tokens[t];
      const size_t eq = tok.text.find('=');
      if (eq == std::string_view::npos || eq == 0)
        fail(line.number, tok.column,
             detail::concat("expected an option key=value for ", bare(what), ", got ",
                            quoted(tok.text)));
      Option o{tok.text.substr(0, eq), tok.text.substr(eq + 1), tok.column,
               tok.column + static_cast<int>(eq) + 1};
      if (o.value.empty())
        fail(line.number, o.value_column,
             detail::concat("option ", quoted(o.key), " of ", bare(what), " has no value (write ",
                            cut(o.key), "=VALUE, without spaces)"));
      for (const Option& prev : out)
        if (prev.key == o.key)
          fail(line.number, o.key_column,
               detail::concat("duplicate option ", quoted(o.key), " for ", bare(what),
                              " (first at column ", prev.key_column, ")"));
      out.push_back(o);
    }
    return out;
  }

  // Sets the fields named by `options`; unknown keys and malformed values are errors.
  template <class O>
  O read(const Line& line, const std::string& kind, const std::vector<Option>& options,
         const Fields<O>& fields) const {
    O o{};
    for (const Option& opt : options) {
      const Field<O>* field = nullptr;
      for (const Field<O>& f : fields)
        if (opt.key == f.name) field = &f;
      if (!field) {
        std::string known;
        for (const Field<O>& f : fields) known += (known.empty() ? "" : ", ") + std::string(f.name);
        fail(line.number, opt.key_column,
             detail::concat("unknown option ", quoted(opt.key), " for ", bare(kind),
                            known.empty() ? std::string(" (it takes no options)")
                                          : " (expected one of: " + known + ")"));
      }
      std::visit([&](auto member) { o.*member = value<O>(line, kind, opt, member); },
                 field->member);
    }
    return o;
  }

  template <class O, class V>
  V value(const Line& line, const std::string& kind, const Option& opt, V O::*) const {
    const char* begin = opt.value.data();
    const char* end = begin + opt.value.size();
    auto bad = [&](const char* expected) {
      fail(line.number, opt.value_column,
           detail::concat("bad value ", quoted(opt.value), " for option ", quoted(opt.key), " of ",
                          bare(kind), ": expected ", expected));
    };
    if constexpr (std::is_same_v<V, bool>) {
      if (opt.value == "true") return true;
      if (opt.value == "false") return false;
      bad("true or false");
    } else if constexpr (std::is_same_v<V, Init>) {
      std::string names;
      for (const auto& [init, name] : kInitNames) {
        if (opt.value == name) return init;
        names += (names.empty() ? "" : ", ") + std::string(name);
      }
      bad(("one of " + names).c_str());
    } else if constexpr (std::is_same_v<V, std::optional<int64_t>>) {
      return value<O>(line, kind, opt, static_cast<int64_t O::*>(nullptr));  // given: an integer
    } else if constexpr (std::is_same_v<V, double>) {
      double v = 0;
      const auto r = std::from_chars(begin, end, v);
      if (r.ec != std::errc() || r.ptr != end || !std::isfinite(v)) bad("a number");
      return v;
    } else {
      V v = 0;
      const auto r = std::from_chars(begin, end, v);
      if (r.ec != std::errc() || r.ptr != end)
        bad(std::is_signed_v<V> ? "an integer" : "a non-negative integer");
      return v;
    }
    return V{};  // not reached: bad() throws
  }

  // `name`, or both `h` and `w`, must be among the options.
  void require(const Line& line, const Token& kind, const std::vector<Option>& options,
               const char* name, const char* h = nullptr, const char* w = nullptr) const {
    auto has = [&](const char* key) {
      for (const Option& o : options)
        if (o.key == key) return true;
      return false;
    };
    if (has(name) || (h && has(h) && has(w))) return;
    fail(line.number, kind.column,
         detail::concat("missing required option '", name, "' for ", kind.text,
                        h ? detail::concat(" (or both ", h, " and ", w, ")") : std::string()));
  }

 private:
  std::string source_;
};

constexpr const char* kLayerKinds[] = {
    "conv2d",  "conv_transpose2d", "maxpool2d",  "avgpool2d",  "global_avgpool2d",
    "linear",  "flatten",          "relu",       "leaky_relu", "sigmoid",
    "tanh",    "softmax",          "gelu",       "silu",       "elu",
    "dropout", "batchnorm1d",      "batchnorm2d"};
constexpr const char* kMergeKinds[] = {"add", "concat"};

template <class T>
struct MadeLayer {
  std::unique_ptr<Layer<T>> layer;  // one of these two
  std::unique_ptr<MergeLayer<T>> merge;
};

// The layer of kind `kind` with `options`: unknown options are reported first, then missing
// required ones, then what the layer's constructor rejects (a kernel of 0, p > 1), all pointing
// into the line.
template <class T>
MadeLayer<T> make_layer(const Parser& p, const Line& line, const Token& kind,
                        const std::vector<Option>& options) {
  const std::string k(kind.text);
  MadeLayer<T> out;
  auto kernel = [&] { p.require(line, kind, options, "kernel", "kernel_h", "kernel_w"); };
  try {
    if (k == "conv2d") {
      const auto o = p.read(line, k, options, conv2d_fields());
      p.require(line, kind, options, "out_channels");
      kernel();
      out.layer = std::make_unique<Conv2d<T>>(o);
    } else if (k == "conv_transpose2d") {
      const auto o = p.read(line, k, options, conv_transpose2d_fields());
      p.require(line, kind, options, "out_channels");
      kernel();
      out.layer = std::make_unique<ConvTranspose2d<T>>(o);
    } else if (k == "maxpool2d") {
      const auto o = p.read(line, k, options, pool_fields(false));
      kernel();
      out.layer = std::make_unique<MaxPool2d<T>>(o);
    } else if (k == "avgpool2d") {
      const auto o = p.read(line, k, options, pool_fields(true));
      kernel();
      out.layer = std::make_unique<AvgPool2d<T>>(o);
    } else if (k == "linear") {
      const auto o = p.read(line, k, options, linear_fields());
      p.require(line, kind, options, "out_features");
      out.layer = std::make_unique<Linear<T>>(o);
    } else if (k == "dropout") {
      out.layer = std::make_unique<Dropout<T>>(p.read(line, k, options, dropout_fields()));
    } else if (k == "batchnorm1d") {
      out.layer = std::make_unique<BatchNorm1d<T>>(p.read(line, k, options, batchnorm_fields()));
    } else if (k == "batchnorm2d") {
      out.layer = std::make_unique<BatchNorm2d<T>>(p.read(line, k, options, batchnorm_fields()));
    } else if (k == "leaky_relu") {
      const auto o = p.read(line, k, options, leaky_relu_fields());
      out.layer = std::make_unique<LeakyReLU<T>>(static_cast<T>(o.slope));
    } else if (k == "elu") {
      const auto o = p.read(line, k, options, elu_fields());
      out.layer = std::make_unique<ELU<T>>(static_cast<T>(o.alpha));
    } else {  // the kinds without options
      if (k == "global_avgpool2d")
        out.layer = std::make_unique<GlobalAvgPool2d<T>>();
      else if (k == "flatten")
        out.layer = std::make_unique<Flatten<T>>();
      else if (k == "relu")
        out.layer = std::make_unique<ReLU<T>>();
      else if (k == "sigmoid")
        out.layer = std::make_unique<Sigmoid<T>>();
      else if (k == "tanh")
        out.layer = std::make_unique<Tanh<T>>();
      else if (k == "softmax")
        out.layer = std::make_unique<Softmax<T>>();
      else if (k == "gelu")
        out.layer = std::make_unique<GELU<T>>();
      else if (k == "silu")
        out.layer = std::make_unique<SiLU<T>>();
      else if (k == "add")
        out.merge = std::make_unique<Add<T>>();
      else if (k == "concat")
        out.merge = std::make_unique<Concat<T>>();
      if (!out.layer && !out.merge) {
        std::string known;
        for (const char* name : kLayerKinds)
          known += (known.empty() ? "" : ", ") + std::string(name);
        for (const char* name : kMergeKinds) known += ", " + std::string(name);
        p.fail(line.number, kind.column,
               detail::concat("unknown layer type ", quoted(k), " (expected one of: ", known, ")"));
      }
      p.read(line, k, options, Fields<ELUSpec>{});  // an empty table: any option is unknown
    }
  } catch (const SpecError&) {
    throw;
  } catch (const Error& e) {  // the layer's own check
    p.fail(line.number, kind.column, e.what());
  }
  return out;
}

bool valid_name(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-'))
      return false;
  return true;
}

template <class T>
std::unique_ptr<Model<T>> parse(std::string_view text, const std::string& source) {
  const Parser p(source);
  const std::vector<Line> lines = tokenize(text);
  if (lines.empty())
    p.fail(1, 1, "empty model spec: expected 'model sequential' or 'model graph' first");
  const Line& head = lines[0];
  const Token& keyword = head.tokens[0];
  if (keyword.text != "model")
    p.fail(head.number, keyword.column,
           detail::concat("expected 'model sequential' or 'model graph' first, got ",
                          quoted(keyword.text)));
  if (head.tokens.size() < 2)
    p.fail(head.number, keyword.column + 5,
           "expected the model type after 'model': sequential or graph");
  const Token& type = head.tokens[1];
  if (type.text != "sequential" && type.text != "graph")
    p.fail(head.number, type.column,
           detail::concat("unknown model type ", quoted(type.text),
                          " (expected sequential or graph)"));
  const bool graph = type.text == "graph";
  std::string input_name = "input";
  if (graph) {
    for (const Option& o : p.options(head, 2, "model graph")) {
      if (o.key != "input")
        p.fail(head.number, o.key_column,
               detail::concat("unknown option ", quoted(o.key),
                              " for model graph (expected one of: input)"));
      if (!valid_name(o.value))
        p.fail(head.number, o.value_column,
               detail::concat("bad input name ", quoted(o.value),
                              ": use letters, digits, '_', '.' and '-'"));
      input_name = std::string(o.value);
    }
  } else if (head.tokens.size() > 2) {
    p.fail(head.number, head.tokens[2].column,
           detail::concat("unexpected ", quoted(head.tokens[2].text),
                          " after 'model sequential' (it takes no options)"));
  }

  auto seq = std::make_unique<Sequential<T>>();
  auto g = std::make_unique<Graph<T>>(input_name);
  // Graph bookkeeping: where each node was defined, and each input reference's position.
  std::map<std::string, int, std::less<>> defined{{input_name, head.number}};
  struct Reference {
    std::string name;
    int line, column;
  };
  std::vector<Reference> references;
  // Where each layer (or node, the graph's input first) was defined: build() errors start there.
  std::vector<std::string> origins;
  if (graph) origins.push_back(p.where(head.number, keyword.column));
  const Line* output = nullptr;
  size_t layers = 0;

  for (size_t l = 1; l < lines.size(); ++l) {
    const Line& line = lines[l];
    const Token& statement = line.tokens[0];
    const std::string_view s = statement.text;
    if (s == "model")
      p.fail(line.number, statement.column,
             detail::concat("a spec holds one model; 'model' is already at line ", head.number));
    if (s == "layer" && !graph) {
      if (line.tokens.size() < 2)
        p.fail(line.number, statement.column + 6, "expected a layer type after 'layer'");
      const Token& kind = line.tokens[1];
      MadeLayer<T> made = make_layer<T>(p, line, kind, p.options(line, 2, std::string(kind.text)));
      if (made.merge)
        p.fail(line.number, kind.column,
               detail::concat(bare(kind.text), " merges several inputs: it needs 'model graph'"));
      seq->add(std::move(made.layer));
      origins.push_back(p.where(line.number, kind.column));
      ++layers;
    } else if (s == "node" && graph) {
      if (line.tokens.size() < 3)
        p.fail(line.number, statement.column,
               "expected 'node NAME TYPE in=INPUT[,INPUT...] [key=value...]'");
      const Token& name = line.tokens[1];
      const Token& kind = line.tokens[2];
      if (!valid_name(name.text))
        p.fail(line.number, name.column,
               detail::concat("bad node name ", quoted(name.text),
                              ": use letters, digits, '_', '.' and '-'"));
      if (const auto it = defined.find(name.text); it != defined.end())
        p.fail(line.number, name.column,
               detail::concat("duplicate node name ", quoted(name.text), " (first defined at line ",
                              it->second, ")"));
      std::vector<Option> options = p.options(line, 3, std::string(kind.text));
      // in= is the node's, not the layer's.
      const auto in = std::find_if(options.begin(), options.end(),
                                   [](const Option& o) { return o.key == "in"; });
      if (in == options.end())
        p.fail(line.number, kind.column,
               detail::concat("missing required option 'in' for node ", quoted(name.text),
                              " (the node's inputs: in=NAME[,NAME...])"));
      const Option in_option = *in;
      options.erase(in);
      MadeLayer<T> made = make_layer<T>(p, line, kind, options);
      std::vector<std::string> inputs;
      size_t at = 0;
      while (at <= in_option.value.size()) {
        size_t comma = in_option.value.find(',', at);
        if (comma == std::string_view::npos) comma = in_option.value.size();
        const std::string_view input = in_option.value.substr(at, comma - at);
        const int column = in_option.value_column + static_cast<int>(at);
        if (!valid_name(input))
          p.fail(line.number, column,
                 detail::concat("bad input name ", quoted(input), " in in=", bare(in_option.value),
                                ": expected node names separated by commas"));
        inputs.emplace_back(input);
        references.push_back({std::string(input), line.number, column});
        at = comma + 1;
      }
      if (made.layer && inputs.size() != 1)
        p.fail(line.number, in_option.value_column,
               detail::concat(bare(kind.text), " takes exactly 1 input, got ", inputs.size()));
      if (made.merge && inputs.size() < 2)
        p.fail(line.number, in_option.value_column,
               detail::concat(bare(kind.text), " takes at least 2 inputs, got ", inputs.size()));
      const std::string node(name.text);
      defined.emplace(node, line.number);
      if (made.layer)
        g->add(node, std::move(made.layer), inputs);
      else
        g->add(node, std::move(made.merge), inputs);
      origins.push_back(p.where(line.number, name.column));
      ++layers;
    } else if (s == "output" && graph) {
      if (output)
        p.fail(line.number, statement.column,
               detail::concat("duplicate 'output' (first at line ", output->number, ")"));
      if (line.tokens.size() != 2) p.fail(line.number, statement.column, "expected 'output NAME'");
      output = &line;
    } else if (s == "layer" || s == "node" || s == "output") {
      p.fail(line.number, statement.column,
             graph ? "'layer' lines belong to 'model sequential'; a graph has "
                     "'node NAME TYPE in=...' lines"
                   : detail::concat(quoted(s),
                                    " lines belong to 'model graph'; a sequential "
                                    "model has 'layer TYPE ...' lines"));
    } else {
      p.fail(line.number, statement.column,
             detail::concat("unknown statement ", quoted(s), " (expected ",
                            graph ? "node or output" : "layer", ")"));
    }
  }
  if (layers == 0)
    p.fail(head.number, keyword.column,
           detail::concat("model has no layers (add '", graph ? "node" : "layer", "' lines)"));
  if (!graph) {
    seq->set_origins(std::move(origins));
    return seq;
  }
  g->set_origins(std::move(origins));
  for (const Reference& r : references)
    if (defined.find(r.name) == defined.end())
      p.fail(r.line, r.column,
             detail::concat("unknown input node ", quoted(r.name), " (no node of that name; the ",
                            "graph input is ", quoted(input_name), ")"));
  if (output) {
    const Token& name = output->tokens[1];
    if (defined.find(name.text) == defined.end() || name.text == input_name)
      p.fail(output->number, name.column,
             detail::concat("unknown output node ", quoted(name.text), " (no node of that name)"));
    g->set_output(std::string(name.text));
  }
  return g;
}

}  // namespace

template <class T>
std::unique_ptr<Model<T>> parse_model_spec(std::string_view text, const std::string& source) {
  return parse<T>(text, source);
}

template <class T>
std::unique_ptr<Model<T>> load_model_spec(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  CONVNET_CHECK(file != nullptr, path, ": cannot open model spec: ", std::strerror(errno));
  std::string text;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, file.get())) > 0;) text.append(buf, n);
  CONVNET_CHECK(!std::ferror(file.get()), path, ": cannot read model spec: ", std::strerror(errno));
  return parse<T>(text, path);
}

bool is_model_spec_path(const std::string& name) {
  return name.find('/') != std::string::npos ||
         (name.size() >= 4 && name.compare(name.size() - 4, 4, ".txt") == 0);
}

template <class T>
std::unique_ptr<Model<T>> load_model(const std::string& name_or_path, int64_t classes) {
  if (is_model_spec_path(name_or_path)) return load_model_spec<T>(name_or_path);
  return make_model<T>(name_or_path, classes);
}

template std::unique_ptr<Model<float>> parse_model_spec<float>(std::string_view,
                                                               const std::string&);
template std::unique_ptr<Model<double>> parse_model_spec<double>(std::string_view,
                                                                 const std::string&);
template std::unique_ptr<Model<float>> load_model_spec<float>(const std::string&);
template std::unique_ptr<Model<double>> load_model_spec<double>(const std::string&);
template std::unique_ptr<Model<float>> load_model<float>(const std::string&, int64_t);
template std::unique_ptr<Model<double>> load_model<double>(const std::string&, int64_t);

}  // namespace convnet
