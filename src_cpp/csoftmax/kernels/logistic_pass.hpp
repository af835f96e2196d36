// One full-batch pass of a linear model over X, in float64: the machinery the logistic-regression
// kernels (loss + gradient, Hessian-vector product) share.
//
//   for every row i:  z_i = x_scale * x_i . P^T + bias        (P is (M, d): coef, or coef and V stacked)
//                     g_i = row(i, z_i)  (K values; the row function also returns a loss term)
//   out (K, d) = sum_i g_i^T x_scale x_i;   out_bias (K) = sum_i g_i;   loss = sum of the row terms
//
// X is read from memory once: a tile of kTileRows rows is packed (converted to float64, scaled,
// zero-padded to a whole number of vectors) into a per-thread buffer, and goes through the forward,
// the row function and the gradient update while it is in cache. The packing also reads F-ordered X
// in place: a tile is kTileRows consecutive elements of every column.
//
// Why float64 throughout, even for float32 X: see logistic_loss_gradient.hpp.
//
// Threads: rows are cut into slabs that depend on (n, K, d) only; each slab accumulates its own
// partial [out | out_bias | loss], and the partials are summed in slab order. So results are
// bit-identical for any thread count. The partials are the only memory beyond X and the parameters:
// at most kMaxSlabs * (K * d + K) doubles, capped at kPartialBytes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "csoftmax/linear_tiles.hpp"
#include "csoftmax/simd.hpp"
#include "csoftmax/threads.hpp"

