// Helpers the data loaders share for their messages; internal, not part of the public API.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace convnet {

// "4294967296 bytes (4.0 GiB)": the exact count for the record, a readable size for the reader.
inline std::string bytes_text(uint64_t bytes) {
  char readable[32];
  const double mib = static_cast<double>(bytes) / (1 << 20);
  if (mib >= 1024)
    std::snprintf(readable, sizeof readable, "%.1f GiB", mib / 1024);
  else
    std::snprintf(readable, sizeof readable, "%.1f MiB", mib);
  return std::to_string(bytes) + " bytes (" + readable + ")";
}

// "<dir>/<stem>" or "<dir>/<stem>.gz", whichever exists. Throws naming both when both exist
// with different contents (once inflated), and, when neither does, naming what the folder lacks:
// the IDX file, or the test/ (or train/) folder of an image-folder dataset.
std::string find_idx_file(const std::string& dir, const std::string& stem);
// The same for a file that may be absent: "" when neither exists.
std::string find_optional_idx_file(const std::string& dir, const std::string& stem);

// An image file by its extension (any case): .png, .jpg, .jpeg, .pgm, .ppm, .pnm or .bmp, what
// the image folders hold; other files there are skipped.
bool is_image_file(const std::filesystem::path& path);

}  // namespace convnet
