// The one SIMD vocabulary every kernel is written in: a float vector of kWidth lanes.
//
// GCC/Clang vector extensions let the same source compile to AVX-512, AVX2, SSE2 or NEON; the width
// is fixed at build time by the target flags (-march=native by default, baseline for a portable build).
#pragma once

#include <cstdint>
#include <cstring>

namespace csoftmax::simd {

#if defined(__AVX512F__)
inline constexpr int kWidth = 16;
inline constexpr const char* kIsaName = "AVX-512";
#elif defined(__AVX2__) && defined(__FMA__)
inline constexpr int kWidth = 8;
inline constexpr const char* kIsaName = "AVX2+FMA";
#elif defined(__AVX__)
inline constexpr int kWidth = 8;
inline constexpr const char* kIsaName = "AVX";
#elif defined(__SSE2__)
inline constexpr int kWidth = 4;
inline constexpr const char* kIsaName = "SSE2";
#elif defined(__ARM_NEON)
inline constexpr int kWidth = 4;
inline constexpr const char* kIsaName = "NEON";
#else
inline constexpr int kWidth = 4;
inline constexpr const char* kIsaName = "generic";
#endif

typedef float vfloat __attribute__((vector_size(kWidth * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(kWidth * sizeof(int32_t))));
typedef uint8_t vbyte __attribute__((vector_size(kWidth)));

inline vfloat zero() { return vfloat{}; }
inline vfloat broadcast(float value) { return vfloat{} + value; }

// Loads and stores go through memcpy: unaligned-safe, and compiled to a single vector move.
inline vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
// uint8 pixels are widened to float in registers, so uint8 data never needs a float copy in memory.
inline vfloat load(const uint8_t* p) {
  vbyte b;
  std::memcpy(&b, p, sizeof(b));
  return __builtin_convertvector(b, vfloat);
}
inline void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof(v)); }

// The first n (< kWidth) elements, the other lanes set to `fill`: for row tails.
template <typename T>
inline vfloat load_partial(const T* p, int64_t n, float fill = 0.0f) {
  float buffer[kWidth];
  for (int i = 0; i < kWidth; ++i) buffer[i] = i < n ? static_cast<float>(p[i]) : fill;
  return load(buffer);
}
inline void store_partial(float* p, vfloat v, int64_t n) {
  float buffer[kWidth];
  store(buffer, v);
  for (int64_t i = 0; i < n; ++i) p[i] = buffer[i];
}

inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

// Horizontal reductions by halving, so the summation order is fixed (a balanced tree).
template <int N, typename V>
inline float reduce_sum(V v) {
  if constexpr (N == 1) {
    return v[0];
  } else {
    typedef float half_t __attribute__((vector_size(N / 2 * sizeof(float))));
    half_t lo, hi;
    std::memcpy(&lo, &v, sizeof(lo));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
    return reduce_sum<N / 2>(lo + hi);
  }
}
template <int N, typename V>
inline float reduce_max(V v) {
  if constexpr (N == 1) {
    return v[0];
  } else {
    typedef float half_t __attribute__((vector_size(N / 2 * sizeof(float))));
    half_t lo, hi;
    std::memcpy(&lo, &v, sizeof(lo));
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + sizeof(lo), sizeof(hi));
    return reduce_max<N / 2>(lo > hi ? lo : hi);
  }
}
inline float hsum(vfloat v) { return reduce_sum<kWidth>(v); }
inline float hmax(vfloat v) { return reduce_max<kWidth>(v); }

// exp(x) in float32, ~1 ulp on the range that matters (Cephes' expf polynomial on a range-reduced
// argument). Only ever called on shifted logits x <= 0; below -87.3 the true result is subnormal or
// zero and 0 is returned. NaN in, NaN out.
inline vfloat exp(vfloat x) {
  const vfloat lowest = broadcast(-87.33654475f);
  const vfloat highest = broadcast(88.37626266f);
  vfloat clamped = x < lowest ? lowest : x;
  clamped = clamped > highest ? highest : clamped;
  // n = round(x / ln 2), by the 1.5 * 2^23 trick (round-to-nearest without a rounding instruction).
  const vfloat round_magic = broadcast(12582912.0f);
  vfloat n = (clamped * 1.44269504088896341f + round_magic) - round_magic;
  // r = x - n ln2, with ln2 split in two so the product is exact.
  vfloat r = clamped - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  vfloat p = broadcast(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  vint exponent = (__builtin_convertvector(n, vint) + 127) << 23;
  vfloat scale;
  std::memcpy(&scale, &exponent, sizeof(scale));
  vfloat result = p * scale;
  return x < lowest ? zero() : result;
}

}  // namespace csoftmax::simd
