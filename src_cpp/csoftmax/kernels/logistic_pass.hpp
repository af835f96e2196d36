// One full-batch pass of a linear model over X, in float64: the machinery the logistic-regression
// kernels (loss + gradient, Hessian-vector product) share.
//
//   for every row i:  z_i = x_scale * x_i . P^T + bias        (P is (M, d): coef, or coef and V stacked)
//                     g_i = row(i, z_i)  (K values; the row function also returns a loss term)
//   out (K, d) = sum_i g_i^T x_scale x_i;   out_bias (K) = sum_i g_i;   loss = sum of the row terms
//
// X is read from memory once: a tile of kTileRows rows is packed (converted to float64, scaled,
// zero-padded to a whole number of vectors) into a per-thread buffer, and goes through the forward,
// the row function and the gradient update while it is in cache. C-ordered float64 X with whole-vector
// rows needs no packing: its tiles are used where they lie. The packing also reads F-ordered X
// in place: a tile is kTileRows consecutive elements of every column.
//
// Why float64 throughout, even for float32 X: see logistic_loss_gradient.hpp.
//
// Threads: rows are cut into slabs that depend on (n, K, d) only; each slab accumulates its own
// partial [out | out_bias | loss], and the partials are summed in slab order. So results are
// bit-identical for any thread count. The partials are the only memory beyond X and the parameters:
// at most kMaxSlabs * (K * d + K) doubles, capped at kPartialBytes.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include "csoftmax/kernels/gemm.hpp"
#include "csoftmax/kernels/linear_tiles.hpp"
#include "csoftmax/simd/vector.hpp"
#include "csoftmax/simd/vector_double.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::logistic {

// The float64 vectors of simd/vector_double.hpp, by short names.
inline constexpr int kLanes = simd::kDoubleWidth;
using simd::broadcast;
using simd::hsum;
using simd::load;
using simd::store;
using simd::vdouble;

// Rows per tile, a whole number of the forward's register tiles (kRowTile rows). The update out +=
// g^T tile has the tile's rows as its inner dimension, so each tile loads and stores the whole
// partial (K x d float64: 400 KB at K = 100, d = 512, in L2): 32 rows halve that traffic against 16
// (measured on the Intel Xeon, 1 thread, float32: 50000 x 512, K = 100, 245 -> 210 ms; 60000 x 784,
// K = 10, 63 -> 62 ms; 64 rows gained nothing more, as a chunk of the tile then outgrows L1). A packed
// tile (32 x 784 float64 = 200 KB) stays in L2 between the forward and the gradient update; both walk
// it in chunks of kChunk features, so that a chunk of a register tile's rows and of a block of
// parameter rows sit in L1 together (48 KB L1d). Without the chunks, every register tile streamed whole
// rows from L2 and L2 bandwidth bound the pass.
inline constexpr int kTileRows = 32;
inline constexpr int64_t kChunk = 128;
// F-ordered float32 X: how far ahead (rows) the packing prefetches each column's lines (see pack_tile).
inline constexpr int64_t kColumnPrefetchRows = 64;
static_assert(kTileRows % kRowTile == 0, "a tile is a whole number of register tiles");
static_assert(kChunk % 16 == 0, "chunks are whole vectors at any width");

inline int64_t padded_features(int64_t d) { return (d + kLanes - 1) / kLanes * kLanes; }

// Element (i, j) of X is data[i * row_stride + j * col_stride]: C order (d, 1) or F order (1, n).
template <typename T>
struct MatrixView {
  const T* data;
  int64_t rows, cols, row_stride, col_stride;
};

// t[0 .. d) = x_scale * x[0 .. d): float32 and uint8 are widened by simd::load (uint8 -> float32 is
// exact) and then to float64 a half vector at a time; GCC's own loop for uint8 -> double is scalar.
template <typename T>
inline void widen_row(double* t, const T* x, int64_t d, double x_scale) {
  int64_t j = 0;
  if constexpr (!std::is_same_v<T, double>) {
    typedef float vhalf __attribute__((vector_size(kLanes * sizeof(float))));
    const vdouble scale = broadcast(x_scale);
    for (; j + simd::kWidth <= d; j += simd::kWidth) {
      const simd::vfloat v = simd::load(x + j);
      vhalf half[2];
      std::memcpy(half, &v, sizeof(v));
      store(t + j, __builtin_convertvector(half[0], vdouble) * scale);
      store(t + j + kLanes, __builtin_convertvector(half[1], vdouble) * scale);
    }
  }
  for (; j < d; ++j) t[j] = x_scale * static_cast<double>(x[j]);
}

