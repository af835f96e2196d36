// The one SIMD vocabulary every kernel is written in: a float vector of kWidth lanes, its loads and
// stores, and its lane reductions (exp and log are in simd/exp_log.hpp).
//
// GCC/Clang vector extensions let the same source compile to AVX-512, AVX2, SSE2 or NEON; the width
// is fixed at compile time by the target flags (-march=native, or one variant of the portable build).
// Where the extensions compile badly (byte conversion, splats, masked tails, reductions) AVX-512 and
// AVX2 get intrinsics, SSE2 (the portable build's baseline) gets them for the byte conversion and the
// splat, and every other target gets the plain loop beside them.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>
#include <cstring>

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT::simd {

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

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
#define CSOFTMAX_MASKED_LOADS 1
#endif

typedef float vfloat __attribute__((vector_size(kWidth * sizeof(float))));
typedef int32_t vint __attribute__((vector_size(kWidth * sizeof(int32_t))));
typedef uint32_t vuint __attribute__((vector_size(kWidth * sizeof(uint32_t))));

inline vfloat zero() { return vfloat{}; }

// Not `vfloat{} + value`: 0 + x is not an identity for x = -0, so that would cost an add; and GCC
// builds a generic splat in two halves. The intrinsic is one vbroadcastss (from memory when it can).
inline vfloat broadcast(float value) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_set1_ps(value);
#elif defined(__AVX__)
  return (vfloat)_mm256_set1_ps(value);
#elif defined(__SSE2__)
  return (vfloat)_mm_set1_ps(value);
#else
  vfloat v;
  for (int i = 0; i < kWidth; ++i) v[i] = value;
  return v;
#endif
}

// 0, 1, 2, ...: lane numbers, e.g. to mask lanes past the last valid row.
inline vfloat lane_index() {
  vfloat v;
  for (int i = 0; i < kWidth; ++i) v[i] = static_cast<float>(i);
  return v;
}

// Loads and stores go through memcpy: unaligned-safe, and compiled to a single vector move.
inline vfloat load(const float* p) {
  vfloat v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

// uint8 pixels are widened to float in registers, so uint8 data never needs a float copy in memory.
// (GCC turns a byte-vector conversion written with vector extensions into a scalar loop.)
inline vfloat load(const uint8_t* p) {
#if defined(__AVX512F__)
  return (vfloat)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
#elif defined(__AVX2__)
  return (vfloat)_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
#elif defined(__SSE2__) && !defined(__AVX__)
  // SSE2 has no byte-to-int widening: interleave with zeros twice (bytes -> 16 -> 32 bits).
  int32_t word;
  std::memcpy(&word, p, sizeof(word));
  const __m128i zeros = _mm_setzero_si128();
  return (vfloat)_mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(word), zeros), zeros));
#else
  vfloat v;
  for (int i = 0; i < kWidth; ++i) v[i] = static_cast<float>(p[i]);
  return v;
#endif
}

inline void store(float* p, vfloat v) { std::memcpy(p, &v, sizeof(v)); }

// The first n (< kWidth) elements, other lanes 0: for row tails. Never touches memory past p[n-1].
inline vfloat load_partial(const float* p, int64_t n) {
#if defined(CSOFTMAX_MASKED_LOADS)
  return (vfloat)_mm512_maskz_loadu_ps(static_cast<__mmask16>((1u << n) - 1), p);
#else
  float buffer[kWidth] = {};
  for (int64_t i = 0; i < n; ++i) buffer[i] = p[i];
  return load(buffer);
#endif
}
inline vfloat load_partial(const uint8_t* p, int64_t n) {
#if defined(CSOFTMAX_MASKED_LOADS)
  const __m128i bytes = _mm_maskz_loadu_epi8(static_cast<__mmask16>((1u << n) - 1), p);
  return (vfloat)_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(bytes));
#else
  vfloat v = zero();
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(p[i]);
  return v;
