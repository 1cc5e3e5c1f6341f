// write_file_atomic and check_output_file: a link at any name the writer uses is never written
// through, writers of one path never share a temporary, a file-size limit is an error and not a
// killed process, and nothing is ever left beside the target.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "convnet/files.hpp"
#include "support/testing.hpp"

namespace convnet {
namespace {

namespace fs = std::filesystem;

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class AtomicWrites : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("convnet-files-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  // The names in the folder, sorted.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  fs::path dir_;
};

TEST_F(AtomicWrites, ALinkAtTheOldTemporaryNameIsNotFollowed) {
  std::ofstream(path("victim.txt")) << "victim";
  fs::create_symlink("victim.txt", path("m.st.tmp"));
  write_file_atomic(path("m.st"), "checkpoint bytes");
  EXPECT_EQ(read_text(path("victim.txt")), "victim");
  EXPECT_EQ(read_text(path("m.st")), "checkpoint bytes");
  EXPECT_TRUE(fs::is_symlink(path("m.st.tmp")));
  EXPECT_EQ(names(), (std::vector<std::string>{"m.st", "m.st.tmp", "victim.txt"}));
}

TEST_F(AtomicWrites, ALinkAtThePathIsReplacedAndItsTargetUntouched) {
  std::ofstream(path("victim.txt")) << "victim";
  fs::create_symlink("victim.txt", path("m.st"));
  write_file_atomic(path("m.st"), "new");
  EXPECT_EQ(read_text(path("victim.txt")), "victim");
  EXPECT_FALSE(fs::is_symlink(path("m.st")));
  EXPECT_EQ(read_text(path("m.st")), "new");
}

TEST_F(AtomicWrites, AStaleTemporaryFolderDoesNotStopTheWrite) {
  fs::create_directory(path("m.st.tmp"));
  write_file_atomic(path("m.st"), "bytes");
  EXPECT_EQ(read_text(path("m.st")), "bytes");
}

TEST_F(AtomicWrites, AFolderAtThePathIsRefusedAndLeftAlone) {
  fs::create_directory(path("d"));
  EXPECT_EQ(testing::error_of([&] { write_file_atomic(path("d"), "x"); }),
            path("d") + ": cannot write: is a folder");
  EXPECT_TRUE(fs::is_directory(path("d")));
  EXPECT_EQ(names(), std::vector<std::string>{"d"});
}

// Two processes write one path 100 times each, with contents of different lengths: every write
// succeeds, the file is always one writer's complete bytes, and no temporary is left.
TEST_F(AtomicWrites, ConcurrentWritersOfOnePathEachRenameACompleteFile) {
  const std::string target = path("shared.st");
  const std::string contents[2] = {std::string(300000, 'a'), std::string(200001, 'b')};
  pid_t children[2];
  for (int w = 0; w < 2; ++w) {
    children[w] = ::fork();
    ASSERT_GE(children[w], 0);
    if (children[w] == 0) {
      int failures = 0;
      for (int i = 0; i < 100; ++i) {
        try {
          write_file_atomic(target, contents[w]);
        } catch (const Error&) {
          ++failures;
        }
      }
      ::_exit(failures == 0 ? 0 : 1);
    }
  }
  // Meanwhile the parent reads: never a partial file.
  int reads = 0;
  for (int i = 0; i < 200; ++i) {
    if (!fs::exists(target)) continue;
    const std::string seen = read_text(target);
    ++reads;
    ASSERT_TRUE(seen == contents[0] || seen == contents[1]) << seen.size() << " bytes";
  }
  for (const pid_t child : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "a writer failed";
  }
  const std::string last = read_text(target);
  EXPECT_TRUE(last == contents[0] || last == contents[1]);
  EXPECT_EQ(names(), std::vector<std::string>{"shared.st"});
}

// Under `ulimit -f` the write fails with EFBIG and a message; the process is not killed by
// SIGXFSZ (whose default action ends it), the previous file stays and no temporary is left.
// Run in a child, whose SIGXFSZ is at its default action as in a fresh process.
TEST_F(AtomicWrites, AFileSizeLimitIsAnErrorNotAKilledProcess) {
  const std::string target = path("m.st");
  write_file_atomic(target, "previous");
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::signal(SIGXFSZ, SIG_DFL);
    struct rlimit limit {};
    getrlimit(RLIMIT_FSIZE, &limit);
    limit.rlim_cur = 10000;
    setrlimit(RLIMIT_FSIZE, &limit);
    try {
      write_file_atomic(target, std::string(50000, 'x'));
    } catch (const Error& e) {
      const std::string m = e.what();
      ::_exit(m.find(target + ": cannot write byte ") == 0 &&
                      m.find("File too large (" + target + " is left as it was)") !=
                          std::string::npos
                  ? 0
                  : 2);
    }
    ::_exit(3);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "2: another message, 3: no error";
  EXPECT_EQ(read_text(target), "previous");
  EXPECT_EQ(names(), std::vector<std::string>{"m.st"});
}

TEST_F(AtomicWrites, OutputPathsAreCheckedBeforeAnyWork) {
  fs::create_directory(path("d"));
  EXPECT_EQ(testing::error_of([&] { check_output_file(path("d"), "--save"); }),
            "--save " + path("d") + ": is a folder; expected a file name (for example " +
                path("d") + "/model.safetensors)");
  EXPECT_EQ(testing::error_of([&] { check_output_file(path("no/x.st"), "--save"); }),
            "--save " + path("no/x.st") + ": cannot write in " + path("no") +
                ": No such file or directory");
  fs::create_directory(path("m.st.tmp"));  // a stale temporary folder is no obstacle
  EXPECT_EQ(testing::error_of([&] { check_output_file(path("m.st"), "--save"); }), "(no error)");
}

}  // namespace
}  // namespace convnet
