// Register-blocked microkernels of the linear layer, on class-major weights.
//
// Weights are stored class-major, wt is (C, D): the logit of class c is a dot product along D, which
// fills every SIMD lane whatever C is (784 = 49 x 16), where a (D, C) layout would waste 6 of 16
// lanes at C = 10. Each function covers a tile of `kRowTile` rows by up to `kClassTile` classes, with
// one accumulator register per (row, class); the tile sizes are chosen per SIMD width so that the
// accumulators, the input rows and a weight vector fit in the register file.
//
// Rows of X are passed as pointers (a tile's rows need not be adjacent: they may be gathered by an
// index array). X may be float or uint8; uint8 is widened to float in registers. (On a CPU with AMX,
// uint8 rows take kernels/amx_logits.hpp and amx_grad_weight.hpp instead.)
//
// A tile of rows is simd::kWidth rows: after the forward, each logit sits in its row's lane
// (class-major, rows in lanes), so the softmax that follows runs on whole vectors whatever C is.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>
#include <type_traits>

#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

// The tiles (kRowTile, kClassTile; kGradChunkTile, kGradClassTile) are in csoftmax/tuning.hpp.

// partial[c * kWidth + r0 + r] = the kWidth partial sums of <x_rows[r], wt[c]>   for r < R, c < NC
// x_rows: R rows of length D; wt: NC class rows of length D (stride D). The partial sums are reduced
// later, a whole tile at a time (simd::transpose_sum), which leaves each logit in its row's lane.
template <typename T, int R, int NC>
inline void logits_tile(simd::vfloat* partial, int r0, const T* const* x_rows, const float* wt, int64_t D) {
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
      simd::vfloat w = simd::load(wt + c * D + d);
      simd::keep_in_register(w);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] += x[r] * w;
    }
  }
  if (d < D) {  // the row tail, zero-filled so it adds nothing
    simd::vfloat x[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x[r] = simd::load_partial(x_rows[r] + d, D - d);
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) {
      const simd::vfloat w = simd::load_partial(wt + c * D + d, D - d);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] += x[r] * w;
    }
  }
#pragma GCC unroll 32
  for (int i = 0; i < R * NC; ++i) partial[(i % NC) * simd::kWidth + r0 + i / NC] = acc[i / NC][i % NC];
}

// dw[c] (+)= sum_r g[r * g_row + c * g_class] * x_rows[r]     for c < NC, rows summed in order
// dw: NC class rows of length D (stride D); overwritten when `overwrite`, else accumulated into.
// The inner step covers CH vectors along D (CH <= kGradChunkTile), so each gradient broadcast feeds CH
// FMAs.
template <typename T, int NC>
inline void grad_weight_tile(float* dw, const T* const* x_rows, int rows, const float* g, int64_t g_row,
                             int64_t g_class, int64_t D, bool overwrite) {
  auto accumulate = [&](int64_t d, auto chunks, auto load_x, auto load_dw, auto store_dw) {
    constexpr int CH = decltype(chunks)::value;
    simd::vfloat acc[CH][NC];
#pragma GCC unroll 32
    for (int i = 0; i < CH * NC; ++i)
      acc[i / NC][i % NC] = overwrite ? simd::zero() : load_dw(dw + (i % NC) * D + d + (i / NC) * simd::kWidth);
    for (int r = 0; r < rows; ++r) {
      const T* x_row = x_rows[r] + d;
      simd::vfloat x[CH];
#pragma GCC unroll 4
      for (int k = 0; k < CH; ++k) x[k] = load_x(x_row + k * simd::kWidth);
      const float* g_r = g + r * g_row;
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) {
        simd::vfloat gc = simd::broadcast(g_r[c * g_class]);
        simd::keep_in_register(gc);
#pragma GCC unroll 4
        for (int k = 0; k < CH; ++k) acc[k][c] += gc * x[k];
      }
    }
#pragma GCC unroll 32
    for (int i = 0; i < CH * NC; ++i) store_dw(dw + (i % NC) * D + d + (i / NC) * simd::kWidth, acc[i / NC][i % NC]);
  };
  auto load = [](const auto* p) { return simd::load(p); };
  auto store = [](float* p, simd::vfloat v) { simd::store(p, v); };
  int64_t d = 0;
  for (; d + kGradChunkTile * simd::kWidth <= D; d += kGradChunkTile * simd::kWidth)
    accumulate(d, std::integral_constant<int, kGradChunkTile>{}, load, load, store);
  for (; d + simd::kWidth <= D; d += simd::kWidth) accumulate(d, std::integral_constant<int, 1>{}, load, load, store);
  if (d < D) {
    const int64_t n = D - d;
    auto load_tail = [n](const auto* p) { return simd::load_partial(p, n); };
    accumulate(d, std::integral_constant<int, 1>{}, load_tail, load_tail,
               [n](float* p, simd::vfloat v) { simd::store_partial(p, v, n); });
  }
}

// dx = sum_c g[c * g_class] * wt[c]     (one row; classes summed in order)
// dx: D values; wt: (C, D).
inline void grad_input_row(float* dx, const float* g, int64_t g_class, const float* wt, int64_t C, int64_t D) {
  constexpr int kChunks = kGradInputChains;
  constexpr int64_t kSpan = kChunks * simd::kWidth;
  int64_t d = 0;
  for (; d + kSpan <= D; d += kSpan) {
    simd::vfloat acc[kChunks] = {};
    for (int64_t c = 0; c < C; ++c) {
      const simd::vfloat gc = simd::broadcast(g[c * g_class]);
#pragma GCC unroll 4
      for (int k = 0; k < kChunks; ++k) acc[k] += gc * simd::load(wt + c * D + d + k * simd::kWidth);
    }
#pragma GCC unroll 4
    for (int k = 0; k < kChunks; ++k) simd::store(dx + d + k * simd::kWidth, acc[k]);
  }
  for (; d < D; d += simd::kWidth) {
    const int64_t n = D - d < simd::kWidth ? D - d : simd::kWidth;
    simd::vfloat acc = simd::zero();
    for (int64_t c = 0; c < C; ++c) acc += simd::broadcast(g[c * g_class]) * simd::load_partial(wt + c * D + d, n);
    simd::store_partial(dx + d, acc, n);
  }
}

// Runtime class count -> compile-time tile: calls f(std::integral_constant<int, NC>{}) for NC in
// 1..kMax.
template <int kMax = kClassTile, typename F>
inline void with_class_tile(int classes, F&& f) {
  switch (classes) {
#define CSOFTMAX_CASE(n) \
  case n:                \
    if constexpr (n <= kMax) f(std::integral_constant<int, n>{}); \
    break;
    CSOFTMAX_CASE(1) CSOFTMAX_CASE(2) CSOFTMAX_CASE(3) CSOFTMAX_CASE(4) CSOFTMAX_CASE(5)
    CSOFTMAX_CASE(6) CSOFTMAX_CASE(7) CSOFTMAX_CASE(8) CSOFTMAX_CASE(9) CSOFTMAX_CASE(10)
#undef CSOFTMAX_CASE
    default:
      break;
  }
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
