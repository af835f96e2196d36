// Linear + softmax + cross-entropy for large label sets (10^4 - 10^5 classes and more), without ever
// holding the B x C logits.
//
//   z = x_scale X . W^T + b;  m = max_c z;  lse = m + log sum_c exp(z - m)
//   loss_i = lse_i - (1 - eps) z[i, y_i] - (eps / C) sum_c z[i, c]        (label smoothing eps, as PyTorch)
//   G = (exp(z - lse) - (1 - eps) onehot(y) - eps / C) * grad_scale [* row_weight_i]   (ignored rows: 0)
//   dW = G^T . (x_scale X);  db = sum_i G_i;  dX = x_scale G . W
//
// The batch goes through in chunks of `row_block` rows. For one chunk:
//   1. logits   by class tiles of kClassBlock, dealt into kClassGroups groups (one work item each):
//               Z[:, tile] = X_chunk . W[tile]^T + b (one sgemm), an online softmax per row (running
//               max and sum, rescaled as the max moves) and, while W[tile] is still in cache, the
//               group's partial dX += exp(Z - running max) . W[tile] (a second sgemm);
//   2. rows     per row: the groups combined in order -> lse, argmax, loss, and dX; Z becomes G;
//   3. dW, db   per class tile: dW[tile] += G[:, tile]^T . X_chunk.
// dX needs no G: softmax(z) . W = (sum_c exp(z_c - m) W_c) / (sum_c exp(z_c - m)), so it is
// accumulated in the same pass as the logits, the way attention kernels accumulate their output.
// Only dW needs the final lse before it can start; so Z of one chunk is kept, (row_block x C) floats,
// with row_block chosen to stay within a budget (a fraction of B x C, between a floor and a cap): the
// memory beyond inputs and outputs is bounded whatever B is (without dW and db, nothing is kept).
// Each logit is computed once: three GEMM-equivalents per step, as for an unfused forward + backward,
// where recomputing the logits for the backward, as GPU kernels do, would cost a fourth. W is read
// from memory once per chunk, dW read and written once per chunk.
//
// Determinism: the chunks, tiles and groups depend on (B, C, D) only; every output element is written
// by exactly one work item, each item sums in a fixed order (gemm.hpp) and the groups are combined in
// group order, so any thread runs any item and the result is bit-identical for every thread count.
// Per-row losses are totalled in row order.
//
// W is either feature-major (D, C) as in the chapter, or class-major (C, D) like torch.nn.Linear.weight;
// both are read in place (as strided views) and dW is written in the same layout.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include "csoftmax/batch_rows.hpp"
#include "csoftmax/gemm.hpp"
#include "csoftmax/simd.hpp"
#include "csoftmax/threads.hpp"

namespace csoftmax {

enum class WeightLayout { kFeatureMajor /* (D, C) */, kClassMajor /* (C, D) */ };

struct LargeVocabWeights {
  const float* w;      // (D, C) or (C, D), see layout
  const float* bias;   // (C) or nullptr
  int64_t classes;
  int64_t features;
  WeightLayout layout;

