// CONVNET_MULTIVERSION: compile a plain-C++ loop for AVX-512, AVX2 and baseline x86-64 and pick
// the version at load time from the CPU's features (GCC/Clang target_clones). Elsewhere a no-op.
//
// Not under ThreadSanitizer: the version is picked by an ifunc resolver that the dynamic loader
// runs before the sanitizer's runtime is initialised, and the instrumented resolver crashes
// there (every TSan binary died at start-up until this); the baseline version runs instead.
#pragma once

#if defined(__SANITIZE_THREAD__)
#define CONVNET_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CONVNET_TSAN 1
#endif
#endif

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !defined(CONVNET_TSAN)
#define CONVNET_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CONVNET_MULTIVERSION
#endif