namespace csoftmax::logistic {

// simd.hpp speaks float32 only: a float64 vector of the same register width, for these kernels.
inline constexpr int kLanes = simd::kWidth / 2;
typedef double vdouble __attribute__((vector_size(kLanes * sizeof(double))));

inline vdouble load(const double* p) {
  vdouble v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
inline void store(double* p, vdouble v) { std::memcpy(p, &v, sizeof(v)); }
inline vdouble broadcast(double value) { return vdouble{} + value; }
inline double hsum(vdouble v) {  // halves first, a fixed order
  double buffer[kLanes];
  store(buffer, v);
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int i = 0; i < width; ++i) buffer[i] += buffer[i + width];
  return buffer[0];
}

// Rows per tile: a whole number of the forward's register tiles (kRowTile rows). 8 rows of 784
// float64 features are 50 KB: the tile stays in L1/L2 between the forward and the gradient update.
inline constexpr int kTileRows = 8;
static_assert(kTileRows % kRowTile == 0, "a tile is a whole number of register tiles");

inline int64_t padded_features(int64_t d) { return (d + kLanes - 1) / kLanes * kLanes; }

// Element (i, j) of X is data[i * row_stride + j * col_stride]: C order (d, 1) or F order (1, n).
template <typename T>
struct MatrixView {
  const T* data;
  int64_t rows, cols, row_stride, col_stride;
};

// tile[r * dp + j] = x_scale * X(begin + r, j), zero for j >= d and for r >= rows (a short last tile).
template <typename T>
inline void pack_tile(double* tile, const MatrixView<T>& X, int64_t begin, int rows, int64_t dp, double x_scale) {
  const int64_t d = X.cols;
  if (X.col_stride == 1) {
    for (int r = 0; r < rows; ++r) {
      const T* x = X.data + (begin + r) * X.row_stride;
      double* t = tile + r * dp;
      for (int64_t j = 0; j < d; ++j) t[j] = x_scale * static_cast<double>(x[j]);
    }
  } else {  // F order: each column holds the tile's rows side by side
    for (int64_t j = 0; j < d; ++j) {
      const T* x = X.data + begin * X.row_stride + j * X.col_stride;
      for (int r = 0; r < rows; ++r) tile[r * dp + j] = x_scale * static_cast<double>(x[r * X.row_stride]);
    }
  }
  for (int r = 0; r < rows; ++r) std::fill(tile + r * dp + d, tile + (r + 1) * dp, 0.0);
  std::fill(tile + rows * dp, tile + kTileRows * dp, 0.0);
}

// z[r * M + c0 + c] = <tile row r0 + r, p row c>   for r < R, c < NC  (p: NC rows of length dp)
template <int R, int NC>
inline void dot_block(double* z, int64_t M, const double* tile, const double* p, int64_t dp) {
  vdouble acc[R][NC] = {};
  for (int64_t j = 0; j < dp; j += kLanes) {
    vdouble x[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x[r] = load(tile + r * dp + j);
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) {
      const vdouble w = load(p + c * dp + j);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][c] += x[r] * w;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) z[r * M + c] = hsum(acc[r][c]);
}

// z (kTileRows, M) = tile . P^T + bias,  P (M, dp).
inline void tile_forward(double* z, const double* tile, const double* P, const double* bias, int64_t M, int64_t dp) {
  for (int64_t c0 = 0; c0 < M; c0 += kClassTile) {
    const int nc = static_cast<int>(std::min<int64_t>(kClassTile, M - c0));
    with_class_tile(nc, [&](auto classes) {
      for (int r = 0; r < kTileRows; r += kRowTile)
        dot_block<kRowTile, decltype(classes)::value>(z + r * M + c0, M, tile + r * dp, P + c0 * dp, dp);
    });
  }
  for (int r = 0; r < kTileRows; ++r)
    for (int64_t c = 0; c < M; ++c) z[r * M + c] += bias[c];
}

// out[c * dp + j] += sum_r g[r * K + c0 + c] * tile[r * dp + j]   for c < NC, rows summed in order
template <int NC>
inline void update_block(double* out, const double* g, int64_t K, const double* tile, int rows, int64_t dp) {
  auto chunk = [&](int64_t j, auto vectors) {
    constexpr int CH = decltype(vectors)::value;
    vdouble acc[CH][NC];
    for (int c = 0; c < NC; ++c)
      for (int k = 0; k < CH; ++k) acc[k][c] = load(out + c * dp + j + k * kLanes);
    for (int r = 0; r < rows; ++r) {
      vdouble x[CH];
#pragma GCC unroll 4
      for (int k = 0; k < CH; ++k) x[k] = load(tile + r * dp + j + k * kLanes);
#pragma GCC unroll 16
      for (int c = 0; c < NC; ++c) {
        const vdouble gc = broadcast(g[r * K + c]);
#pragma GCC unroll 4
        for (int k = 0; k < CH; ++k) acc[k][c] += gc * x[k];
      }
    }
    for (int c = 0; c < NC; ++c)
      for (int k = 0; k < CH; ++k) store(out + c * dp + j + k * kLanes, acc[k][c]);
  };
  int64_t j = 0;
  for (; j + kChunkTile * kLanes <= dp; j += kChunkTile * kLanes) chunk(j, std::integral_constant<int, kChunkTile>{});
  for (; j < dp; j += kLanes) chunk(j, std::integral_constant<int, 1>{});
}

// out (K, dp) += g^T . tile   over the tile's first `rows` rows; g is (kTileRows, K).
inline void tile_update(double* out, const double* g, int64_t K, const double* tile, int rows, int64_t dp) {
  for (int64_t c0 = 0; c0 < K; c0 += kClassTile) {
    const int nc = static_cast<int>(std::min<int64_t>(kClassTile, K - c0));
    with_class_tile(nc, [&](auto classes) {
      update_block<decltype(classes)::value>(out + c0 * dp, g + c0, K, tile, rows, dp);
    });
  }
}

// The row partition: a function of the shape only, never of the thread count.
struct SlabPlan {
  int64_t slabs, rows_per_slab;
};

inline SlabPlan plan_slabs(int64_t n, int64_t K, int64_t d) {
  constexpr int64_t kMaxSlabs = 32;                      // enough to balance any small team
  constexpr int64_t kMinRowsPerSlab = 256;               // below, a slab's partial costs more than its rows
  constexpr int64_t kPartialBytes = int64_t{64} << 20;  // cap on the memory of all partials
  const int64_t partial_bytes = (K * padded_features(d) + K + 1) * int64_t{sizeof(double)};
  int64_t slabs = std::min({(n + kMinRowsPerSlab - 1) / kMinRowsPerSlab, kMaxSlabs,
                            std::max<int64_t>(1, kPartialBytes / partial_bytes)});
  slabs = std::max<int64_t>(1, slabs);
  int64_t rows = (n + slabs - 1) / slabs;
  rows = (rows + kTileRows - 1) / kTileRows * kTileRows;  // whole tiles: only the last one can be short
  return SlabPlan{(n + rows - 1) / rows, rows};
}

// Where a pass writes: out (K, d), out_bias (K) or nullptr, and the loss sum.
struct PassOutput {
  double* out;
  double* out_bias;
  double loss;
};

// Runs the pass described at the top. P is (M, dp) float64 (x_scale not folded in), bias (M); row(i,
// z, g) reads row i's M values z, writes its K values g and returns its loss term. Call from outside
// any parallel region: it opens one of num_threads() threads when the work is worth it.
template <typename T, typename RowFunction>
inline void linear_pass(PassOutput& result, const MatrixView<T>& X, double x_scale, const double* P,
                        const double* bias, int64_t M, int64_t K, RowFunction&& row) {
  const int64_t n = X.rows, d = X.cols, dp = padded_features(d);
  const SlabPlan plan = plan_slabs(n, K, d);
  const int64_t partial_size = K * dp + K + 1;  // [out (K, dp) | out_bias (K) | loss]
  std::vector<double> partials(static_cast<size_t>(plan.slabs * partial_size));
  const int threads = num_threads();
  struct Scratch {
    std::vector<double> tile, z, g;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(threads));

  auto run_slab = [&](int64_t s, Scratch& work) {
    double* partial = partials.data() + s * partial_size;
    double* partial_bias = partial + K * dp;
    std::fill(partial, partial + partial_size, 0.0);
    double loss = 0.0;
    const int64_t end = std::min(n, (s + 1) * plan.rows_per_slab);
    for (int64_t begin = s * plan.rows_per_slab; begin < end; begin += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, end - begin));
      pack_tile(work.tile.data(), X, begin, rows, dp, x_scale);
      tile_forward(work.z.data(), work.tile.data(), P, bias, M, dp);
      for (int r = 0; r < rows; ++r) {
        double* g = work.g.data() + r * K;
        loss += row(begin + r, work.z.data() + r * M, g);
        for (int64_t c = 0; c < K; ++c) partial_bias[c] += g[c];
      }
      tile_update(partial, work.g.data(), K, work.tile.data(), rows, dp);
    }
    partial[partial_size - 1] = loss;
  };

  const int64_t outputs = K * d + K;
  constexpr int64_t kChunk = 512;
