// A small command-line flag parser for the convnet subcommands: --name value, --name=value and
// boolean --switch flags, every flag documented with its default in --help.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "convnet/shape.hpp"

namespace convnet::cli {

// Thrown for a usage mistake (unknown flag, missing or malformed value): exit code 2.
struct UsageError {
  std::string message;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);
  void add(const std::string& name, const std::string& default_value, const std::string& help);
  void add_switch(const std::string& name, const std::string& help);
  // Accepts arguments that are not flags ("IMAGE..." in help), collected by positional().
  void add_positional(const std::string& name, const std::string& help);
  const std::vector<std::string>& positional() const { return positional_; }
  // Parses argv[first..argc). Returns false when --help was given (help() should be printed).
  bool parse(int argc, char** argv, int first);

  std::string get(const std::string& name) const;
  int64_t get_int(const std::string& name, int64_t min_value) const;
  double get_double(const std::string& name) const;
  bool get_switch(const std::string& name) const;
  // True when the command line gave the flag.
  bool given(const std::string& name) const;
  // Sets a flag the command line did not give (a switch: "true" or "false"), e.g. from a
  // checkpoint being resumed; a flag given on the command line keeps its value.
  void set_default(const std::string& name, const std::string& value);
  // The value as set_default() takes it ("true"/"false" for a switch).
  std::string value_text(const std::string& name) const;
  std::string help() const;
  // Every flag and its value (value_text), in the order they were added.
  std::vector<std::pair<std::string, std::string>> values() const;

 private:
  struct Flag {
    std::string value, default_value, help;
    bool is_switch = false;
    bool set = false;
  };
  const Flag& flag(const std::string& name) const;
  std::string command_, summary_;
  std::vector<std::string> order_;
  std::map<std::string, Flag> flags_;
  std::string positional_name_, positional_help_;  // empty: none accepted
  std::vector<std::string> positional_;
};

// A value the user typed, in quotes, for a message: cut at 80 characters, with its length, so a
// pasted megabyte is not echoed whole.
std::string quoted(const std::string& value);

// The flag's number, refused (a UsageError naming the flag, "expected WHAT >= 0") below zero.
double non_negative_flag(const ArgParser& args, const std::string& flag, const char* what);

// Parses "CxHxW" (e.g. 1x28x28) for the flag `name`; throws UsageError otherwise.
Shape parse_chw(const std::string& name, const std::string& text);

// The execution-context flags shared by the commands that run kernels: --threads N (0 = all cores
// or $CONVNET_THREADS) and --precision fp32|bf16, and applying them to the process default
// context: a UsageError above kMaxThreads, for a bad $CONVNET_THREADS, or for bf16 on a CPU
// without it, and a warning on stderr (prefixed by `command`) when --threads asks for more
// threads than the hardware runs.
void add_context_flags(ArgParser& args);
void apply_context_flags(const ArgParser& args, const std::string& command);
// A UsageError naming CONVNET_THREADS when it is set but not a count from 1 to kMaxThreads.
void check_threads_environment();

// A JSON string literal of s: quotes, backslashes and control characters escaped.
std::string json_string(const std::string& s);

}  // namespace convnet::cli
