// Atomic file writes through unique, never-followed temporaries (see convnet/files.hpp).
#include "convnet/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>

#include "convnet/error.hpp"

namespace convnet {
namespace {

// The folder a path is in ("." for a bare name) and its last component.
std::filesystem::path folder_of(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

// A suffix no other writer uses at the same time: this process's id (read at every call: a
// forked child must not repeat its parent's names), then random bits mixed with a per-process
// counter. O_EXCL makes a collision harmless: the next name is tried.
std::string unique_suffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 random(std::random_device{}());
  static const char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  auto base36 = [](uint64_t v, int digits) {
    std::string out;
    for (int i = 0; i < digits; ++i, v /= 36) out += kDigits[v % 36];
    return out;
  };
  return base36(static_cast<uint64_t>(::getpid()), 5) +
         base36(random() ^ (counter.fetch_add(1) * 0x9E3779B97F4A7C15ull), 8);
}

}  // namespace

void ignore_file_size_signal() {
  // Only the default action (which ends the process) is replaced: a handler the program set up
  // itself stays, and with it the program's own choice.
  struct sigaction current {};
  if (::sigaction(SIGXFSZ, nullptr, &current) == 0 && current.sa_handler == SIG_DFL)
    std::signal(SIGXFSZ, SIG_IGN);
}

std::string read_file(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  CONVNET_CHECK(file != nullptr, path, ": cannot open: ", std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, file.get())) > 0;) bytes.append(buf, n);
  CONVNET_CHECK(!std::ferror(file.get()), path, ": cannot read: ", std::strerror(errno));
  return bytes;
}

void check_output_file(const std::string& path, const std::string& what) {
  CONVNET_CHECK(!path.empty(), what, ": expected a file name, got an empty one");
  const std::string prefix = what.empty() ? path : what + " " + path;
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(prefix + ": is a folder; expected a file name (for example " +
                (std::filesystem::path(path) / "model.safetensors").string() + ")");
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    throw Error(prefix + ": is a link to a folder; expected a file name");
  const std::string dir = folder_of(path).string();
  if (::stat(dir.c_str(), &st) != 0)
    throw Error(prefix + ": cannot write in " + dir + ": " + std::strerror(errno));
  if (!S_ISDIR(st.st_mode)) throw Error(prefix + ": " + dir + " is not a folder");
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    throw Error(prefix + ": cannot write in " + dir + ": " + std::strerror(errno));
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  ignore_file_size_signal();
  struct stat st {};
  CONVNET_CHECK(!(::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)), path,
                ": cannot write: is a folder");
  const std::filesystem::path dir = folder_of(path);
  const std::string base = std::filesystem::path(path).filename().string();
  std::string tmp;
  int fd = -1;
  for (int attempt = 0; attempt < 100 && fd < 0; ++attempt) {
    tmp = (dir / ("." + base + ".tmp-" + unique_suffix())).string();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  CONVNET_CHECK(fd >= 0, path, ": cannot create a temporary in ", dir.string(), ": ",
                std::strerror(errno), " (", path, " is left as it was)");
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error(detail::concat(path, ": cannot ", what, ": ", std::strerror(err), " (", path,
                               " is left as it was)"));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w == 0) errno = ENOSPC;
    if (w <= 0) fail(detail::concat("write byte ", done, " of ", bytes.size()));
    done += static_cast<size_t>(w);
  }
  if (::fsync(fd) != 0) fail("fsync " + tmp);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(detail::concat(path, ": cannot close ", tmp, ": ", std::strerror(err), " (", path,
                               " is left as it was)"));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(detail::concat(path, ": cannot replace with ", tmp, ": ", std::strerror(err), " (",
                               path, " is left as it was)"));
  }
  // Make the rename itself durable.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace convnet