  // W as a (C, D) matrix, whatever its layout.
  gemm::MatrixView class_rows() const {
    return layout == WeightLayout::kClassMajor ? gemm::MatrixView{w, features, 1} : gemm::MatrixView{w, 1, classes};
  }
};

struct CrossEntropyOptions {
  float grad_scale = 1.0f;       // 1 / (rows counted) for a mean, 1 for a sum
  float label_smoothing = 0.0f;  // eps in [0, 1]
  bool has_ignore_index = false;
  int64_t ignore_index = -100;   // rows with this label count for nothing (their lse is still computed)
  const float* row_weights = nullptr;  // (B) optional: gradients of sum_i row_weights[i] * loss_i
  bool ignored(int64_t label) const { return has_ignore_index && label == ignore_index; }
  // The factor of row i's gradient.
  float row_scale(int64_t i) const { return row_weights ? grad_scale * row_weights[i] : grad_scale; }
};

// What the kernel writes. row_loss (B) is required; the rest may be nullptr.
struct LargeVocabOutputs {
  float* row_loss;       // (B) per-row loss, 0 for ignored rows
  float* row_lse;        // (B) per-row log-sum-exp
  float* grad_w;         // W's shape and layout
  float* grad_b;         // (C)
  float* grad_x;         // (B, D)
  int64_t correct = 0;   // rows (not ignored) whose argmax is their label
  double loss_sum = 0;   // sum of row_loss, in row order
};

// ---------------------------------------------------------------------------------------------
// The reference: one row of logits at a time, plain loops (O(C) memory, O(B C D) time, no blocking).

template <typename T>
inline void linear_cross_entropy_naive(LargeVocabOutputs& out, const BatchRows<T>& batch, const int64_t* labels,
                                       const LargeVocabWeights& w, float x_scale, const CrossEntropyOptions& opt) {
  const int64_t B = batch.count, C = w.classes, D = w.features;
  const gemm::MatrixView wc = w.class_rows();
  std::vector<float> z(static_cast<size_t>(C)), x(static_cast<size_t>(D));
  if (out.grad_w) std::fill(out.grad_w, out.grad_w + C * D, 0.0f);
  if (out.grad_b) std::fill(out.grad_b, out.grad_b + C, 0.0f);
  out.correct = 0;
  out.loss_sum = 0;
  for (int64_t i = 0; i < B; ++i) {
    const T* xi = batch.row(i);
    for (int64_t d = 0; d < D; ++d) x[d] = static_cast<float>(xi[d]) * x_scale;
    for (int64_t c = 0; c < C; ++c) {
      float s = w.bias ? w.bias[c] : 0.0f;
      for (int64_t d = 0; d < D; ++d) s += x[d] * wc(c, d);
      z[c] = s;
    }
    const int64_t label = labels[batch.source(i)];
    int64_t argmax = 0;
    for (int64_t c = 1; c < C; ++c)
      if (z[c] > z[argmax]) argmax = c;
    const float m = z[argmax];
    float sum = 0.0f, shifted_sum = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      sum += std::exp(z[c] - m);
      shifted_sum += z[c] - m;
    }
    const float log_sum = std::log(sum);
    if (out.row_lse) out.row_lse[i] = m + log_sum;
    const bool ignored = opt.ignored(label);
    const float eps = opt.label_smoothing;
    const float loss = ignored ? 0.0f : log_sum + (1 - eps) * (m - z[label]) - eps / C * shifted_sum;
    out.row_loss[i] = loss;
    out.loss_sum += loss;
    out.correct += !ignored && argmax == label;
    for (int64_t c = 0; c < C; ++c) {
      const float target = (c == label ? 1 - eps : 0.0f) + eps / C;
      const float g = ignored ? 0.0f : (std::exp(z[c] - m) / sum - target) * opt.row_scale(i);
      if (out.grad_b) out.grad_b[c] += g;
      for (int64_t d = 0; d < D; ++d) {
        if (out.grad_w) {
          float& dw = w.layout == WeightLayout::kClassMajor ? out.grad_w[c * D + d] : out.grad_w[d * C + c];
          dw += g * x[d];
        }
      }
      z[c] = g;
    }
    if (out.grad_x)
      for (int64_t d = 0; d < D; ++d) {
        float s = 0.0f;
        for (int64_t c = 0; c < C; ++c) s += z[c] * wc(c, d);
        out.grad_x[i * D + d] = s * x_scale;
      }
  }
}

// ---------------------------------------------------------------------------------------------
// The tiled kernel.

