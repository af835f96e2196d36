// Linear + softmax + cross-entropy for large label sets (10^4 - 10^5 classes and more), without ever
// holding the B x C logits.
//
//   z = x_scale X . W^T + b;  m = max_c z;  lse = m + log sum_c exp(z - m)
//   loss_i = lse_i - (1 - eps) z[i, y_i] - (eps / C) sum_c z[i, c]        (label smoothing eps, as PyTorch)
//   G = (exp(z - lse) - (1 - eps) onehot(y) - eps / C) * grad_scale [* row_weight_i]   (ignored rows: 0)
//   dW = G^T . (x_scale X);  db = sum_i G_i;  dX = x_scale G . W
//
// The batch goes through in chunks of `row_block` rows. For one chunk:
//   1. logits   Z (row_block, C) = X_chunk . W^T + b, by class tiles of kClassBlock, one sgemm each;
//   2. rows     per row: max, argmax, lse, loss, and Z turned into G in place;
//   3. grads    dW[tile] += G[:, tile]^T . X_chunk per class tile (and db), and
//               dX_chunk = G . W by column slices of D, one sgemm each.
// Only Z of one chunk is held, (row_block x C) floats, and row_block is chosen so that it stays within
// kLogitsBudgetBytes: the memory beyond inputs and outputs is bounded whatever B is. Each logit is
// computed once (three GEMM-equivalents per step, as for an unfused forward + backward); recomputing
// the logits instead, as GPU kernels do, would cost a fourth.
//
// Determinism: the chunks, tiles and slices depend on (B, C, D) only; every output element is written
// by exactly one work item, and each item sums in a fixed order (gemm.hpp), so any thread runs any item
// and the result is bit-identical for every thread count. Per-row losses are totalled in row order.
//
// W is either feature-major (D, C) as in the chapter, or class-major (C, D) like torch.nn.Linear.weight;
// both are read in place (as strided views) and dW is written in the same layout.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
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
      float g = ignored ? 0.0f : (std::exp(z[c] - m) / sum - eps / C - (c == label ? 1 - eps : 0.0f)) * opt.row_scale(i);
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

inline constexpr int64_t kClassBlock = 256;                  // classes per logits / dW tile
inline constexpr int64_t kFeatureSlice = 512;                // widest column slice of dX per work item
// The chunk of logits held at once. Each chunk streams W twice and dW once in and out of memory, so
// larger chunks are faster (on Zen 5, one core at B = 1024, C = 50257, D = 768: 152 GFLOP/s with 56
// rows, 177 with 112, 190 with 238, 192 with 336); 20 MiB keeps the extra memory of that step under
// 5% of what PyTorch's unfused forward + backward takes (449 MiB), at 98 rows.
inline constexpr int64_t kLogitsBudgetBytes = int64_t{20} << 20;
inline constexpr int64_t kMaxRowBlock = gemm::kMicroRows * 24;  // 336: past this, no GEMM gets faster
inline constexpr int64_t kMinRowBlock = gemm::kMicroRows * 4;   // 56: the floor for C past ~90000

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
  const int64_t fit = kLogitsBudgetBytes / (logits_stride(classes) * int64_t{sizeof(float)});
  const int64_t rows = std::clamp(fit / gemm::kMicroRows * gemm::kMicroRows, kMinRowBlock, kMaxRowBlock);
  return std::min(rows, batch);
}

// Column slices of dX: equal widths in whole vectors, at most kFeatureSlice wide.
inline int64_t feature_slice(int64_t features) {
  const int64_t slices = (features + kFeatureSlice - 1) / kFeatureSlice;
  return gemm::round_up((features + slices - 1) / slices, simd::kWidth);
}

struct RowStats {
  float loss;
  float lse;
  bool correct;
};

