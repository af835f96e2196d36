// How many threads the kernels use, and who the calling thread is. Serial when built without OpenMP.
//
// Kernels never let the thread count change a result: work is cut into blocks that depend on the
// problem's shape only, and partial sums are combined in block order.
#pragma once

#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace csoftmax {

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

// 0 means "as many as OpenMP offers" (OMP_NUM_THREADS, else the cores).
inline int& requested_threads() {
  static int requested = 0;
  return requested;
}

inline int num_threads() { return requested_threads() > 0 ? requested_threads() : available_threads(); }

// Whether a pass over a (batch, features) x (features, classes) product has enough work to share:
// below ~1M multiply-adds a parallel region's start and barriers cost more than they save, and on a
// busy machine far more.
inline bool worth_threads(int64_t batch, int64_t features, int64_t classes) {
  return batch * features * classes >= (int64_t{1} << 20);
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

}  // namespace csoftmax
