// Writing the user's files safely: every file convnet writes (checkpoints, logs, reports, ONNX
// models, pictures) goes through write_file_atomic, so a reader, a second run or a crash never
// sees half a file, and nothing is ever written through a link someone else placed.
#pragma once

#include <string>
#include <string_view>

namespace convnet {

// Writes `bytes` to `path` atomically. The bytes go to a new temporary in the target's folder,
// ".NAME.tmp-XXXXXXXXXXXXX" with a suffix of the process id and random bits, created with O_CREAT |
// O_EXCL | O_NOFOLLOW (so a file or link already at that name is never opened, and two processes
// writing one path never share a temporary); the temporary is fsync'ed, renamed over PATH, and the
// folder fsync'ed. The rename replaces PATH itself: a symbolic link at PATH is replaced, its target
// untouched. Concurrent writers of one path each rename a complete file: the last rename wins. On
// any failure the temporary is removed, PATH is left as it was, and convnet::Error names the file,
// the operation and the system's reason (a file-size limit gives EFBIG: SIGXFSZ is ignored, see
// ignore_file_size_signal).
void write_file_atomic(const std::string& path, std::string_view bytes);

// The whole of the file at `path`, as its bytes; convnet::Error naming the file and the system's
// reason when it cannot be opened or read.
std::string read_file(const std::string& path);

// Checks, before any work is done, that write_file_atomic(path, ...) can succeed as far as can
// be known now: PATH is not a folder, its folder exists and is writable. Throws convnet::Error
// naming `what` (a flag such as "--save"), the path and the reason.
void check_output_file(const std::string& path, const std::string& what);

// Sets SIGXFSZ (a file-size limit reached, `ulimit -f`) to be ignored when it has its default
// action, so that the write fails with EFBIG and the normal clean-up and message follow, instead
// of the process being killed with its temporary left behind. A handler of the program's own is
// left as it is. write_file_atomic calls it before every write.
void ignore_file_size_signal();

}  // namespace convnet