// One row of logits -> its loss and lse, and the row becomes the row of G (times grad_scale). z holds
// C logits and is padded up to a whole number of vectors (the padding is overwritten).
inline RowStats cross_entropy_row(float* z, int64_t C, int64_t label, float grad_scale,
                                  const CrossEntropyOptions& opt) {
  using simd::vfloat;
  constexpr int W = simd::kWidth;
  const int64_t padded = gemm::round_up(C, W), full = C / W * W;
  // -inf padding takes no part in the max and adds exp(-inf) = 0 to the sum.
  for (int64_t c = C; c < padded; ++c) z[c] = -std::numeric_limits<float>::infinity();

  vfloat vmax = simd::load(z);
  for (int64_t c = W; c < padded; c += W) vmax = simd::vmax(vmax, simd::load(z + c));
  const float m = simd::hmax(vmax);
  int64_t argmax = 0;  // the first maximum, as numpy.argmax
  while (argmax < C - 1 && !(z[argmax] == m)) ++argmax;
  const bool ignored = opt.ignored(label);
  const float eps = opt.label_smoothing;

  // sum (z - m), for label smoothing: differences against the max are exact.
  float shifted_sum = 0.0f;
  if (eps != 0.0f && !ignored) {
    const vfloat shift = simd::broadcast(m);
    vfloat acc = simd::zero();
    for (int64_t c = 0; c < full; c += W) acc += simd::load(z + c) - shift;
    shifted_sum = simd::hsum(acc);
    for (int64_t c = full; c < C; ++c) shifted_sum += z[c] - m;
  }
  const float margin = ignored ? 0.0f : m - z[label];

  // z <- exp(z - m): only shifted logits are exponentiated; their sum is >= 1, so its log is safe.
  const vfloat shift = simd::broadcast(m);
  vfloat acc = simd::zero();
  for (int64_t c = 0; c < padded; c += W) {
    const vfloat e = simd::exp(simd::load(z + c) - shift);
    simd::store(z + c, e);
    acc += e;
  }
  const float sum = simd::hsum(acc);
  const float log_sum = std::log(sum);
  if (ignored) {
    std::fill(z, z + C, 0.0f);
    return RowStats{0.0f, m + log_sum, false};
  }
  // G = (p - (1 - eps) onehot - eps / C) * grad_scale, with p = exp(z - m) / sum.
  const vfloat scale = simd::broadcast(grad_scale / sum);
  const vfloat uniform = simd::broadcast(grad_scale * eps / static_cast<float>(C));
  for (int64_t c = 0; c < padded; c += W) simd::store(z + c, simd::load(z + c) * scale - uniform);
  z[label] -= grad_scale * (1.0f - eps);
  const float loss = log_sum + (1.0f - eps) * margin - eps / static_cast<float>(C) * shifted_sum;
  return RowStats{loss, m + log_sum, argmax == label};
}