namespace large_vocab {

inline constexpr int64_t kClassBlock = 256;  // classes per logits / dW tile
// Class tiles are dealt into this many groups, each with its own running softmax statistics and its
// own partial dX; the groups are combined in order, so the result does not depend on which thread
// ran which group. 4 groups balance 2 threads; each costs a (row_block, D) partial.
inline constexpr int64_t kClassGroups = 4;
// The chunk of logits kept at once: 1/16 of what all B x C logits would take, but at least
// kLogitsFloorBytes and at most kLogitsCapBytes. Each chunk streams W and dW in and out of memory
// once, so larger chunks are faster (on Zen 5, B = 1024, C = 50257, D = 768, one core: 152 GFLOP/s
// with 56 rows, 177 with 112, 190 with 238; B = 4096, C = 32768, D = 1024, two cores: 2.37 s with 140
// rows, 2.12 s with 336). PyTorch's unfused step holds more than twice the full logits, so 1/16 of
// them stays under 5% of its memory; the floor (98 rows at B = 1024, C = 50257, where PyTorch takes
// 449 MiB) costs at most 5% of PyTorch's memory from B x C >= 2^27 floats on.
inline constexpr int64_t kLogitsFloorBytes = int64_t{19} << 20;
inline constexpr int64_t kLogitsCapBytes = int64_t{48} << 20;
inline constexpr int64_t kMaxRowBlock = gemm::kMicroRows * 24;  // 336: past this, no GEMM gets faster
inline constexpr int64_t kMinRowBlock = gemm::kMicroRows * 4;   // 56: the cap gives way past C ~ 220000

// Leading dimension of the logits chunk: whole vectors, and never a multiple of 2 KB, so the rows a
// transposing pack reads together do not all fall in the same cache set.
inline int64_t logits_stride(int64_t classes) {
  int64_t ld = gemm::round_up(classes, simd::kWidth);
  if (ld % 512 == 0) ld += simd::kWidth;
  return ld;
}

// Rows per chunk: as many as the logits budget allows, in whole micro-panels (a partial panel
// computes all kMicroRows rows: 104 rows would cost as much as 112), within [kMinRowBlock,
// kMaxRowBlock]. A function of the shape only.
inline int64_t row_block(int64_t batch, int64_t classes) {
  const int64_t row_bytes = logits_stride(classes) * int64_t{sizeof(float)};
  const int64_t budget = std::clamp(batch * row_bytes / 16, kLogitsFloorBytes, kLogitsCapBytes);
  const int64_t fit = budget / row_bytes;
  const int64_t rows = std::clamp(fit / gemm::kMicroRows * gemm::kMicroRows, kMinRowBlock, kMaxRowBlock);
  return std::min(rows, batch);
}

inline int64_t class_groups(int64_t classes) {
  return std::min(kClassGroups, (classes + kClassBlock - 1) / kClassBlock);
}

// The first n (< kWidth) floats at p, the other lanes set to `fill`.
inline simd::vfloat load_tail(const float* p, int64_t n, float fill) {
  float buffer[simd::kWidth];
  for (int i = 0; i < simd::kWidth; ++i) buffer[i] = i < n ? p[i] : fill;
  return simd::load(buffer);
}

// The running softmax of one row over the class tiles of one group: max m, sum exp(z - m), the first
// argmax, and sum z (for label smoothing).
struct RunningRow {
  float max;
  float sum;
  float best;
  int64_t argmax;
  double logit_sum;
};

// One tile of a row: z (n logits, classes c0..c0+n) becomes p = exp(z - m) with m the new running max;
// returns the factor exp(m_old - m) by which everything summed so far (sum, the row of partial dX)
// must be scaled. Only shifted logits are exponentiated.
inline float absorb_tile(RunningRow& r, float* z, int64_t n, int64_t c0) {
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t full = n / W * W;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  vfloat vmax = simd::broadcast(neg_inf), vsum = simd::zero();
  for (int64_t c = 0; c < full; c += W) {
    const vfloat v = simd::load(z + c);
    vmax = simd::vmax(vmax, v);
    vsum += v;
  }
  float tile_max = simd::hmax(vmax), tile_sum = simd::hsum(vsum);
  for (int64_t c = full; c < n; ++c) tile_max = std::max(tile_max, z[c]), tile_sum += z[c];
  r.logit_sum += tile_sum;
  if (tile_max > r.best) {  // strictly: the first maximum wins, as numpy.argmax
    int64_t c = 0;
    while (c < n - 1 && !(z[c] == tile_max)) ++c;
    r.best = tile_max;
    r.argmax = c0 + c;
  }
  const float m = std::max(r.max, tile_max);
  const float factor = r.max == m ? 1.0f : std::exp(r.max - m);  // exp(-inf) = 0 on the first tile
  const vfloat shift = simd::broadcast(m);
  vsum = simd::zero();
  for (int64_t c = 0; c < full; c += W) {
    const vfloat e = simd::exp(simd::load(z + c) - shift);
    simd::store(z + c, e);
    vsum += e;
  }
  float sum = simd::hsum(vsum);
  if (full < n) {
    const vfloat e = simd::exp(load_tail(z + full, n - full, neg_inf) - shift);
    simd::store_partial(z + full, e, n - full);
    sum += simd::hsum(e);
  }
  r.sum = r.sum * factor + sum;
  r.max = m;
  return factor;
}

// One row of logits (C entries) -> that row of G, in place:
// (exp(z - lse) - eps / C - (1 - eps) [c == label]) * scale; a row with scale 0 (ignored) becomes 0.
inline void gradient_row(float* z, int64_t C, int64_t label, float lse, float scale, float eps) {
  if (scale == 0.0f) {
    std::fill(z, z + C, 0.0f);
    return;
  }
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t full = C / W * W;
  const vfloat shift = simd::broadcast(lse), s = simd::broadcast(scale);
  const vfloat uniform = simd::broadcast(scale * eps / static_cast<float>(C));
  for (int64_t c = 0; c < full; c += W) simd::store(z + c, simd::exp(simd::load(z + c) - shift) * s - uniform);
  if (full < C) {
    const vfloat e = simd::exp(load_tail(z + full, C - full, lse) - shift) * s - uniform;
    simd::store_partial(z + full, e, C - full);
  }
  z[label] -= scale * (1.0f - eps);
}

// The whole step, see the top of the file. Call from outside any parallel region; `threads` threads
// run it (1 = serial).
template <typename T>
void run(LargeVocabOutputs& out, const BatchRows<T>& batch, const int64_t* labels, const LargeVocabWeights& w,
         float x_scale, const CrossEntropyOptions& opt, int threads) {
  const int64_t B = batch.count, C = w.classes, D = w.features;
  const int64_t rows_per_block = row_block(B, C), ldz = logits_stride(C);
  const int64_t class_tiles = (C + kClassBlock - 1) / kClassBlock, groups = class_groups(C);
  // Fewer class groups or tiles than kClassGroups (C < 1024) leave threads idle: split the rows of
  // step 1 and the features of step 3 instead.
  const int64_t row_slices = (kClassGroups + groups - 1) / groups;
  const int64_t feature_slices = std::min((kClassGroups + class_tiles - 1) / class_tiles, (D + 15) / 16);
  const int64_t slice_features = gemm::round_up((D + feature_slices - 1) / feature_slices, simd::kWidth);
  const bool feature_major = w.layout == WeightLayout::kFeatureMajor;
  const gemm::MatrixView wc = w.class_rows();
  const float eps = opt.label_smoothing;
  // dW and db need G, hence every logit of the chunk: only then are they kept.
  const bool keep_logits = out.grad_w || out.grad_b;
  // X is used in place when it already is the float matrix the GEMMs want.
  const bool copy_x = !std::is_same_v<T, float> || batch.rows != nullptr || x_scale != 1.0f;

  // Scratch that is always written before it is read: left uninitialized (no pass to zero it).
  const auto scratch_buffer = [](int64_t n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]); };
  const auto logits = scratch_buffer(keep_logits ? rows_per_block * ldz : 0);
  const auto x_copy = scratch_buffer(copy_x ? rows_per_block * D : 0);
  const auto x_packed = scratch_buffer(gemm::packed_a_size(rows_per_block, D));
  const auto dx_partial = scratch_buffer(out.grad_x ? groups * rows_per_block * D : 0);
  std::vector<RunningRow> running(static_cast<size_t>(groups * rows_per_block));
  std::vector<float> label_logit(static_cast<size_t>(rows_per_block));
  const auto tile_scratch = scratch_buffer(std::max(1, threads) * rows_per_block * kClassBlock);
  std::vector<uint8_t> row_correct(static_cast<size_t>(B));
  // sum_c W[c], the smoothing term of dX.
  std::vector<float> weight_sum(out.grad_x && eps != 0.0f ? static_cast<size_t>(D) : 0);
  if (!weight_sum.empty()) {
    if (feature_major)  // in memory order either way
      for (int64_t d = 0; d < D; ++d) weight_sum[d] = std::accumulate(w.w + d * C, w.w + (d + 1) * C, 0.0f);
    else
      for (int64_t c = 0; c < C; ++c)
        for (int64_t d = 0; d < D; ++d) weight_sum[d] += w.w[c * D + d];
  }
  float* z = logits.get();

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    const int thread = thread_index();
    // The packing buffers stay with the (pooled) thread from call to call.
    thread_local gemm::Workspace ws;
    float* scratch = tile_scratch.get() + thread * rows_per_block * kClassBlock;
    for (int64_t r0 = 0; r0 < B; r0 += rows_per_block) {
      const int64_t br = std::min(rows_per_block, B - r0);
      const bool first = r0 == 0;
      // 0. The chunk of X as floats (gathered, scaled), packed once for all class tiles.
      if (copy_x) {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < br; ++i) {
          const T* src = batch.row(r0 + i);
          float* dst = x_copy.get() + i * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<float>(src[d]) * x_scale;
        }
      }
      const float* xb = copy_x ? x_copy.get() : reinterpret_cast<const float*>(batch.data) + r0 * batch.stride;
      const gemm::MatrixView x_view{xb, copy_x ? D : batch.stride, 1};
