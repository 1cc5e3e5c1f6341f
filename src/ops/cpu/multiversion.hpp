// CONVNET_MULTIVERSION: compile a plain-C++ loop for AVX-512, AVX2 and baseline x86-64 and pick
// the version at load time from the CPU's features (GCC/Clang target_clones). Elsewhere a no-op.
#pragma once

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CONVNET_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CONVNET_MULTIVERSION
#endif