// The whole step, see the top of the file. Call from outside any parallel region; `threads` threads
// run it (1 = serial).
template <typename T>
void run(LargeVocabOutputs& out, const BatchRows<T>& batch, const int64_t* labels, const LargeVocabWeights& w,
         float x_scale, const CrossEntropyOptions& opt, int threads) {
  const int64_t B = batch.count, C = w.classes, D = w.features;
  const int64_t rows_per_block = row_block(B, C), ldz = logits_stride(C);
  const int64_t class_tiles = (C + kClassBlock - 1) / kClassBlock;
  const int64_t slice = feature_slice(D), slices = (D + slice - 1) / slice;
  const bool feature_major = w.layout == WeightLayout::kFeatureMajor;
  const gemm::MatrixView wc = w.class_rows();
  // X is used in place when it already is the float matrix the GEMMs want.
  const bool copy_x = !std::is_same_v<T, float> || batch.rows != nullptr || x_scale != 1.0f;

  std::vector<float> logits(static_cast<size_t>(rows_per_block * ldz));
  std::vector<float> x_copy(copy_x ? static_cast<size_t>(rows_per_block * D) : 0);
  std::vector<float> x_packed(static_cast<size_t>(gemm::packed_a_size(rows_per_block, D)));
  std::vector<gemm::Workspace> work(static_cast<size_t>(std::max(1, threads)));
  std::vector<uint8_t> row_correct(static_cast<size_t>(B));
  float* z = logits.data();

#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    gemm::Workspace& ws = work[static_cast<size_t>(thread_index())];
    for (int64_t r0 = 0; r0 < B; r0 += rows_per_block) {
      const int64_t br = std::min(rows_per_block, B - r0);
      const bool first = r0 == 0;
      // 0. The chunk of X as floats (gathered, scaled), packed once for all class tiles.
      if (copy_x) {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < br; ++i) {
          const T* src = batch.row(r0 + i);
          float* dst = x_copy.data() + i * D;
          for (int64_t d = 0; d < D; ++d) dst[d] = static_cast<float>(src[d]) * x_scale;
        }
      }
      const float* xb = copy_x ? x_copy.data() : reinterpret_cast<const float*>(batch.data) + r0 * batch.stride;
      const gemm::MatrixView x_view{xb, copy_x ? D : batch.stride, 1};
#pragma omp single
      gemm::pack_a_blocks(x_packed.data(), x_view, br, D);

      // 1. Logits, one class tile per work item: Z[:, tile] = X_chunk . W[tile]^T + b[tile].
#pragma omp for schedule(dynamic)
      for (int64_t t = 0; t < class_tiles; ++t) {
        const int64_t c0 = t * kClassBlock, nc = std::min(kClassBlock, C - c0);
        if (w.bias)
          for (int64_t i = 0; i < br; ++i) std::copy(w.bias + c0, w.bias + c0 + nc, z + i * ldz + c0);
        gemm::gemm(br, nc, D, x_view, x_packed.data(), wc.block(c0, 0).transposed(), z + c0, ldz, w.bias != nullptr,
                   ws);
      }

      // 2. Row statistics; Z becomes G.
#pragma omp for schedule(static)
      for (int64_t i = 0; i < br; ++i) {
        const RowStats s = cross_entropy_row(z + i * ldz, C, labels[batch.source(r0 + i)], opt.row_scale(r0 + i), opt);
        out.row_loss[r0 + i] = s.loss;
        if (out.row_lse) out.row_lse[r0 + i] = s.lse;
        row_correct[static_cast<size_t>(r0 + i)] = s.correct;
      }

      // 3. Gradients. Items 0 .. slices-1 are column slices of dX (the largest, so they go first);
      //    the rest are class tiles of dW and db.
      const gemm::MatrixView g{z, ldz, 1};
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < slices + class_tiles; ++item) {
        if (item < slices) {
          if (!out.grad_x) continue;
          const int64_t d0 = item * slice, nd = std::min(slice, D - d0);
          float* dx = out.grad_x + r0 * D + d0;
          gemm::gemm(br, nd, C, g, nullptr, wc.block(0, d0), dx, D, false, ws);
          if (x_scale != 1.0f)
            for (int64_t i = 0; i < br; ++i)
              for (int64_t d = 0; d < nd; ++d) dx[i * D + d] *= x_scale;
          continue;
        }
        const int64_t c0 = (item - slices) * kClassBlock, nc = std::min(kClassBlock, C - c0);
        if (out.grad_w) {
          if (feature_major)  // dW[:, tile] (D, nc) += X_chunk^T . G[:, tile]
            gemm::gemm(D, nc, br, x_view.transposed(), nullptr, g.block(0, c0), out.grad_w + c0, C, !first, ws);
          else  // dW[tile] (nc, D) += G[:, tile]^T . X_chunk
            gemm::gemm(nc, D, br, g.block(0, c0).transposed(), nullptr, x_view, out.grad_w + c0 * D, D, !first, ws);
        }
        if (out.grad_b) {
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
