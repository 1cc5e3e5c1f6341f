// The process default context (see convnet/context.hpp): the settings a model starts with. A
// model made without a context of its own copies default_context() when it is constructed (its
// settings and thread pool, with a scratch of its own), and a layer run outside any model runs
// in it. The functions below read and change it; the CLI sets --threads here before it makes
// its models. Kernels never read it: they run in the context their layer passes them.
#pragma once

#include "convnet/context.hpp"

namespace convnet {

// The process default context. Like any context it serves one thread at a time; models made on
// other threads run in copies of it.
Context& default_context();

// default_context()'s thread count: $CONVNET_THREADS, else hardware_threads(), unless set.
// Throws convnet::Error naming the variable when $CONVNET_THREADS is set but is not a count
// from 1 to kMaxThreads.
int num_threads();
// Sets default_context()'s thread count (1 to kMaxThreads), for the models made after.
void set_num_threads(int n);

// default_context()'s backend, Winograd tile and precision (see convnet/context.hpp), for the
// models made after a change; not to be changed while a kernel is running in it.
Backend backend();
void set_backend(Backend b);
WinogradTile winograd_tile();
void set_winograd_tile(WinogradTile t);
Precision precision();
void set_precision(Precision p);  // Bf16 without cpu_has_bf16(): convnet::Error

}  // namespace convnet
