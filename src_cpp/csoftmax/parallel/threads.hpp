// How many threads the kernels use, and who the calling thread is. Serial when built without OpenMP.
//
// Kernels never let the thread count change a result: work is cut into blocks that depend on the
// problem's shape only, and partial sums are combined in block order.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>

#include "csoftmax/tuning.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

inline constexpr bool kOpenMP =
#ifdef _OPENMP
    true;
#else
    false;
#endif

inline int available_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// The most threads set_num_threads accepts: 4 per processor, and at least 64. More threads than
// processors only take turns on them (a kernel's blocks are fixed by the shape, so extra threads add
// nothing but scheduling), yet each costs its scratch and stack; 64 leaves room to test uneven splits
// (3, 5, 7 threads) on a small machine.
inline int max_threads() {
#ifdef _OPENMP
  const int processors = omp_get_num_procs();
#else
  const int processors = static_cast<int>(std::thread::hardware_concurrency());
#endif
  return std::max(64, 4 * processors);
}

// The count set_num_threads asked for; 0 means "as many as OpenMP offers" (OMP_NUM_THREADS, else the
// cores). Written under the GIL, read by kernels that run without it: hence atomic.
inline std::atomic<int>& requested_threads() {
  static std::atomic<int> requested{0};
  return requested;
}

// Read once per kernel call: the count a call starts with is the one it sizes its work for.
inline int num_threads() {
  const int requested = requested_threads().load(std::memory_order_relaxed);
  return requested > 0 ? requested : available_threads();
}

// Whether a pass over a (batch, features) x (features, classes) product has enough work to share
// (the threshold is in csoftmax/tuning.hpp).
inline bool worth_threads(int64_t batch, int64_t features, int64_t classes) {
  return batch * features * classes >= kMinParallelMultiplyAdds;
}

inline int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline int team_size() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

// The calling thread's share [begin, end) of n work items split evenly over the team in order: the
// same split as a static OpenMP loop, but one a thread can also compute for a step it has not reached.
struct ItemRange {
  int64_t begin, end;
};
inline ItemRange my_items(int64_t n) {
  const int64_t team = team_size(), t = thread_index();
  const int64_t base = n / team, extra = n % team;
  const int64_t begin = t * base + std::min<int64_t>(t, extra);
  return ItemRange{begin, begin + base + (t < extra ? 1 : 0)};
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