// The tile from F-ordered X element by element: each column holds the tile's rows side by side.
template <typename T>
inline void pack_columns(double* tile, const MatrixView<T>& X, int64_t begin, int rows, int64_t dp, double x_scale) {
  for (int64_t j = 0; j < X.cols; ++j) {
    const T* x = X.data + begin + j * X.col_stride;
    for (int r = 0; r < rows; ++r) tile[r * dp + j] = x_scale * static_cast<double>(x[r]);
  }
}

// tile[r * dp + j] = x_scale * X(begin + r, j), zero for j >= d and for r >= rows (a short last tile).
template <typename T>
inline void pack_tile(double* tile, const MatrixView<T>& X, int64_t begin, int rows, int64_t dp, double x_scale) {
  const int64_t d = X.cols;
  if (X.col_stride == 1) {
    for (int r = 0; r < rows; ++r) widen_row(tile + r * dp, X.data + (begin + r) * X.row_stride, d, x_scale);
  } else if constexpr (std::is_same_v<T, float>) {
    if (rows == kTileRows) {  // F order, float32: 16 x 16 blocks transposed in registers
      static_assert(kTileRows % 16 == 0, "the transpose covers 16 rows at a time");
      float block[16 * 16];
      for (int r0 = 0; r0 < kTileRows; r0 += 16)
        for (int64_t j0 = 0; j0 < d; j0 += 16) {
          const int width = static_cast<int>(std::min<int64_t>(16, d - j0));
          const float* lines = X.data + begin + r0 + j0 * X.col_stride;
          // These columns' lines kColumnPrefetchRows rows ahead: a line per column is more streams than
          // the hardware prefetcher follows (measured at 16-row tiles, 4 tiles ahead: a pass over
          // F-ordered X about 15% shorter).
          if (begin + r0 + kColumnPrefetchRows + 16 <= X.rows)
            for (int l = 0; l < width; ++l) __builtin_prefetch(lines + l * X.col_stride + kColumnPrefetchRows);
          gemm::detail::transpose_lines16(block, 16, lines, X.col_stride, width, 16);
          for (int r = 0; r < 16; ++r) widen_row(tile + (r0 + r) * dp + j0, block + r * 16, width, x_scale);
        }
    } else {
      pack_columns(tile, X, begin, rows, dp, x_scale);
    }
  } else {
    pack_columns(tile, X, begin, rows, dp, x_scale);
  }
  for (int r = 0; r < rows; ++r) std::fill(tile + r * dp + d, tile + (r + 1) * dp, 0.0);
  std::fill(tile + rows * dp, tile + kTileRows * dp, 0.0);
}

// The next tile's rows of C-ordered X, prefetched into L2 a few cache lines per step of this tile's
// forward. The hardware prefetcher runs ahead only of a stream being read, and the forward and update
// read no X: without this the packing waited for memory (a third of the pass at K = 10).
struct TilePrefetch {
  const char* next = nullptr;
  const char* end = nullptr;
  int64_t lines_per_step = 0;
  static constexpr int64_t kLine = 64;

  // Rows [begin, end_row) of X, spread over `steps` calls of step(); nothing for F order (pack_tile
  // prefetches its columns itself) or an empty range.
  template <typename T>
  TilePrefetch(const MatrixView<T>& X, int64_t begin, int64_t end_row, int64_t steps) {
    if (X.col_stride != 1 || begin >= end_row) return;
    next = reinterpret_cast<const char*>(X.data + begin * X.row_stride);
    end = reinterpret_cast<const char*>(X.data + end_row * X.row_stride);
    lines_per_step = ((end - next) / kLine + steps) / steps;
  }
  void step() {
    for (int64_t i = 0; i < lines_per_step && next < end; ++i, next += kLine) __builtin_prefetch(next, 0, 2);
  }
};

// acc[r * M + c] += the lane-wise products <tile row r, p row c> over `length` features (a chunk),
// for r < R, c < NC; tile rows and p rows have stride dp. The lanes are summed once, after all chunks.
template <int R, int NC>
inline void dot_block(vdouble* acc, int64_t M, const double* tile, const double* p, int64_t dp, int64_t length) {
  vdouble sum[R][NC];
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) sum[r][c] = acc[r * M + c];
  for (int64_t j = 0; j < length; j += kLanes) {
    vdouble x[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) x[r] = load(tile + r * dp + j);
#pragma GCC unroll 16
    for (int c = 0; c < NC; ++c) {
      const vdouble w = load(p + c * dp + j);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) sum[r][c] += x[r] * w;
    }
  }
  for (int r = 0; r < R; ++r)
    for (int c = 0; c < NC; ++c) acc[r * M + c] = sum[r][c];
}

