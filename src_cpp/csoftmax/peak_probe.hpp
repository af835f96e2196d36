// The machine's own fp32 FMA peak, measured: the roofline every kernel figure is compared to.
//
// kAccumulators independent FMA chains at the build's vector width keep both FMA pipes busy (latency
// 4 cycles x 2 pipes needs at least 8 chains), with no loads at all, on every thread at once.
#pragma once

#include <chrono>
#include <cstdint>

#include "csoftmax/simd.hpp"
#include "csoftmax/threads.hpp"

namespace csoftmax {

inline constexpr int kAccumulators = 16;

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

// FLOP/s of `threads` threads running fma_chains at once (2 flops per FMA lane), best of `repeats`.
inline double peak_fma_flops(int threads, int64_t iterations, int repeats) {
  double best = 0.0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    float sink = 0.0f;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_chains(iterations, 1.0f);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const double flops = 2.0 * simd::kWidth * kAccumulators * static_cast<double>(iterations) * threads;
    if (sink != sink) return 0.0;  // never true; keeps `sink` alive
    if (flops / seconds > best) best = flops / seconds;
  }
  return best;
}

}  // namespace csoftmax