#pragma omp single
      gemm::pack_a_blocks(x_packed.get(), x_view, br, D);

      // 1. Logits and the running softmax, one group of class tiles (of a slice of rows) per work item.
      //    Per tile: Z = X . W[tile]^T + b (kept for step 3), P = exp(Z - running max), and, while
      //    W[tile] is in cache, the group's partial dX += P . W[tile], rescaled whenever the max moves.
      const int64_t slice_rows = gemm::round_up((br + row_slices - 1) / row_slices, gemm::kMicroRows);
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < groups * row_slices; ++item) {
        const int64_t g = item / row_slices, i0 = item % row_slices * slice_rows;
        const int64_t i1 = std::min(br, i0 + slice_rows), rows = i1 - i0;
        if (rows <= 0) continue;
        RunningRow* run_rows = running.data() + g * rows_per_block;
        float* dx = out.grad_x ? dx_partial.get() + g * rows_per_block * D : nullptr;
        const float neg_inf = -std::numeric_limits<float>::infinity();
        for (int64_t i = i0; i < i1; ++i) run_rows[i] = RunningRow{neg_inf, 0.0f, neg_inf, 0, 0.0};
        const int64_t t_begin = g * class_tiles / groups, t_end = (g + 1) * class_tiles / groups;
        for (int64_t t = t_begin; t < t_end; ++t) {
          const int64_t c0 = t * kClassBlock, nc = std::min(kClassBlock, C - c0);
          if (w.bias)
            for (int64_t i = 0; i < rows; ++i) std::copy(w.bias + c0, w.bias + c0 + nc, scratch + i * kClassBlock);
          gemm::gemm(rows, nc, D, x_view, x_packed.get(), wc.block(c0, 0).transposed(), scratch, kClassBlock,
                     w.bias != nullptr, ws, br, i0);
          for (int64_t i = i0; i < i1; ++i) {
            float* zi = scratch + (i - i0) * kClassBlock;
            if (keep_logits) std::copy(zi, zi + nc, z + i * ldz + c0);
            const int64_t label = labels[batch.source(r0 + i)];
            if (label >= c0 && label < c0 + nc) label_logit[static_cast<size_t>(i)] = zi[label - c0];
            const float factor = absorb_tile(run_rows[i], zi, nc, c0);
            if (out.grad_x && t > t_begin && factor != 1.0f)
              for (int64_t d = 0; d < D; ++d) dx[i * D + d] *= factor;
          }
          if (out.grad_x)
            gemm::gemm(rows, D, nc, gemm::MatrixView{scratch, kClassBlock, 1}, nullptr, wc.block(c0, 0), dx + i0 * D,
                       D, t > t_begin, ws);
        }
      }

      // 2. Per row: the groups combined in order -> lse, argmax, loss; dX = the combined partials.