// The number of dot_block calls in tile_forward: the steps a TilePrefetch is spread over.
inline int64_t forward_steps(int64_t M, int64_t dp) {
  return (dp + kChunk - 1) / kChunk * ((M + kClassTile - 1) / kClassTile) * (kTileRows / kRowTile);
}

// z (kTileRows, M) = tile . P^T + bias,  P (M, dp); acc is scratch for kTileRows * M vectors.
inline void tile_forward(double* z, vdouble* acc, const double* tile, const double* P, const double* bias, int64_t M,
                         int64_t dp, TilePrefetch& prefetch) {
  std::fill(acc, acc + kTileRows * M, vdouble{});
  for (int64_t j0 = 0; j0 < dp; j0 += kChunk) {
    const int64_t length = std::min(kChunk, dp - j0);
    for (int64_t c0 = 0; c0 < M; c0 += kClassTile) {
      const int nc = static_cast<int>(std::min<int64_t>(kClassTile, M - c0));
      with_class_tile(nc, [&](auto classes) {
        for (int r = 0; r < kTileRows; r += kRowTile) {
          prefetch.step();
          dot_block<kRowTile, decltype(classes)::value>(acc + r * M + c0, M, tile + r * dp + j0, P + c0 * dp + j0, dp,
                                                        length);
        }
      });
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    int64_t c = 0;
    for (; c + kLanes <= M; c += kLanes) store(z + r * M + c, simd::transpose_sum(acc + r * M + c) + load(bias + c));
    for (; c < M; ++c) z[r * M + c] = hsum(acc[r * M + c]) + bias[c];
  }
}

// out[c * dp + j] += sum_r g[r * K + c] * tile[r * dp + j]   for c < NC, j < length, rows summed in order
template <int NC>
inline void update_block(double* out, const double* g, int64_t K, const double* tile, int rows, int64_t dp,
                         int64_t length) {
  auto vectors = [&](int64_t j, auto count) {
    constexpr int CH = decltype(count)::value;
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
  for (; j + kChunkTile * kLanes <= length; j += kChunkTile * kLanes)
    vectors(j, std::integral_constant<int, kChunkTile>{});
  for (; j < length; j += kLanes) vectors(j, std::integral_constant<int, 1>{});
}

// out (K, dp) += g^T . tile   over the tile's first `rows` rows; g is (kTileRows, K).
inline void tile_update(double* out, const double* g, int64_t K, const double* tile, int rows, int64_t dp) {
  for (int64_t j0 = 0; j0 < dp; j0 += kChunk) {
    const int64_t length = std::min(kChunk, dp - j0);
    for (int64_t c0 = 0; c0 < K; c0 += kClassTile) {
      const int nc = static_cast<int>(std::min<int64_t>(kClassTile, K - c0));
      with_class_tile(nc, [&](auto classes) {
        update_block<decltype(classes)::value>(out + c0 * dp + j0, g + c0, K, tile + j0, rows, dp, length);
      });
    }
  }
}

// out[c] = exp(z[c] - shift) for c < K, a vector at a time (the last one padded with -inf, whose exp
// is 0); returns their sum. The shift is the row max, so no exponent is positive.
inline double exp_shifted(double* out, const double* z, int64_t K, double shift) {
  const vdouble s = broadcast(shift);
  vdouble sum{};
  int64_t c = 0;
  for (; c + kLanes <= K; c += kLanes) {
    const vdouble e = simd::exp(load(z + c) - s);
    store(out + c, e);
    sum += e;
  }
  if (c < K) {
    double buffer[kLanes];
    std::fill(buffer, buffer + kLanes, -std::numeric_limits<double>::infinity());
    std::copy(z + c, z + K, buffer);
    const vdouble e = simd::exp(load(buffer) - s);
    store(buffer, e);
    std::copy(buffer, buffer + (K - c), out + c);
    sum += e;
  }
  return hsum(sum);
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

// result.out and result.out_bias = the sums of the slabs' partials [out (K, dp) | out_bias (K) | loss],
// in slab order. Called by every thread of the pass's team (or by the one thread): the outputs are
// shared out by an OpenMP loop, and each is summed whole by one thread, so the split changes no bit.
inline void sum_partials(PassOutput& result, const double* partials, int64_t slabs, int64_t K, int64_t d) {
  const int64_t dp = padded_features(d), partial_size = K * dp + K + 1, outputs = K * d + K;
  constexpr int64_t kOutputChunk = 512;
  // Output o is the gradient's (o / d, o % d) for o < K d, then the bias terms.
#pragma omp for schedule(static)
  for (int64_t o0 = 0; o0 < outputs; o0 += kOutputChunk)
    for (int64_t o = o0; o < std::min(outputs, o0 + kOutputChunk); ++o) {
      const int64_t at = o < K * d ? (o / d) * dp + o % d : K * dp + (o - K * d);
      double sum = 0.0;
      for (int64_t s = 0; s < slabs; ++s) sum += partials[s * partial_size + at];
      if (o < K * d)
        result.out[o] = sum;
      else if (result.out_bias)
        result.out_bias[o - K * d] = sum;
    }
}

// Runs the pass described at the top. P is (M, dp) float64 (x_scale not folded in), bias (M); row(i,
// z, g) reads row i's M values z, writes its K values g and returns its loss term. Call from outside
// any parallel region: it opens one of num_threads() threads when the work is worth it.
template <typename T, typename RowFunction>
inline void linear_pass(PassOutput& result, const MatrixView<T>& X, double x_scale, const double* P,
                        const double* bias, int64_t M, int64_t K, RowFunction&& row) {
  const int64_t n = X.rows, d = X.cols, dp = padded_features(d);
  const SlabPlan plan = plan_slabs(n, K, d);
  // C-ordered float64 X whose rows are whole vectors is its own packed tile: its full tiles are read
  // where they lie (a short last tile is still packed, zero-padded). On the Intel Xeon, 60000 x 784,
  // K = 10 (benchmarks/bench_logistic_kernel.py, a build that always packs against this one, three
  // alternating runs): 64-67 ms a pass packed, 59-63 in place on one thread; 37-39 against 30-33 on two.
  const double* in_place = nullptr;
  if constexpr (std::is_same_v<T, double>)
    if (X.col_stride == 1 && X.row_stride == dp && x_scale == 1.0) in_place = X.data;
  const int64_t partial_size = K * dp + K + 1;  // [out (K, dp) | out_bias (K) | loss]
  std::vector<double> partials(static_cast<size_t>(plan.slabs * partial_size));
  const int threads = num_threads();
  struct Scratch {
    std::vector<double> tile, z, g;
    std::vector<vdouble> acc;
  };
  std::vector<Scratch> scratch(static_cast<size_t>(threads));
  for (Scratch& work : scratch) {  // allocated here: nothing may throw inside the parallel region
    work.tile.resize(static_cast<size_t>(kTileRows * dp));
    work.z.resize(static_cast<size_t>(kTileRows * M));
    work.acc.resize(static_cast<size_t>(kTileRows * M));
    work.g.assign(static_cast<size_t>(kTileRows * K), 0.0);
  }

  auto run_slab = [&](int64_t s, Scratch& work) {
    double* partial = partials.data() + s * partial_size;
    double* partial_bias = partial + K * dp;
    std::fill(partial, partial + partial_size, 0.0);
    double loss = 0.0;
    const int64_t end = std::min(n, (s + 1) * plan.rows_per_slab);
    for (int64_t begin = s * plan.rows_per_slab; begin < end; begin += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, end - begin));
      const double* tile = work.tile.data();
      if (in_place && rows == kTileRows)
        tile = in_place + begin * dp;
      else
        pack_tile(work.tile.data(), X, begin, rows, dp, x_scale);
      TilePrefetch next_tile(X, begin + rows, std::min(n, begin + rows + kTileRows), forward_steps(M, dp));
      tile_forward(work.z.data(), work.acc.data(), tile, P, bias, M, dp, next_tile);
      for (int r = 0; r < rows; ++r) {
        double* g = work.g.data() + r * K;
        loss += row(begin + r, work.z.data() + r * M, g);
        for (int64_t c = 0; c < K; ++c) partial_bias[c] += g[c];
      }
      tile_update(partial, work.g.data(), K, tile, rows, dp);
    }
    partial[partial_size - 1] = loss;
  };

#pragma omp parallel num_threads(threads) if (threads > 1 && plan.slabs > 1 && worth_threads(n, d, M))
  {
    Scratch& work = scratch[static_cast<size_t>(thread_index())];
    const ItemRange mine = my_items(plan.slabs);
    for (int64_t s = mine.begin; s < mine.end; ++s) run_slab(s, work);
#pragma omp barrier
    sum_partials(result, partials.data(), plan.slabs, K, d);
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

}  // namespace csoftmax::CSOFTMAX_VARIANT::logistic
