// safetensors: a strict reader of the JSON header subset the format uses (objects, arrays,
// strings, integers), every check the format's reference loader makes, and an atomic writer.
#include "convnet/safetensors.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "convnet/error.hpp"

namespace convnet {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; this reader copies bytes as they are");

const SafeTensor* SafeTensors::find(const std::string& name) const {
  for (const SafeTensor& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference loader's limit

int64_t element_size(const std::string& dtype) {
  if (dtype == "F32") return 4;
  if (dtype == "F64") return 8;
  return 0;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

// --- JSON ----------------------------------------------------------------------------------
struct JsonMember;
struct Json {
  enum Kind { Object, Array, String, Integer } kind = Object;
  std::string text;                 // String
  int64_t integer = 0;              // Integer
  std::vector<JsonMember> members;  // Object, in order (a named struct: std::pair of the type
                                    // being defined does not compile with Clang)
  std::vector<Json> items;          // Array
};
struct JsonMember {
  std::string first;
  Json second;
};

const char* kind_name(Json::Kind k) {
  switch (k) {
    case Json::Object: return "an object";
    case Json::Array: return "an array";
    case Json::String: return "a string";
    case Json::Integer: return "an integer";
  }
  return "?";
}

class JsonParser {
 public:
  JsonParser(std::string_view text, const std::string& source) : s_(text), source_(source) {}

  Json document() {
    skip_space();
    Json v = value(0);
    skip_space();
    if (at_ < s_.size()) fail("expected the end of the header after the top-level object");
    return v;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    std::string got = at_ < s_.size() ? detail::concat("'", s_[at_], "'") : "the end";
    if (at_ < s_.size() && (static_cast<unsigned char>(s_[at_]) < 0x20 ||
                            static_cast<unsigned char>(s_[at_]) >= 0x7f))
      got = detail::concat("byte 0x", std::hex, static_cast<int>(static_cast<unsigned char>(s_[at_])));
    throw Error(detail::concat(source_, ": bad safetensors header: at header byte ", at_, ": ",
                               what, ", got ", got));
  }
  void skip_space() {
    while (at_ < s_.size() && (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' ||
                               s_[at_] == '\r'))
      ++at_;
  }
  void expect(char c) {
    if (at_ >= s_.size() || s_[at_] != c) fail(detail::concat("expected '", c, "'"));
    ++at_;
  }

  Json value(int depth) {
    if (depth > 8) fail("nesting deeper than the format has");
    if (at_ >= s_.size()) fail("expected a value");
    const char c = s_[at_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') {
      Json v;
      v.kind = Json::String;
      v.text = string();
      return v;
    }
    if (c == '-' || (c >= '0' && c <= '9')) return integer();
    fail("expected an object, array, string or integer (the values a safetensors header holds)");
  }

  Json object(int depth) {
    Json v;
    v.kind = Json::Object;
    expect('{');
    skip_space();
    if (at_ < s_.size() && s_[at_] == '}') {
      ++at_;
      return v;
    }
    for (;;) {
      skip_space();
      const size_t key_at = at_;
      if (at_ >= s_.size() || s_[at_] != '"') fail("expected a string key");
      std::string key = string();
      for (const auto& m : v.members)
        if (m.first == key) {
          at_ = key_at;
          fail(detail::concat("duplicate key \"", key, "\""));
        }
      skip_space();
      expect(':');
      skip_space();
      v.members.push_back(JsonMember{std::move(key), value(depth + 1)});
      skip_space();
      if (at_ < s_.size() && s_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < s_.size() && s_[at_] == '}') {
        ++at_;
        return v;
      }
      fail("expected ',' or '}'");
    }
  }

  Json array(int depth) {
    Json v;
    v.kind = Json::Array;
    expect('[');
    skip_space();
    if (at_ < s_.size() && s_[at_] == ']') {
      ++at_;
      return v;
    }
    for (;;) {
      skip_space();
      v.items.push_back(value(depth + 1));
      skip_space();
      if (at_ < s_.size() && s_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < s_.size() && s_[at_] == ']') {
        ++at_;
        return v;
      }
      fail("expected ',' or ']'");
    }
  }

  int hex4() {
    int v = 0;
    for (int i = 0; i < 4; ++i, ++at_) {
      if (at_ >= s_.size()) fail("expected 4 hex digits after \\u");
      const char c = s_[at_];
      const int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
      if (d < 0) fail("expected 4 hex digits after \\u");
      v = v * 16 + d;
    }
    return v;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xe0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      out += static_cast<char>(0xf0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  std::string string() {
    expect('"');
    std::string out;
    for (;;) {
      if (at_ >= s_.size()) fail("expected '\"' to end the string");
      const char c = s_[at_];
      if (c == '"') {
        ++at_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("expected no control character in a string");
      if (c != '\\') {
        out += c;
        ++at_;
        continue;
      }
      ++at_;
      if (at_ >= s_.size()) fail("expected an escape after '\\'");
      const char e = s_[at_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = static_cast<uint32_t>(hex4());
          if (cp >= 0xd800 && cp < 0xdc00) {  // a surrogate pair
            if (at_ + 1 >= s_.size() || s_[at_] != '\\' || s_[at_ + 1] != 'u')
              fail("expected a low surrogate \\u escape");
            at_ += 2;
            const uint32_t low = static_cast<uint32_t>(hex4());
            if (low < 0xdc00 || low >= 0xe000) fail("expected a low surrogate \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            fail("expected a high surrogate before a low one");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --at_;
          fail("expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u after '\\'");
      }
    }
  }

  Json integer() {
    const size_t start = at_;
    const bool negative = s_[at_] == '-';
    if (negative) ++at_;
    if (at_ >= s_.size() || s_[at_] < '0' || s_[at_] > '9') fail("expected a digit");
    if (s_[at_] == '0' && at_ + 1 < s_.size() && s_[at_ + 1] >= '0' && s_[at_ + 1] <= '9')
      fail("expected no leading zero");
    uint64_t v = 0;
    while (at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9') {
      const uint64_t d = static_cast<uint64_t>(s_[at_] - '0');
      if (v > (static_cast<uint64_t>(INT64_MAX) - d) / 10) {
        at_ = start;
        fail("expected an integer below 2^63");
      }
      v = v * 10 + d;
      ++at_;
    }
    if (at_ < s_.size() && (s_[at_] == '.' || s_[at_] == 'e' || s_[at_] == 'E'))
      fail("expected an integer (a safetensors header holds no fractions)");
    Json out;
    out.kind = Json::Integer;
    out.integer = negative ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
    return out;
  }

  std::string_view s_;
  const std::string& source_;
  size_t at_ = 0;
};

void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

}  // namespace

// --- encode --------------------------------------------------------------------------------
std::string encode_safetensors(const SafeTensors& file) {
  std::string header = "{";
  if (!file.metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : file.metadata) {
      if (!first) header += ',';
      first = false;
      json_string(header, key);
      header += ':';
      json_string(header, value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const SafeTensor& t : file.tensors) {
    const int64_t size = element_size(t.dtype);
    CONVNET_CHECK(size > 0, "safetensors: tensor '", t.name, "' has dtype '", t.dtype,
                  "'; only F32 and F64 are written");
    int64_t numel = 1;
    for (int64_t d : t.shape) numel *= d;
    CONVNET_CHECK(static_cast<int64_t>(t.bytes.size()) == numel * size, "safetensors: tensor '",
                  t.name, "' holds ", t.bytes.size(), " bytes, its shape needs ", numel * size);
    CONVNET_CHECK(t.name != "__metadata__" && !t.name.empty(), "safetensors: bad tensor name '",
                  t.name, "'");
    if (header.size() > 1) header += ',';
    json_string(header, t.name);
    header += ":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) header += ',';
      header += std::to_string(t.shape[i]);
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + t.bytes.size()) + "]}";
    offset += t.bytes.size();
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');  // data starts 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out.reserve(8 + header.size() + offset);
  out += header;
  for (const SafeTensor& t : file.tensors) out += t.bytes;
  return out;
}

// --- decode --------------------------------------------------------------------------------
SafeTensors decode_safetensors(std::string_view bytes, const std::string& source) {
  CONVNET_CHECK(bytes.size() >= 8, source, ": truncated: ", bytes.size(),
                " bytes, too short for the 8-byte header length of a safetensors file");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[static_cast<size_t>(i)])) << (8 * i);
  CONVNET_CHECK(n <= bytes.size() - 8, source, ": header length ", n,
                " goes past the end of the file (", bytes.size(),
                " bytes): truncated, or not a safetensors file");
  CONVNET_CHECK(n <= kMaxHeader, source, ": header length ", n, " is over the format's limit of ",
                kMaxHeader, " bytes");
  const Json root = JsonParser(bytes.substr(8, n), source).document();
  CONVNET_CHECK(root.kind == Json::Object, source, ": bad safetensors header: expected an object, got ",
                kind_name(root.kind));
  const std::string_view data = bytes.substr(8 + n);

  SafeTensors out;
  struct Span {
    uint64_t begin, end;
    size_t tensor;
  };
  std::vector<Span> spans;
  for (const auto& [name, v] : root.members) {
    auto bad = [&, &name = name](const std::string& what) {
      return Error(detail::concat(source, ": bad safetensors header: tensor '", name, "': ", what));
    };
    if (name == "__metadata__") {
      if (v.kind != Json::Object)
        throw Error(detail::concat(source, ": bad safetensors header: __metadata__ must be an ",
                                   "object of strings, got ", kind_name(v.kind)));
      for (const auto& [key, value] : v.members) {
        if (value.kind != Json::String)
          throw Error(detail::concat(source, ": bad safetensors header: __metadata__ value of '",
                                     key, "' must be a string, got ", kind_name(value.kind)));
        out.metadata[key] = value.text;
      }
      continue;
    }
    if (v.kind != Json::Object) throw bad(detail::concat("expected an object, got ", kind_name(v.kind)));
    const Json *dtype = nullptr, *shape = nullptr, *offsets = nullptr;
    for (const auto& [key, field] : v.members) {
      if (key == "dtype") dtype = &field;
      else if (key == "shape") shape = &field;
      else if (key == "data_offsets") offsets = &field;
      else throw bad("unknown field '" + key + "' (expected dtype, shape and data_offsets)");
    }
    if (!dtype || !shape || !offsets)
      throw bad(detail::concat("missing field '", !dtype ? "dtype" : !shape ? "shape" : "data_offsets",
                               "'"));
    if (dtype->kind != Json::String) throw bad("dtype must be a string");
    const int64_t size = element_size(dtype->text);
    if (size == 0)
      throw bad("unsupported dtype '" + dtype->text + "' (convnet reads F32 and F64)");
    if (shape->kind != Json::Array) throw bad("shape must be an array of integers");
    SafeTensor t{name, dtype->text, {}, {}};
    uint64_t numel = 1;
    for (const Json& d : shape->items) {
      if (d.kind != Json::Integer || d.integer < 0)
        throw bad("shape must be an array of non-negative integers");
      // Below 2^58 elements, so the byte count cannot overflow; the offsets check the rest.
      if (d.integer > 0 && numel > (uint64_t{1} << 58) / static_cast<uint64_t>(d.integer))
        throw bad("shape has more elements than any file could hold");
      numel *= static_cast<uint64_t>(d.integer);
      t.shape.push_back(d.integer);
    }
    if (offsets->kind != Json::Array || offsets->items.size() != 2 ||
        offsets->items[0].kind != Json::Integer || offsets->items[1].kind != Json::Integer ||
        offsets->items[0].integer < 0 || offsets->items[1].integer < offsets->items[0].integer)
      throw bad("data_offsets must be [begin, end] with 0 <= begin <= end");
    const uint64_t begin = static_cast<uint64_t>(offsets->items[0].integer);
    const uint64_t end = static_cast<uint64_t>(offsets->items[1].integer);
    if (end - begin != numel * static_cast<uint64_t>(size))
      throw bad(detail::concat("data_offsets [", begin, ", ", end, "] hold ", end - begin,
                               " bytes, but shape ", shape_text(t.shape), " of ", t.dtype,
                               " needs ", numel * static_cast<uint64_t>(size)));
    spans.push_back({begin, end, out.tensors.size()});
    out.tensors.push_back(std::move(t));
  }
  // The data must be tiled exactly: sorted by offset, each tensor starts where the last ended.
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t expected = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    const Span& s = spans[i];
    if (s.begin < expected) {
      const Span& p = spans[i - 1];
      throw Error(detail::concat(source, ": bad safetensors header: tensors '",
                                 out.tensors[p.tensor].name, "' [", p.begin, ", ", p.end,
                                 ") and '", out.tensors[s.tensor].name, "' [", s.begin, ", ",
                                 s.end, ") overlap"));
    }
    if (s.begin > expected)
      throw Error(detail::concat(source, ": bad safetensors header: data bytes [", expected, ", ",
                                 s.begin, ") belong to no tensor"));
    expected = s.end;
  }
  CONVNET_CHECK(expected <= data.size(), source, ": truncated: the header describes ", expected,
                " bytes of tensor data after byte ", 8 + n, ", the file holds ", data.size());
  CONVNET_CHECK(expected == data.size(), source, ": ", data.size() - expected,
                " bytes after the last tensor: the file is longer than its header describes");
  std::vector<SafeTensor> ordered;
  for (const Span& s : spans) {
    SafeTensor& t = out.tensors[s.tensor];
    t.bytes.assign(data.substr(s.begin, s.end - s.begin));
    ordered.push_back(std::move(t));
  }
  out.tensors = std::move(ordered);
  return out;
}

void write_safetensors(const std::string& path, const SafeTensors& file) {
  write_file_atomic(path, encode_safetensors(file));
}

SafeTensors read_safetensors(const std::string& path) {
  return decode_safetensors(read_file(path), path);
}

}  // namespace convnet
