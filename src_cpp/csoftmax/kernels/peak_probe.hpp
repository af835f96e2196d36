// The machine's own fp32 FMA peak, measured: the roofline every kernel figure is compared to.
//
// kAccumulators independent FMA chains at the build's vector width keep both FMA pipes busy (latency
// 4 cycles x 2 pipes needs at least 8 chains), with no loads at all, on every thread at once.
#pragma once

#include "csoftmax/variant.hpp"

#include <chrono>
#include <cstdint>

#include "csoftmax/simd/vector.hpp"
#include "csoftmax/parallel/threads.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

inline constexpr int kAccumulators = kPeakAccumulators;  // tuning.hpp

// `iterations` rounds of kAccumulators FMAs; returns a value that depends on all of them, so the
// compiler cannot drop the work.
__attribute__((noinline)) inline float fma_chains(int64_t iterations, float seed) {
  simd::vfloat acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = simd::broadcast(seed * static_cast<float>(i + 1));
  const simd::vfloat a = simd::broadcast(0.999999f), b = simd::broadcast(1e-7f);
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < kAccumulators; ++i) acc[i] = acc[i] * a + b;
  }
  simd::vfloat total = simd::zero();
  for (int i = 0; i < kAccumulators; ++i) total += acc[i];
  return simd::hsum(total);
}

struct PeakFlops {
  double flops;  // FLOP/s of all threads together
  int threads;   // how many ran: fewer than asked in a serial build or under OMP_THREAD_LIMIT
};

// FLOP/s of up to `threads` threads running fma_chains at once (2 flops per FMA lane), best of
// `repeats`; the work is counted for the threads that actually ran.
inline PeakFlops peak_fma_flops(int threads, int64_t iterations, int repeats) {
  PeakFlops best{0.0, 1};
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0.0f;
    int team = 1;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
#pragma omp single nowait
      team = team_size();
      sink += fma_chains(iterations, 1.0f);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double flops = 2.0 * simd::kWidth * kAccumulators * static_cast<double>(iterations) * team;
    if (sink != sink) return PeakFlops{0.0, team};  // never true; keeps `sink` alive
    if (flops / seconds > best.flops) best = PeakFlops{flops / seconds, team};
  }
  return best;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