#pragma omp for schedule(static)
      for (int64_t i = 0; i < br; ++i) {
        float m = -std::numeric_limits<float>::infinity(), best = m;
        int64_t argmax = 0;
        double logit_sum = 0.0;
        for (int64_t g = 0; g < groups; ++g) {
          const RunningRow& r = running[static_cast<size_t>(g * rows_per_block + i)];
          m = std::max(m, r.max);
          logit_sum += r.logit_sum;
          if (r.best > best) best = r.best, argmax = r.argmax;
        }
        float sum = 0.0f;
        for (int64_t g = 0; g < groups; ++g) {
          const RunningRow& r = running[static_cast<size_t>(g * rows_per_block + i)];
          sum += r.sum * std::exp(r.max - m);
        }
        const float log_sum = std::log(sum);  // sum >= 1: the max itself contributes exp(0)
        const int64_t label = labels[batch.source(r0 + i)];
        const bool ignored = opt.ignored(label);
        const float scale = ignored ? 0.0f : opt.row_scale(r0 + i);
        if (keep_logits) gradient_row(z + i * ldz, C, label, m + log_sum, scale, eps);
        // lse - (1 - eps) z_y - (eps / C) sum z, written around the max so large logits do not cancel
        const float loss = ignored ? 0.0f
                                   : log_sum + (1.0f - eps) * (m - label_logit[static_cast<size_t>(i)]) +
                                         eps * static_cast<float>(m - logit_sum / static_cast<double>(C));
        out.row_loss[r0 + i] = loss;
        if (out.row_lse) out.row_lse[r0 + i] = m + log_sum;
        row_correct[static_cast<size_t>(r0 + i)] = !ignored && argmax == label;
        if (out.grad_x) {
          // dX_i = x_scale * scale * (sum_g exp(m_g - m) U_g / sum - (1 - eps) W[y] - (eps / C) sum_c W[c])
          float* dxi = out.grad_x + (r0 + i) * D;
          std::fill(dxi, dxi + D, 0.0f);
          if (ignored) continue;
          for (int64_t g = 0; g < groups; ++g) {
            const RunningRow& r = running[static_cast<size_t>(g * rows_per_block + i)];
            const float f = std::exp(r.max - m) / sum;
            const float* u = dx_partial.get() + (g * rows_per_block + i) * D;
            for (int64_t d = 0; d < D; ++d) dxi[d] += f * u[d];
          }
          const float s = x_scale * scale;
          for (int64_t d = 0; d < D; ++d) {
            float v = dxi[d] - (1.0f - eps) * wc(label, d);
            if (eps != 0.0f) v -= eps / static_cast<float>(C) * weight_sum[static_cast<size_t>(d)];
            dxi[d] = v * s;
          }
        }
      }
      if (!keep_logits) continue;

      // 3. dW and db, one class tile (or a slice of D of one) per work item, from G (in place of Z).
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < class_tiles * feature_slices; ++item) {
        const int64_t t = item / feature_slices, c0 = t * kClassBlock, nc = std::min(kClassBlock, C - c0);
        const int64_t d0 = item % feature_slices * slice_features, nd = std::min(slice_features, D - d0);
        if (nd <= 0) continue;
        const gemm::MatrixView g{z, ldz, 1};
        if (out.grad_w) {
          if (feature_major)  // dW[d0:, tile] (nd, nc) += X_chunk[:, d0:]^T . G[:, tile]
            gemm::gemm(nd, nc, br, x_view.block(0, d0).transposed(), nullptr, g.block(0, c0),
                       out.grad_w + d0 * C + c0, C, !first, ws);
          else  // dW[tile, d0:] (nc, nd) += G[:, tile]^T . X_chunk[:, d0:]
            gemm::gemm(nc, nd, br, g.block(0, c0).transposed(), nullptr, x_view.block(0, d0),
                       out.grad_w + c0 * D + d0, D, !first, ws);
        }
        if (out.grad_b && d0 == 0) {
          float* db = out.grad_b + c0;
          if (first) std::fill(db, db + nc, 0.0f);
          for (int64_t i = 0; i < br; ++i) {
            const float* gi = z + i * ldz + c0;
            for (int64_t c = 0; c < nc; ++c) db[c] += gi[c];
          }
        }
      }
    }
  }

  out.loss_sum = 0;
  out.correct = 0;
  for (int64_t i = 0; i < B; ++i) {
    out.loss_sum += out.row_loss[i];
    out.correct += row_correct[static_cast<size_t>(i)];
  }
}

}  // namespace large_vocab

}  // namespace csoftmax
