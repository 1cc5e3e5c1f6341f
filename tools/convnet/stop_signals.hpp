// Ctrl-C (SIGINT), SIGTERM and SIGHUP (what Docker, SLURM, systemd and a closed ssh session
// send) while a command trains: the first is only recorded, and the training loop stops after
// its current batch and saves; a second, with the default actions restored, ends the process at
// once.
#pragma once

namespace convnet::cli {

// Installs the handlers (and forgets any signal recorded before).
void handle_stop_signals();
// Restores the default actions.
void restore_stop_signals();
// The signal received since handle_stop_signals(), or 0.
int stop_signal();
// "Ctrl-C (SIGINT)", "SIGTERM", "SIGHUP"; null for 0.
const char* stop_signal_name(int signal);

}  // namespace convnet::cli
