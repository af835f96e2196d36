// Register-blocked microkernels of the linear layer, on class-major weights.
//
// Weights are stored class-major, wt is (C, D): the logit of class c is a dot product along D, which
// fills every SIMD lane whatever C is (784 = 49 x 16), where a (D, C) layout would waste 6 of 16
// lanes at C = 10. Each function covers a tile of `kRowTile` rows by up to `kClassTile` classes, with
// one accumulator register per (row, class); the tile sizes are chosen per SIMD width so that the
// accumulators, the input rows and a weight vector fit in the register file.
//
// Rows of X are passed as pointers (a tile's rows need not be adjacent: they may be gathered by an
// index array). X may be float or uint8; uint8 is widened to float in registers.
#pragma once

#include <cstdint>
#include <type_traits>

#include "csoftmax/simd.hpp"

namespace csoftmax {

#if defined(__AVX512F__)
inline constexpr int kRowTile = 2;     // 2 rows x 10 classes = 20 of 32 zmm registers
inline constexpr int kClassTile = 10;
#else
inline constexpr int kRowTile = 2;     // 2 rows x 6 classes = 12 of 16 ymm/xmm registers
inline constexpr int kClassTile = 6;
#endif
static_assert(kClassTile <= 10, "with_class_tile dispatches up to 10 classes");

// out[r * ld_out + c] = x_scale * <x_rows[r], wt[c]> + bias[c]    for r < R, c < NC
// x_rows: R rows of length D; wt: NC class rows of length D (stride D); bias: NC values.
template <typename T, int R, int NC>
inline void logits_tile(float* out, int64_t ld_out, const T* const* x_rows, const float* wt, const float* bias,
                        int64_t D, float x_scale) {
  simd::vfloat acc[R][NC];
#pragma GCC unroll 32
  for (int i = 0; i < R * NC; ++i) acc[i / NC][i % NC] = simd::zero();

  int64_t d = 0;
  for (; d + simd::kWidth <= D; d += simd::kWidth) {
    simd::vfloat x[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x[r] = simd::load(x_rows[r] + d);
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) {
      const simd::vfloat w = simd::load(wt + c * D + d);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] += x[r] * w;
    }
  }
  if (d < D) {  // the row tail, zero-padded so it adds nothing
    simd::vfloat x[R];
    for (int r = 0; r < R; ++r) x[r] = simd::load_partial(x_rows[r] + d, D - d);
    for (int c = 0; c < NC; ++c) {
      const simd::vfloat w = simd::load_partial(wt + c * D + d, D - d);
      for (int r = 0; r < R; ++r) acc[r][c] += x[r] * w;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) out[r * ld_out + c] = simd::hsum(acc[r][c]) * x_scale + bias[c];
}

// dw[c] (+)= sum_r g[r * ld_g + c] * x_rows[r]     for c < NC, rows summed in order
// dw: NC class rows of length D (stride D); overwritten when `overwrite`, else accumulated into.
template <typename T, int NC>
inline void grad_weight_tile(float* dw, const T* const* x_rows, int rows, const float* g, int64_t ld_g, int64_t D,
                             bool overwrite) {
  int64_t d = 0;
  for (; d + simd::kWidth <= D; d += simd::kWidth) {
    simd::vfloat acc[NC];
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) acc[c] = overwrite ? simd::zero() : simd::load(dw + c * D + d);
    for (int r = 0; r < rows; ++r) {
      const simd::vfloat x = simd::load(x_rows[r] + d);
      const float* g_row = g + r * ld_g;
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) acc[c] += simd::broadcast(g_row[c]) * x;
    }
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) simd::store(dw + c * D + d, acc[c]);
  }
  if (d < D) {
    const int64_t tail = D - d;
    simd::vfloat acc[NC];
    for (int c = 0; c < NC; ++c) acc[c] = overwrite ? simd::zero() : simd::load_partial(dw + c * D + d, tail);
    for (int r = 0; r < rows; ++r) {
      const simd::vfloat x = simd::load_partial(x_rows[r] + d, tail);
      for (int c = 0; c < NC; ++c) acc[c] += simd::broadcast(g[r * ld_g + c]) * x;
    }
    for (int c = 0; c < NC; ++c) simd::store_partial(dw + c * D + d, acc[c], tail);
  }
}

// dx = sum_c g[c] * wt[c]     (one row; classes summed in order)
// dx: D values; g: C values; wt: (C, D).
inline void grad_input_row(float* dx, const float* g, const float* wt, int64_t C, int64_t D) {
  constexpr int kChunks = 4;  // independent accumulators, to hide the FMA latency
  constexpr int64_t kSpan = kChunks * simd::kWidth;
  int64_t d = 0;
  for (; d + kSpan <= D; d += kSpan) {
    simd::vfloat acc[kChunks] = {};
    for (int64_t c = 0; c < C; ++c) {
      const simd::vfloat gc = simd::broadcast(g[c]);
#pragma GCC unroll 4
      for (int k = 0; k < kChunks; ++k) acc[k] += gc * simd::load(wt + c * D + d + k * simd::kWidth);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kChunks; ++k) simd::store(dx + d + k * simd::kWidth, acc[k]);
  }
  for (; d < D; d += simd::kWidth) {
    const int64_t n = D - d < simd::kWidth ? D - d : simd::kWidth;
    simd::vfloat acc = simd::zero();
    for (int64_t c = 0; c < C; ++c) acc += simd::broadcast(g[c]) * simd::load_partial(wt + c * D + d, n);
    simd::store_partial(dx + d, acc, n);
  }
}

// Runtime class count -> compile-time tile: calls f(std::integral_constant<int, NC>{}) for NC in
// 1..kClassTile.
template <typename F>
inline void with_class_tile(int classes, F&& f) {
  switch (classes) {
#define CSOFTMAX_CASE(n) \
  case n:                \
    if constexpr (n <= kClassTile) f(std::integral_constant<int, n>{}); \
    break;
    CSOFTMAX_CASE(1) CSOFTMAX_CASE(2) CSOFTMAX_CASE(3) CSOFTMAX_CASE(4) CSOFTMAX_CASE(5)
    CSOFTMAX_CASE(6) CSOFTMAX_CASE(7) CSOFTMAX_CASE(8) CSOFTMAX_CASE(9) CSOFTMAX_CASE(10)
#undef CSOFTMAX_CASE
    default:
      break;
  }
}

}  // namespace csoftmax
