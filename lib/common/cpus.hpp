#pragma once

// The CPUs a thread may run on. After EAL init the main thread holds the main lcore's CPUs;
// segx's control threads belong there, never on a busy-polling data-plane lcore's CPU.

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>

#include "common/result.hpp"

namespace segx {

/// How many CPUs the calling thread may run on (at least 1, at most 256).
inline uint32_t callers_cpu_count() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  return static_cast<uint32_t>(std::clamp(CPU_COUNT(&set), 1, 256));
}

/// Confines `thread` (named `what` in errors) to the CPUs the calling thread may run on; a
/// thread that is not running is left alone.
inline Status share_callers_cpus(std::thread& thread, std::string_view what) {
  if (!thread.joinable()) return {};
  cpu_set_t set;
  CPU_ZERO(&set);
  if (int e = pthread_getaffinity_np(pthread_self(), sizeof set, &set); e != 0)
    return Error{std::string(what) + ": cannot read this thread's CPUs: " + std::strerror(e)};
  if (int e = pthread_setaffinity_np(thread.native_handle(), sizeof set, &set); e != 0)
    return Error{std::string(what) +
                 ": cannot confine it to this thread's CPUs: " + std::strerror(e)};
  return {};
}

}  // namespace segx
