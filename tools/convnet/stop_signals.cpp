// The stop signals: the handler only records which one came.
#include "stop_signals.hpp"

#include <csignal>

namespace convnet::cli {
namespace {

constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP};
volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int signal) {
  g_stop_signal = signal;
  for (const int s : kStopSignals) std::signal(s, SIG_DFL);
}

}  // namespace

void handle_stop_signals() {
  g_stop_signal = 0;
  for (const int s : kStopSignals) std::signal(s, on_stop_signal);
}

void restore_stop_signals() {
  for (const int s : kStopSignals) std::signal(s, SIG_DFL);
}

int stop_signal() { return g_stop_signal; }

const char* stop_signal_name(int signal) {
  switch (signal) {
    case 0:
      return nullptr;
    case SIGINT:
      return "Ctrl-C (SIGINT)";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

}  // namespace convnet::cli
