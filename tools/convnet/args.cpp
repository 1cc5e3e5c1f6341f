// ArgParser implementation.
#include "args.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "convnet/error.hpp"
#include "convnet/runtime.hpp"

namespace convnet::cli {

std::string quoted(const std::string& value) {
  constexpr size_t kShown = 80;
  if (value.size() <= kShown) return "'" + value + "'";
  return "'" + value.substr(0, kShown) + "...' (" + std::to_string(value.size()) + " characters)";
}

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

void ArgParser::add(const std::string& name, const std::string& default_value,
                    const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{default_value, default_value, help, false, false};
}

void ArgParser::add_switch(const std::string& name, const std::string& help) {
  order_.push_back(name);
  flags_[name] = Flag{"", "", help, true, false};
}

void ArgParser::add_positional(const std::string& name, const std::string& help) {
  positional_name_ = name;
  positional_help_ = help;
}

bool ArgParser::parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return false;
    if (arg.rfind("--", 0) != 0 && !positional_name_.empty()) {
      positional_.push_back(arg);
      continue;
    }
    if (arg.rfind("--", 0) != 0)
      throw UsageError{"unexpected argument " + quoted(arg) + " (flags start with --; see " +
                       command_ + " --help)"};
    std::string name = arg.substr(2), value;
    const bool inline_value = name.find('=') != std::string::npos;
    if (inline_value) {
      value = name.substr(name.find('=') + 1);
      name = name.substr(0, name.find('='));
    }
    auto it = flags_.find(name);
    if (it == flags_.end())
      throw UsageError{"unknown flag " + (name.size() > 80 ? quoted("--" + name) : "--" + name) +
                       " (see " + command_ + " --help)"};
    Flag& f = it->second;
    if (f.is_switch) {
      if (inline_value) throw UsageError{"--" + name + " takes no value"};
      f.set = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= argc) throw UsageError{"--" + name + " needs a value"};
      value = argv[++i];
    }
    f.value = value;
    f.set = true;
  }
  return true;
}

const ArgParser::Flag& ArgParser::flag(const std::string& name) const { return flags_.at(name); }

std::string ArgParser::get(const std::string& name) const { return flag(name).value; }

int64_t ArgParser::get_int(const std::string& name, int64_t min_value) const {
  const std::string& v = flag(name).value;
  int64_t out = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size())
    throw UsageError{"--" + name + ": expected an integer, got " + quoted(v)};
  if (out < min_value)
    throw UsageError{"--" + name + ": expected at least " + std::to_string(min_value) + ", got " +
                     v};
  return out;
}

double ArgParser::get_double(const std::string& name) const {
  const std::string& v = flag(name).value;
  try {
    size_t used = 0;
    const double out = std::stod(v, &used);
    if (used == v.size() && std::isfinite(out)) return out;
  } catch (const std::exception&) {
  }
  throw UsageError{"--" + name + ": expected a number, got " + quoted(v)};
}

bool ArgParser::get_switch(const std::string& name) const { return flag(name).set; }

bool ArgParser::given(const std::string& name) const { return flag(name).set; }

void ArgParser::set_default(const std::string& name, const std::string& value) {
  Flag& f = flags_.at(name);
  if (f.set) return;
  if (f.is_switch)
    f.set = value == "true";
  else
    f.value = value;
}

std::string ArgParser::value_text(const std::string& name) const {
  const Flag& f = flag(name);
  if (f.is_switch) return f.set ? "true" : "false";
  return f.value;
}

std::vector<std::pair<std::string, std::string>> ArgParser::values() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& name : order_) out.emplace_back(name, value_text(name));
  return out;
}

std::string ArgParser::help() const {
  std::ostringstream out;
  out << "usage: " << command_ << " [flags]"
      << (positional_name_.empty() ? "" : " " + positional_name_ + "...") << "\n\n"
      << summary_ << "\n\n";
  if (!positional_name_.empty())
    out << "  " << positional_name_ << "... " << positional_help_ << "\n\n";
  out << "flags:\n";
  for (const auto& name : order_) {
    const Flag& f = flags_.at(name);
    std::string left = "  --" + name + (f.is_switch ? "" : " VALUE");
    out << left << std::string(left.size() < 24 ? 24 - left.size() : 1, ' ') << f.help;
    if (!f.is_switch && !f.default_value.empty()) out << " (default: " << f.default_value << ")";
    out << "\n";
  }
  out << "  --help                show this help\n";
  return out.str();
}

void add_context_flags(ArgParser& args) {
  args.add("threads", "0", "worker threads; 0 = all cores ($CONVNET_THREADS if set)");
  args.add("precision", "fp32",
           "what convolutions and fully connected layers multiply in: fp32, or bf16 (mixed "
           "precision: bf16 products, float sums, weights and everything else; needs a CPU "
           "with AVX512_BF16)");
}

void check_threads_environment() {
  try {
    threads_from_environment();
  } catch (const Error& e) {
    throw UsageError{e.what()};
  }
}

void apply_context_flags(const ArgParser& args, const std::string& command) {
  try {
    set_precision(precision_from_name(args.get("precision")));
  } catch (const Error& e) {
    throw UsageError{"--" + std::string(e.what())};
  }
  check_threads_environment();
  const int64_t threads = args.get_int("threads", 0);
  if (threads > kMaxThreads)
    throw UsageError{"--threads: expected at most " + std::to_string(kMaxThreads) + ", got " +
                     args.get("threads")};
  if (threads > 0) set_num_threads(static_cast<int>(threads));
  // Allowed (the results are those of that many threads), but the work then runs on fewer.
  if (num_threads() > hardware_threads())
    std::cerr << command << ": warning: "
              << (threads > 0 ? "--threads " + std::to_string(threads)
                              : "CONVNET_THREADS=" + std::to_string(num_threads()))
              << " is more than the " << hardware_threads()
              << " hardware threads this process may use: the work is split " << num_threads()
              << " ways, as at that many threads, and runs on " << hardware_threads()
              << " (no faster than --threads " << hardware_threads() << ")\n";
}

double non_negative_flag(const ArgParser& args, const std::string& flag, const char* what) {
  const double v = args.get_double(flag);
  if (v < 0) throw UsageError{"--" + flag + ": expected " + what + " >= 0, got " + args.get(flag)};
  return v;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

Shape parse_chw(const std::string& name, const std::string& text) {
  int64_t dims[3] = {0, 0, 0};
  const char* p = text.data();
  const char* end = text.data() + text.size();
  for (int i = 0; i < 3; ++i) {
    const auto [next, ec] = std::from_chars(p, end, dims[i]);
    const bool separator_ok = i == 2 ? next == end : (next < end && *next == 'x');
    if (ec != std::errc() || dims[i] < 1 || !separator_ok)
      throw UsageError{"--" + name + ": expected CxHxW such as 1x28x28, got " + quoted(text)};
    p = next + 1;
  }
  return Shape{dims[0], dims[1], dims[2]};
}

}  // namespace convnet::cli
