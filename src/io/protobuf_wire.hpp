// Protocol Buffers wire format, the part an ONNX file needs, written by hand so that exporting
// needs no protobuf library. A message is a sequence of fields, each
//   key = varint(field_number << 3 | wire_type), then the value by wire type:
//     0 VARINT  integers and enums: 7 bits per byte, least significant group first, the high bit
//               set on every byte but the last (300 = 0b10_0101100 -> 0xAC 0x02). A negative
//               int64 is its two's complement as a uint64, so always 10 bytes.
//     2 LEN     strings, bytes and embedded messages: varint(byte count), then the bytes.
//     5 I32     float: its 4 IEEE-754 bytes, little-endian.
// Fields may come in any order and a repeated field is the same key written once per element
// (ONNX's onnx.proto is proto2, whose repeated integers are unpacked by default; readers accept
// both forms).
#pragma once

#include <bit>
#include <cstdint>
#include <string>
#include <string_view>

namespace convnet::protobuf {

enum WireType : uint32_t { kVarint = 0, kLengthDelimited = 2, kFixed32 = 5 };

// Appends `value` as a varint.
inline void append_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// Appends the 4 bytes of `value`, least significant first, whatever the host's byte order.
inline void append_float_le(std::string& out, float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  for (int shift = 0; shift < 32; shift += 8) out.push_back(static_cast<char>(bits >> shift));
}

// One message being written: append fields, then take bytes() (or nest it with message_field).
class MessageWriter {
 public:
  // int32, int64, enum and bool fields.
  void varint_field(uint32_t field, uint64_t value) {
    key(field, kVarint);
    append_varint(bytes_, value);
  }
  void int_field(uint32_t field, int64_t value) {
    varint_field(field, static_cast<uint64_t>(value));  // two's complement, as protobuf's int64
  }
  // string and bytes fields.
  void bytes_field(uint32_t field, std::string_view value) {
    key(field, kLengthDelimited);
    append_varint(bytes_, value.size());
    bytes_.append(value);
  }
  void message_field(uint32_t field, const MessageWriter& message) {
    bytes_field(field, message.bytes());
  }
  void float_field(uint32_t field, float value) {
    key(field, kFixed32);
    append_float_le(bytes_, value);
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void key(uint32_t field, WireType type) {
    append_varint(bytes_, (static_cast<uint64_t>(field) << 3) | type);
  }
  std::string bytes_;
};

}  // namespace convnet::protobuf