#pragma omp parallel num_threads(threads) if (threads > 1 && plan.slabs > 1 && worth_threads(n, d, M))
  {
    Scratch& work = scratch[static_cast<size_t>(thread_index())];
    work.tile.resize(static_cast<size_t>(kTileRows * dp));
    work.z.resize(static_cast<size_t>(kTileRows * M));
    work.g.assign(static_cast<size_t>(kTileRows * K), 0.0);
    const ItemRange mine = my_items(plan.slabs);
    for (int64_t s = mine.begin; s < mine.end; ++s) run_slab(s, work);
#pragma omp barrier
    // Output index o is gradient (c, j) = (o / d, o % d) for o < K d, then the bias terms.
#pragma omp for schedule(static)
    for (int64_t o0 = 0; o0 < outputs; o0 += kChunk)
      for (int64_t o = o0; o < std::min(outputs, o0 + kChunk); ++o) {
        const int64_t at = o < K * d ? (o / d) * dp + o % d : K * dp + (o - K * d);
        double sum = 0.0;
        for (int64_t s = 0; s < plan.slabs; ++s) sum += partials[static_cast<size_t>(s * partial_size + at)];
        if (o < K * d)
          result.out[o] = sum;
        else if (result.out_bias)
          result.out_bias[o - K * d] = sum;
      }
  }
  result.loss = 0.0;
  for (int64_t s = 0; s < plan.slabs; ++s) result.loss += partials[static_cast<size_t>((s + 1) * partial_size - 1)];
}

// P (rows, dp) from a C-contiguous (rows, d) float64 matrix: zero-padded for whole-vector loops.
inline void pack_parameters(double* P, const double* source, int64_t rows, int64_t d) {
  const int64_t dp = padded_features(d);
  for (int64_t c = 0; c < rows; ++c) {
    std::copy(source + c * d, source + (c + 1) * d, P + c * dp);
    std::fill(P + c * dp + d, P + (c + 1) * dp, 0.0);
  }
}

}  // namespace csoftmax::logistic