#endif
}
inline void store_partial(float* p, vfloat v, int64_t n) {
#if defined(CSOFTMAX_MASKED_LOADS)
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), (__m512)v);
#else
  float buffer[kWidth];
  store(buffer, v);
  for (int64_t i = 0; i < n; ++i) p[i] = buffer[i];
#endif
}

// Makes the compiler materialize v in a register. GCC otherwise folds a vector load into every FMA
// that uses it, so a value used by several FMAs is loaded several times, and on this machine (one
// 512-bit load per cycle) loads rather than FMAs would bound the microkernels.
inline void keep_in_register(vfloat& v) {
#if defined(__x86_64__) || defined(__i386__)
  asm("" : "+v"(v));
#else
  (void)v;
#endif
}

inline vfloat vmax(vfloat a, vfloat b) { return a > b ? a : b; }

// The lanes of v combined by op, halves first (a balanced tree): a fixed order, so results never
// depend on context.
template <typename Op>
inline float reduce_lanes(vfloat v, Op op) {
  float buffer[kWidth];
  store(buffer, v);
  for (int width = kWidth / 2; width > 0; width /= 2)
    for (int i = 0; i < width; ++i) buffer[i] = op(buffer[i], buffer[i + width]);
  return buffer[0];
}

// Horizontal sum and max.
inline float hsum(vfloat v) {
#if defined(__AVX512F__)
  return _mm512_reduce_add_ps((__m512)v);
#else
  return reduce_lanes(v, [](float a, float b) { return a + b; });
#endif
}
inline float hmax(vfloat v) {
#if defined(__AVX512F__)
  return _mm512_reduce_max_ps((__m512)v);
#else
  return reduce_lanes(v, [](float a, float b) { return a > b ? a : b; });
#endif
}

#if defined(__AVX512F__)
// result[i] = the lanes of v[i] added up, for 16 vectors of 16 32-bit lanes, with `add` adding two
// vectors lane by lane: the shuffle network of transpose_sum, for float32 lanes (below) and int32
// (kernels/vnni_argmax.hpp). The shuffles are float-domain ones, so the float32 sums issue exactly as
// they always did.
template <typename Add>
inline __m512 transpose_reduce(const __m512* v, Add add) {
  // Level 1: pairs of vectors; in each 128-bit lane, [a0+a2, b0+b2, a1+a3, b1+b3].
  __m512 pairs[8];
  for (int i = 0; i < 8; ++i)
    pairs[i] = add(_mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]), _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]));
  // Level 2: in each 128-bit lane k, the lane-k sums of four consecutive inputs.
  __m512 quads[4];
  for (int i = 0; i < 4; ++i) {
    const __m512d a = _mm512_castps_pd(pairs[2 * i]), b = _mm512_castps_pd(pairs[2 * i + 1]);
    quads[i] = add(_mm512_castpd_ps(_mm512_unpacklo_pd(a, b)), _mm512_castpd_ps(_mm512_unpackhi_pd(a, b)));
  }
  // Levels 3 and 4: add the four 128-bit lanes, so lane 4j + t ends up holding sum(v[4j + t]).
  __m512 halves[2];
  for (int i = 0; i < 2; ++i) {
    const __m512 a = quads[2 * i], b = quads[2 * i + 1];
    halves[i] =
        add(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
  return add(_mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(2, 0, 2, 0)),
             _mm512_shuffle_f32x4(halves[0], halves[1], _MM_SHUFFLE(3, 1, 3, 1)));
}
#endif

// result[i] = sum of the lanes of v[i], for kWidth vectors: the horizontal sums of a whole tile of
// accumulators at once, in 45 shuffles and adds on AVX-512 instead of 16 separate reductions.
inline vfloat transpose_sum(const vfloat* v) {
#if defined(__AVX512F__)
  __m512 lanes[kWidth];
  for (int i = 0; i < kWidth; ++i) lanes[i] = (__m512)v[i];
  return (vfloat)transpose_reduce(lanes, [](__m512 a, __m512 b) { return _mm512_add_ps(a, b); });
#else
  vfloat result;
  for (int i = 0; i < kWidth; ++i) result[i] = hsum(v[i]);
  return result;
#endif
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::simd
