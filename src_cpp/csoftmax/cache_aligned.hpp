// Arrays that start on a cache line, and strides of whole lines between the arrays kept in one.
//
// A vector load that straddles two cache lines costs two L1 accesses. The kernels' hot arrays (the
// SGD epoch's copies of W, the fused step's partial gradients and tiles, the class-major copy of W)
// are read a whole vector at a time, rows of whole vectors apart. malloc starts them on 16 bytes, so
// an AVX-512 load from them straddles two lines unless malloc happened to start them on one.
//
// Measured on the Intel Xeon with benchmarks/bench_step_phases.py, three alternating runs of a build
// without these against one with them, the chapter's step on two threads: 37.2-42.9 us against
// 35.6-38.4 with the rows cached, 41.6-44.1 against 38.2-40.3 with them shuffled from memory. The
// second thread's copy of W and partial, which started 31,400 bytes after the first's (not even on 16
// bytes), had made its blocks 1.4-2.9 us slower than the first thread's; now the two take the same
// time.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace csoftmax::CSOFTMAX_VARIANT {

// The cache line of x86-64 CPUs, and the width of an AVX-512 vector.
inline constexpr std::size_t kCacheLineBytes = 64;

template <typename T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <typename U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kCacheLineBytes}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{kCacheLineBytes}); }
  template <typename U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const CacheLineAllocator<U>&) const { return false; }
};

// A std::vector whose data starts on a cache line.
template <typename T>
using LineAlignedVector = std::vector<T, CacheLineAllocator<T>>;

// `count` floats rounded up to whole cache lines: the stride that starts each of several arrays of
// `count` floats, kept one after another, on a line of its own.
inline int64_t line_padded_floats(int64_t count) {
  constexpr int64_t kLine = kCacheLineBytes / sizeof(float);
  return (count + kLine - 1) / kLine * kLine;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
