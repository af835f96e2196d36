// Linear + softmax + cross-entropy for large label sets (10^4 - 10^5 classes and more), without ever
// holding the B x C logits.
//
//   z = x_scale X . W^T + b;  m = max_c z;  lse = m + log sum_c exp(z - m)
//   loss_i = (1 - eps) w[y_i] (lse_i - z[i, y_i]) + (eps / C) sum_c w[c] (lse_i - z[i, c])
//            (label smoothing eps and class weights w, 1 without them, as PyTorch)  [+ z_loss lse_i^2]
//   (with a soft cap, z is softcap tanh(z / softcap) throughout, and G is times 1 - (z / softcap)^2)
//   G = (alpha_i exp(z - lse) - beta_i onehot(y) - gamma_i w)    (RowGradient; ignored rows: 0)
//   dW = G^T . (x_scale X);  db = sum_i G_i;  dX = x_scale G . W
//
// The batch goes through in chunks of `row_block` rows (TiledPlan says how a shape is cut). For one
// chunk, one function per phase:
//   0. gather   the chunk of X as floats (gathered, scaled), packed once for all class tiles;
//   1. logits   by class tiles of kClassBlock, dealt into kClassGroups groups (one work item each):
//               Z[:, tile] = X_chunk . W[tile]^T + b (one sgemm), an online softmax per row (running
//               max and sum, rescaled as the max moves) and, while W[tile] is still in cache, the
//               group's partial dX += exp(Z - running max) . W[tile] (a second sgemm);
//   2. rows     per row: the groups combined in order -> lse, argmax, loss, and dX; Z becomes G;
//   3. dW, db   per range of classes: dW[range] += G[:, range]^T . X_chunk (X_chunk packed once for
//               all ranges in phase 0).
// dX needs no G: softmax(z) . W = (sum_c exp(z_c - m) W_c) / (sum_c exp(z_c - m)), so it is
// accumulated in the same pass as the logits, the way attention kernels accumulate their output. A
// soft cap multiplies each G_c by its slope s_c = 1 - (z'_c / softcap)^2, known with the tile's
// logits, so its dX is summed online too (from exp(z_c - m) s_c). A cap with label smoothing is
// where that stops: the smoothing's part of G, gamma w_c s_c, weights every class of every row
// differently, and summing it online would take a second product over every tile. Then the logits
// are kept and dX = G . W comes after phase 2 (phase 2b), by the class groups of phase 1, each into a
// partial of its own: the same number of flops, with one more pass over W per chunk (and one over the
// chunk's G, each group reading its own classes of it).
// Only dW needs the final lse before it can start; so Z of one chunk is kept, (row_block x C) floats,
// with row_block chosen to stay within a budget (a fraction of B x C, between a floor and a cap): the
// memory beyond inputs and outputs is bounded whatever B is (without dW and db, nothing is kept).
// Each logit is computed once: three GEMM-equivalents per step, as for an unfused forward + backward,
// where recomputing the logits for the backward, as GPU kernels do, would cost a fourth. W is read
// from memory once per chunk, dW read and written once per chunk.
//
// Determinism: the chunks, tiles and groups depend on (B, C, D) and the machine's caches (fixed for
// the process) only; every output element is written by exactly one work item, each item sums in a
// fixed order (gemm.hpp) and the groups are combined in group order, so any thread runs any item and
// the result is bit-identical for every thread count.
// Per-row losses are totalled in row order.
//
// W is either feature-major (D, C) as in the chapter, or class-major (C, D) like torch.nn.Linear.weight;
// both are read in place (as strided views) and dW is written in the same layout.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include "csoftmax/amx_support.hpp"
#include "csoftmax/kernels/amx_gemm.hpp"
#include "csoftmax/kernels/batch_rows.hpp"
#include "csoftmax/kernels/gemm.hpp"
#include "csoftmax/kernels/large_vocab_io.hpp"
#include "csoftmax/kernels/online_softmax.hpp"
#include "csoftmax/kernels/weights.hpp"
#include "csoftmax/parallel/threads.hpp"
#include "csoftmax/simd/vector.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::large_vocab {

// The largest B, C or D a plan is made for: 2^40 (far past any array that fits in memory) keeps
// row_block * logits_stride(C) * sizeof(float) and the other size products within int64.
inline constexpr int64_t kMaxDimension = int64_t{1} << 40;

// Leading dimension of the logits chunk: whole vectors, and never a multiple of 2 KB, so the rows a
// transposing pack reads together do not all fall in the same cache set.
inline int64_t logits_stride(int64_t classes) {
  int64_t ld = gemm::round_up(classes, simd::kWidth);
  if (ld % kLogitsStrideAlias == 0) ld += simd::kWidth;
  return ld;
}

// Classes per block of the soft cap's dX product (phase 2b): on AMX tiles, both packed operands of a
// block, (rows + D / 4) x 512 x 6 bytes, stay within L2.
inline constexpr int64_t kGradientDepthBlock = 512;
#if CSOFTMAX_AMX_COMPILED
static_assert(kGradientDepthBlock <= gemm::kAmxMaxDepth, "a block of G always packs");
#endif

// Whether the products run on AMX tiles (kernels/amx_gemm.hpp): where this process runs them, D and
// the chunk fit their depth, and there are classes enough to fill every class group (C > 3 class
// tiles) over which to share the packing of X. Below that, packing costs more than the tiles save
// (`python benchmarks/bench.py`, B = 256, D = 784, C = 100: 1.7 ms a step on the tiles against 0.56
// on the FMAs). (Per product, values out of the tiles' range still take the FMA sgemm.)
inline bool amx_products_for(int64_t classes, int64_t features) {
  return amx_support().usable && features <= gemm::kAmxMaxDepth && tuning().max_row_block <= gemm::kAmxMaxDepth &&
         classes > (kClassGroups - 1) * kClassBlock;
}

// The rows of a chunk come in multiples of this many: on the FMA sgemm, whole micro-panels of the dX
// product's columns (kMicroCols: a partial panel computes all of them, so 98 rows would cost as much
// as 128; the logits, whose rows are kMicroRows-row panels, lose less to a partial panel); on AMX
// tiles, all 32 rows of a pair of tiles.
inline int64_t row_unit(int64_t classes, int64_t features) {
  return amx_products_for(classes, features) ? 32 : gemm::kMicroCols;
}

// Rows per chunk: as many as the logits budget allows, in whole row units, within [kMinRowBlock,
// max_row_block]. A function of the shape (and of the machine's caches and AMX, fixed for the
// process) only; sizes up to kMaxDimension keep every product in int64.
inline int64_t row_block(int64_t batch, int64_t classes, int64_t features) {
  const int64_t row_bytes = logits_stride(classes) * int64_t{sizeof(float)};
  // batch * row_bytes / 16, clamped; batch is capped first so the product cannot overflow
  const int64_t capped_batch = std::min(batch, 16 * kLogitsCapBytes / row_bytes + 1);
  const int64_t budget = std::clamp(capped_batch * row_bytes / 16, kLogitsFloorBytes, kLogitsCapBytes);
  const int64_t fit = budget / row_bytes;
  const int64_t unit = row_unit(classes, features);
  const int64_t rows = std::clamp(fit / unit * unit, kMinRowBlock, tuning().max_row_block);
  return std::min(rows, batch);
}

inline int64_t class_groups(int64_t classes) {
  return std::min(kClassGroups, (classes + kClassBlock - 1) / kClassBlock);
}

// One thread's buffers for the products: the FMA sgemm's packing, and the AMX path's operands (a left
// one, a right one, and a tile of W packed for both products that read it).
struct ProductWorkspace {
  gemm::Workspace fma;
  gemm::AmxOperand a, b, w_for_logits, w_for_dx;
  std::vector<float> largest;
};

// How a problem of B rows, C classes and D features is cut. A function of the shape only.
struct TiledPlan {
  int64_t batch, classes, features;
  int64_t rows_per_block;  // rows of a chunk
  int64_t ldz;             // leading dimension of the chunk's logits
  int64_t class_tiles;     // tiles of kClassBlock classes
  int64_t groups;          // class-tile groups of phase 1 (each with its own running softmax)
  // Fewer class groups or tiles than kClassGroups (C < 1024) leave threads idle: split the rows of
  // phase 1 and the features of phases 2b and 3 instead.
  int64_t row_slices;
  int64_t feature_slices, slice_features;
  // Phase 3's work items: ranges of weight_classes classes (whole micro-panels of the FMA sgemm; on
  // AMX tiles, the class tiles of phase 1), each cut into feature_slices.
  int64_t weight_classes, weight_tiles;

  TiledPlan(int64_t B, int64_t C, int64_t D)
      : batch(B),
        classes(C),
        features(D),
        rows_per_block(row_block(B, C, D)),
        ldz(logits_stride(C)),
        class_tiles((C + kClassBlock - 1) / kClassBlock),
        groups(class_groups(C)),
        row_slices((kClassGroups + groups - 1) / groups),
        feature_slices(std::min((kClassGroups + class_tiles - 1) / class_tiles, (D + 15) / 16)),
        slice_features(gemm::round_up((D + feature_slices - 1) / feature_slices, simd::kWidth)),
        weight_classes(amx_products_for(C, D) ? kClassBlock : kWeightGradientClasses),
        weight_tiles((C + weight_classes - 1) / weight_classes) {}

  // Bytes of logits kept at once (when dW or db is asked for).
  int64_t logits_bytes() const { return rows_per_block * ldz * int64_t{sizeof(float)}; }
};

// One call's inputs, outputs and the scratch its phases share (one chunk at a time).
template <typename T>
struct TiledStep {
  const TiledPlan plan;
  LargeVocabOutputs& out;
  const BatchRows<T>& batch;
  const int64_t* labels;
  const LargeVocabWeights& w;
  const gemm::MatrixView wc;  // W as (C, D), whatever its layout
  const float x_scale;
  const CrossEntropyOptions& opt;
  // dX from G after phase 2 (a soft cap with label smoothing), or accumulated online in phase 1.
  const bool dx_from_gradient, dx_online;
  // The online dX partials held by features, (D, rows_per_block) per group, rather than by rows: on
  // the FMA sgemm with a class-major W, the product is then dX^T = W[tile]^T . P^T, which reads W's
  // tile in place as its left operand (each class a contiguous run of features), where dX = P . W[tile]
  // copies the tile into packed panels for every chunk. (On AMX tiles, whose FMA fallback must write
  // the same layout, and for a feature-major W, by rows.)
  const bool dx_by_features;
  // dW and db need G, hence every logit of the chunk, and so does dX from G: only then are they kept.
  const bool keep_logits;
  // X is used in place when it already is the float matrix the GEMMs want.
  const bool copy_x;
  // The products on AMX tiles (amx_products_for): the chunk's X is packed once for all class tiles,
  // as the logits' rows and as dW's other operand (its columns, or X^T's rows for a feature-major W),
  // and the largest |w| of each class tile is found once per call.
  const bool amx;
  gemm::AmxOperand x_rows, x_for_dw;
  bool x_on_amx = false;  // this chunk's X is packed (every value finite)
  std::vector<float> tile_largest;  // NaN for a tile with a non-finite weight
  bool w_on_amx = false;            // every tile's largest packs (finite, 0 or normal)
  // A soft cap's dX on AMX tiles (phase 2b): G's rows' largest |values| (from phase 2; NaN for a row
  // with a non-finite G).
  std::vector<float> gradient_largest;

  // Scratch that is always written before it is read: left uninitialized (no pass to zero it).
  static std::unique_ptr<float[]> buffer(int64_t n) {
    return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]);
  }
  // The chunk's X packed once as dW's operand for the FMA sgemm (X^T's rows for a feature-major W, the
  // right operand for a class-major one), when D is whole (one feature slice).
  const bool pack_x_for_dw;
  const std::unique_ptr<float[]> logits, x_copy, x_packed, x_packed_for_dw, dx_partial;
  std::vector<RunningRow> running;  // (groups, rows_per_block)
  std::vector<float> label_logit;   // (rows_per_block)
  std::vector<uint8_t> row_correct;  // (B)
  std::vector<float> weight_sum;    // (D) sum_c w[c] W[c], the smoothing term of dX

  TiledStep(LargeVocabOutputs& out_, const BatchRows<T>& batch_, const int64_t* labels_, const LargeVocabWeights& w_,
            float x_scale_, const CrossEntropyOptions& opt_)
      : plan(batch_.count, w_.classes, w_.features),
        out(out_),
        batch(batch_),
        labels(labels_),
        w(w_),
        wc(w_.class_rows()),
        x_scale(x_scale_),
        opt(opt_),
        dx_from_gradient(out_.grad_x && opt_.softcap != 0.0f && opt_.label_smoothing != 0.0f),
        dx_online(out_.grad_x && !dx_from_gradient),
        dx_by_features(dx_online && !amx_products_for(w_.classes, w_.features) &&
                       w_.layout == WeightLayout::kClassMajor),
        keep_logits(out_.grad_w || out_.grad_b || dx_from_gradient),
        copy_x(!std::is_same_v<T, float> || batch_.rows != nullptr || x_scale_ != 1.0f),
        amx(amx_products_for(w_.classes, w_.features)),
        pack_x_for_dw(out_.grad_w && plan.feature_slices == 1),
        logits(buffer(keep_logits ? plan.rows_per_block * plan.ldz : 0)),
        x_copy(buffer(copy_x ? plan.rows_per_block * plan.features : 0)),
        x_packed(buffer(gemm::packed_a_size(plan.rows_per_block, plan.features))),
        x_packed_for_dw(buffer(!pack_x_for_dw                               ? 0
                               : w_.layout == WeightLayout::kFeatureMajor ? gemm::packed_a_size(plan.features, plan.rows_per_block)
                                                                          : gemm::packed_b_size(plan.rows_per_block, plan.features))),
        dx_partial(buffer(out_.grad_x ? plan.groups * plan.rows_per_block * plan.features : 0)),
        running(static_cast<size_t>(plan.groups * plan.rows_per_block)),
        label_logit(static_cast<size_t>(plan.rows_per_block)),
        row_correct(static_cast<size_t>(plan.batch)) {
    if (dx_online && opt.label_smoothing != 0.0f) sum_weights();
    if (amx) {
      tile_largest.resize(static_cast<size_t>(plan.class_tiles));
      if (dx_from_gradient) gradient_largest.resize(static_cast<size_t>(plan.rows_per_block));
    }
  }

  // Before the first chunk (AMX), one work item per class tile: its largest |w| (NaN if a weight is
  // not finite).
  void find_largest_weights(int64_t t, std::vector<float>& per_class) {
    const int64_t c0 = t * kClassBlock, nc = std::min(kClassBlock, plan.classes - c0);
    per_class.resize(static_cast<size_t>(nc));
    tile_largest[static_cast<size_t>(t)] = gemm::amx_largest(wc.block(c0, 0), nc, plan.features, per_class.data())
                                               ? *std::max_element(per_class.begin(), per_class.end())
                                               : std::numeric_limits<float>::quiet_NaN();
  }

  // W's classes c0 .. + nc packed as the right operands of the logits (depth D) and, when asked for,
  // of dX (depth nc), in one pass over them, with the scale of `largest` (their tiles').
  bool pack_weight_classes(int64_t c0, int64_t nc, float largest, gemm::AmxOperand* for_logits,
                           gemm::AmxOperand* for_dx) const {
    const int64_t C = plan.classes, D = plan.features;
    if (w.layout == WeightLayout::kFeatureMajor)  // lines are features: (D, nc), row stride C
      return gemm::amx_pack_lines(for_dx, for_logits, w.w + c0, C, D, nc, largest);
    return gemm::amx_pack_lines(for_logits, for_dx, w.w + c0 * D, D, nc, D, largest);  // lines are classes
  }

  // Phase 1 (AMX): W[tile t] packed for both products that read it, the logits and dX (or for the
  // logits alone, when dX is not taken online).
  bool pack_weight_tile(int64_t t, ProductWorkspace& ws) const {
    const int64_t c0 = t * kClassBlock, nc = std::min(kClassBlock, plan.classes - c0);
    return pack_weight_classes(c0, nc, tile_largest[static_cast<size_t>(t)], &ws.w_for_logits,
                               dx_online ? &ws.w_for_dx : nullptr);
  }

  // Phase 0 (AMX, one thread): the chunk's X packed for the products that read it.
  void pack_x_for_amx(int64_t r0, int64_t br) {
    const int64_t D = plan.features;
    const gemm::MatrixView x = chunk_x(r0);
    x_on_amx = gemm::amx_pack_a(x_rows, x, br, D);
    if (x_on_amx && out.grad_w)
      x_on_amx = w.layout == WeightLayout::kFeatureMajor ? gemm::amx_pack_a(x_for_dw, x.transposed(), D, br)
                                                         : gemm::amx_pack_b(x_for_dw, x, br, D);
  }

  // Whether this chunk's dW reads X from x_packed_for_dw: only when it is not on AMX tiles.
  bool weight_gradient_x_packed() const { return pack_x_for_dw && !x_on_amx; }

  // Phase 0 (FMA sgemm, one thread): the chunk's X packed as dW's operand.
  void pack_x_for_weight_gradient(int64_t r0, int64_t br) {
    const gemm::MatrixView x = chunk_x(r0);
    if (w.layout == WeightLayout::kFeatureMajor)
      gemm::pack_a_blocks(x_packed_for_dw.get(), x.transposed(), plan.features, br);
    else
      gemm::pack_b_blocks(x_packed_for_dw.get(), x, br, plan.features);
  }

  void sum_weights() {
    const int64_t C = plan.classes, D = plan.features;
    weight_sum.assign(static_cast<size_t>(D), 0.0f);
    if (w.layout == WeightLayout::kFeatureMajor) {  // in memory order either way
      for (int64_t d = 0; d < D; ++d) {
        float s = 0.0f;
        for (int64_t c = 0; c < C; ++c) s += opt.class_weight(c) * w.w[d * C + c];
        weight_sum[d] = s;
      }
    } else {
      for (int64_t c = 0; c < C; ++c) {
        const float wc_ = opt.class_weight(c);
        for (int64_t d = 0; d < D; ++d) weight_sum[d] += wc_ * w.w[c * D + d];
      }
    }
  }

  // The chunk's X as the GEMMs read it: the float copy, or X itself.
  gemm::MatrixView chunk_x(int64_t r0) const {
    if (copy_x) return gemm::MatrixView{x_copy.get(), plan.features, 1};
    return gemm::MatrixView{reinterpret_cast<const float*>(batch.data) + r0 * batch.stride, batch.stride, 1};
  }

  // Phase 0, row i of the chunk at r0: X as floats (gathered, scaled).
  void gather_row(int64_t r0, int64_t i) {
    const T* src = batch.row(r0 + i);
    float* dst = x_copy.get() + i * plan.features;
    for (int64_t d = 0; d < plan.features; ++d) dst[d] = static_cast<float>(src[d]) * x_scale;
  }

  // Phase 1, one work item: group g of class tiles over one slice of the chunk's rows (br of them).
  // Per tile: Z = X . W[tile]^T + b (kept for phase 3), P = exp(Z - running max) (times the cap's
  // slopes, under a cap), and, while W[tile] is in cache, the group's partial dX += P . W[tile],
  // rescaled whenever the max moves.
  // scratch: rows_per_block x kClassBlock floats of the calling thread.
  void logits_item(int64_t item, int64_t r0, int64_t br, float* scratch, ProductWorkspace& ws) {
    const int64_t C = plan.classes, D = plan.features, groups = plan.groups;
    const int64_t slice_rows = gemm::round_up((br + plan.row_slices - 1) / plan.row_slices, gemm::kMicroRows);
    const int64_t g = item / plan.row_slices, i0 = item % plan.row_slices * slice_rows;
    const int64_t i1 = std::min(br, i0 + slice_rows), rows = i1 - i0;
    if (rows <= 0) return;
    const gemm::MatrixView x_view = chunk_x(r0);
    RunningRow* run_rows = running.data() + g * plan.rows_per_block;
    float* dx = dx_online ? dx_partial.get() + g * plan.rows_per_block * D : nullptr;
    const bool capped_dx = dx && opt.softcap != 0.0f;
    alignas(64) float slope[kClassBlock];  // one row's cap slopes, taken before exp replaces its logits
    const float neg_inf = -std::numeric_limits<float>::infinity();
    for (int64_t i = i0; i < i1; ++i) run_rows[i] = RunningRow{neg_inf, 0.0f, neg_inf, 0, 0.0, false};
    std::vector<float> rescale(dx_by_features ? static_cast<size_t>(rows) : 0, 1.0f);  // per row, this tile
    const int64_t t_begin = g * plan.class_tiles / groups, t_end = (g + 1) * plan.class_tiles / groups;
    for (int64_t t = t_begin; t < t_end; ++t) {
      const int64_t c0 = t * kClassBlock, nc = std::min(kClassBlock, C - c0);
      const bool w_packed = w_on_amx && pack_weight_tile(t, ws);
      if (w.bias)
        for (int64_t i = 0; i < rows; ++i) std::copy(w.bias + c0, w.bias + c0 + nc, scratch + i * kClassBlock);
      if (!(w_packed && amx_logits(i0, rows, scratch, ws)))
        gemm::gemm(rows, nc, D, x_view, x_packed.get(), wc.block(c0, 0).transposed(), scratch, kClassBlock,
                   w.bias != nullptr, ws.fma, br, i0);
      for (int64_t i = i0; i < i1; ++i) {
        float* zi = scratch + (i - i0) * kClassBlock;
        if (opt.softcap != 0.0f) cap_logits(zi, nc, opt.softcap);
        if (keep_logits) std::copy(zi, zi + nc, logits.get() + i * plan.ldz + c0);
        const int64_t label = labels[batch.source(r0 + i)];
        if (label >= c0 && label < c0 + nc) label_logit[static_cast<size_t>(i)] = zi[label - c0];
        if (capped_dx) cap_slopes(zi, nc, opt.softcap, slope);
        const float factor = absorb_tile(run_rows[i], zi, nc, c0, opt.class_weights ? opt.class_weights + c0 : nullptr);
        if (capped_dx)
          for (int64_t c = 0; c < nc; ++c) zi[c] *= slope[c];
        if (dx && t > t_begin && factor != 1.0f) {
          if (dx_by_features)
            rescale[static_cast<size_t>(i - i0)] = factor;
          else
            for (int64_t d = 0; d < D; ++d) dx[i * D + d] *= factor;
        }
      }
      if (dx_by_features && t > t_begin) rescale_partial_by_features(dx, i0, rescale);
      if (dx && !(w_packed && amx_partial_dx(nc, rows, scratch, dx + i0 * D, t > t_begin, ws)))
        fma_partial_dx(c0, nc, i0, rows, scratch, dx, t > t_begin, ws);
    }
  }

  // Phase 1, a partial held by features: its columns i0 .. + rescale.size() times their rows' factors
  // (1 where a row's max stayed), which are then reset. Along the rows, so in memory order.
  void rescale_partial_by_features(float* dx, int64_t i0, std::vector<float>& rescale) const {
    if (std::all_of(rescale.begin(), rescale.end(), [](float f) { return f == 1.0f; })) return;
    const int64_t rows = static_cast<int64_t>(rescale.size());
    for (int64_t d = 0; d < plan.features; ++d) {
      float* column = dx + d * plan.rows_per_block + i0;
      for (int64_t i = 0; i < rows; ++i) column[i] *= rescale[static_cast<size_t>(i)];
    }
    std::fill(rescale.begin(), rescale.end(), 1.0f);
  }

  // Phase 1 on the FMA sgemm: the group's partial dX of rows i0 .. + rows (+)= P . W[tile] (P: rows x
  // nc, in scratch); by features, dX^T[:, i0 ..] (D x rows) (+)= W[tile]^T . P^T with W's tile read in
  // place (see dx_by_features).
  void fma_partial_dx(int64_t c0, int64_t nc, int64_t i0, int64_t rows, const float* p, float* dx, bool accumulate,
                      ProductWorkspace& ws) const {
    const int64_t D = plan.features;
    if (dx_by_features)
      gemm::gemm(D, rows, nc, wc.block(c0, 0).transposed(), nullptr, gemm::MatrixView{p, 1, kClassBlock}, dx + i0,
                 plan.rows_per_block, accumulate, ws.fma, 0, 0, nullptr, /*a_in_place=*/true);
    else
      gemm::gemm(rows, D, nc, gemm::MatrixView{p, kClassBlock, 1}, nullptr, wc.block(c0, 0), dx + i0 * D, D,
                 accumulate, ws.fma);
  }

  // Phase 1 on AMX tiles, W[tile] packed: Z[i0 .. + rows, tile] (+)= X . W[tile]^T into scratch;
  // false where the FMA sgemm must run instead.
  bool amx_logits(int64_t i0, int64_t rows, float* scratch, ProductWorkspace& ws) const {
    if (!x_on_amx || i0 % 16 != 0) return false;
    gemm::amx_multiply(x_rows, i0, rows, ws.w_for_logits, 0, ws.w_for_logits.lines, scratch, kClassBlock,
                       w.bias != nullptr);
    return true;
  }

  // Phase 1 on AMX tiles, W[tile] packed: dx (rows, D) (+)= P . W[tile] (P: rows x nc, in scratch);
  // false where the FMA sgemm must run.
  bool amx_partial_dx(int64_t nc, int64_t rows, const float* p, float* dx, bool accumulate,
                      ProductWorkspace& ws) const {
    const int64_t D = plan.features;
    if (!gemm::amx_pack_a(ws.a, gemm::MatrixView{p, kClassBlock, 1}, rows, nc)) return false;
    gemm::amx_multiply(ws.a, 0, rows, ws.w_for_dx, 0, D, dx, D, accumulate);
    return true;
  }

  // Phase 2, row i of the chunk at r0: the groups combined in order -> lse, argmax, loss; Z becomes G;
  // dX = the combined partials.
  void finish_row(int64_t r0, int64_t i) {
    const int64_t C = plan.classes, D = plan.features;
    const float eps = opt.label_smoothing;
    float m = -std::numeric_limits<float>::infinity(), best = m;
    int64_t argmax = 0;
    double logit_sum = 0.0;
    bool nan = false;
    for (int64_t g = 0; g < plan.groups; ++g) {
      const RunningRow& r = running[static_cast<size_t>(g * plan.rows_per_block + i)];
      m = std::max(m, r.max);
      logit_sum += r.logit_sum;
      nan |= r.nan;
      if (r.best > best) best = r.best, argmax = r.argmax;
    }
    float sum = 0.0f;
    for (int64_t g = 0; g < plan.groups; ++g) {
      const RunningRow& r = running[static_cast<size_t>(g * plan.rows_per_block + i)];
      sum += r.sum * std::exp(r.max - m);
    }
    const float log_sum = std::log(sum);  // sum >= 1: the max itself contributes exp(0)
    const int64_t label = labels[batch.source(r0 + i)];
    const bool ignored = opt.ignored(label);
    const float lse = m + log_sum;
    const RowGradient grad = opt.row_gradient(r0 + i, label, C, lse);
    if (keep_logits) gradient_row(logits.get() + i * plan.ldz, C, label, lse, grad, opt.class_weights, opt.softcap);
    if (amx && dx_from_gradient &&
        !gemm::amx_largest(gemm::MatrixView{logits.get() + i * plan.ldz, plan.ldz, 1}, 1, C, gradient_largest.data() + i))
      gradient_largest[static_cast<size_t>(i)] = std::numeric_limits<float>::quiet_NaN();
    const float loss = ignored ? 0.0f : row_loss(log_sum, m, label_logit[static_cast<size_t>(i)], logit_sum, label);
    const float z_loss = ignored ? 0.0f : opt.row_z_loss(lse);
    out.row_loss[r0 + i] = loss + z_loss;
    if (out.row_z_loss) out.row_z_loss[r0 + i] = z_loss;
    if (out.row_lse) out.row_lse[r0 + i] = lse;
    row_correct[static_cast<size_t>(r0 + i)] = !ignored && !nan && argmax == label;
    if (out.row_argmax) out.row_argmax[r0 + i] = argmax;
    if (!dx_online) return;
    // dX_i = x_scale scale (alpha sum_g exp(m_g - m) U_g / sum - beta s_y W[y] - gamma sum_c w[c] W[c]),
    // s_y the cap's slope at the label (1 without a cap; no smoothing, gamma = 0, under one)
    float* dxi = out.grad_x + (r0 + i) * D;
    std::fill(dxi, dxi + D, 0.0f);
    if (ignored) return;
    for (int64_t g = 0; g < plan.groups; ++g) {
      const RunningRow& r = running[static_cast<size_t>(g * plan.rows_per_block + i)];
      const float f = std::exp(r.max - m) / sum;
      if (dx_by_features) {
        const float* u = dx_partial.get() + g * plan.rows_per_block * D + i;
        for (int64_t d = 0; d < D; ++d) dxi[d] += f * u[d * plan.rows_per_block];
      } else {
        const float* u = dx_partial.get() + (g * plan.rows_per_block + i) * D;
        for (int64_t d = 0; d < D; ++d) dxi[d] += f * u[d];
      }
    }
    const float s = x_scale * grad.scale;
    const float label_beta =
        opt.softcap != 0.0f ? grad.beta * cap_slope(label_logit[static_cast<size_t>(i)], 1.0f / opt.softcap) : grad.beta;
    for (int64_t d = 0; d < D; ++d) {
      float v = grad.alpha * dxi[d] - label_beta * wc(label, d);
      if (eps != 0.0f) v -= grad.gamma * weight_sum[static_cast<size_t>(d)];
      dxi[d] = v * s;
    }
  }

  // (1 - eps) w_y (lse - z_y) + (eps / C) (W lse - sum_c w_c z_c), W = sum_c w_c, lse = m + log_sum,
  // written around the max so large logits do not cancel (the weighted sum in float64).
  float row_loss(float log_sum, float m, float label_logit, double weighted_logit_sum, int64_t label) const {
    const float eps = opt.label_smoothing, wy = opt.class_weight(label);
    const double total = opt.class_weight_total;
    const double smooth = total * log_sum + (total * m - weighted_logit_sum);
    return (1.0f - eps) * wy * (log_sum + (m - label_logit)) +
           static_cast<float>(eps / static_cast<double>(plan.classes) * smooth);
  }

  // Phase 2b on AMX tiles, for all threads of the region alike: whether W packs and every row of G
  // of the chunk's br rows does (its largest |G|, from phase 2, 0 or normal).
  bool input_gradient_on_amx(int64_t br) const {
    return amx && w_on_amx &&
           std::all_of(gradient_largest.begin(), gradient_largest.begin() + br, gemm::amx_scales_exactly);
  }

  // Phase 2b (a soft cap), one work item: group g's partial dX[:, slice of D] = G[:, group] .
  // W[group, slice], for the chunk's br rows, its classes summed in order by blocks of
  // kGradientDepthBlock (each block's product added to the partial), so the result is the same
  // whichever thread runs it. Each group reads its own classes of G only (slices of D alone would each
  // read all of it); D is sliced as in phase 3, where there are fewer class tiles than kClassGroups.
  // On AMX tiles (`on_amx`; then D is whole, as the tiles need classes enough for every group), the
  // rows of G scaled by their largest |G| over all classes and W's block by its tiles' largest |w|;
  // a block that does not pack goes to the sgemm.
  void input_gradient_item(int64_t item, int64_t br, bool on_amx, ProductWorkspace& ws) {
    const int64_t D = plan.features, g = item / plan.feature_slices;
    const int64_t d0 = item % plan.feature_slices * plan.slice_features, nd = std::min(plan.slice_features, D - d0);
    if (nd <= 0) return;
    const int64_t c_begin = g * plan.class_tiles / plan.groups * kClassBlock;
    const int64_t c_end = std::min(plan.classes, (g + 1) * plan.class_tiles / plan.groups * kClassBlock);
    float* partial = dx_partial.get() + g * plan.rows_per_block * D + d0;
    for (int64_t k0 = c_begin; k0 < c_end; k0 += kGradientDepthBlock) {
      const int64_t kb = std::min(kGradientDepthBlock, c_end - k0);
      const bool accumulate = k0 > c_begin;
      if (on_amx && nd == D && pack_gradient_block(k0, kb, br, ws))
        gemm::amx_multiply(ws.a, 0, br, ws.b, 0, D, partial, D, accumulate);
      else
        gemm::gemm(br, nd, kb, gemm::MatrixView{logits.get() + k0, plan.ldz, 1}, nullptr, wc.block(k0, d0), partial,
                   D, accumulate, ws.fma);
    }
  }

  // Phase 2b on AMX tiles: G's classes k0 .. + kb of the chunk's br rows and W's, packed as the operands
  // of their product; false where one does not pack.
  bool pack_gradient_block(int64_t k0, int64_t kb, int64_t br, ProductWorkspace& ws) const {
    const int64_t t0 = k0 / kClassBlock, t1 = (k0 + kb + kClassBlock - 1) / kClassBlock;
    const float largest = *std::max_element(tile_largest.begin() + t0, tile_largest.begin() + t1);
    return gemm::amx_pack_a(ws.a, gemm::MatrixView{logits.get() + k0, plan.ldz, 1}, br, kb, gradient_largest.data()) &&
           pack_weight_classes(k0, kb, largest, nullptr, &ws.b);
  }

  // Phase 2b, row i of the chunk at r0: dX_i = x_scale (the groups' partials, in order).
  void sum_input_gradient(int64_t r0, int64_t i) {
    const int64_t D = plan.features;
    float* dxi = out.grad_x + (r0 + i) * D;
    std::fill(dxi, dxi + D, 0.0f);
    for (int64_t g = 0; g < plan.groups; ++g) {
      const float* u = dx_partial.get() + (g * plan.rows_per_block + i) * D;
      for (int64_t d = 0; d < D; ++d) dxi[d] += u[d];
    }
    if (x_scale != 1.0f)
      for (int64_t d = 0; d < D; ++d) dxi[d] *= x_scale;
  }

  // Phase 3, one work item: dW and db of one range of weight_classes classes (or of a slice of D of
  // one), from G (in place of Z), for the chunk at r0 of br rows.
  void weight_gradient_item(int64_t item, int64_t r0, int64_t br, ProductWorkspace& ws) {
    const int64_t C = plan.classes, D = plan.features;
    const int64_t t = item / plan.feature_slices, c0 = t * plan.weight_classes;
    const int64_t nc = std::min(plan.weight_classes, C - c0);
    const int64_t d0 = item % plan.feature_slices * plan.slice_features, nd = std::min(plan.slice_features, D - d0);
    if (nd <= 0) return;
    const bool first = r0 == 0;
    const gemm::MatrixView x_view = chunk_x(r0), g{logits.get(), plan.ldz, 1};
    // (when packed, there is one feature slice: d0 = 0, nd = D)
    const float* x_packed_dw = weight_gradient_x_packed() ? x_packed_for_dw.get() : nullptr;
    if (out.grad_w && !amx_weight_gradient(c0, nc, d0, nd, br, first, ws)) {
      if (w.layout == WeightLayout::kFeatureMajor)  // dW[d0:, tile] (nd, nc) += X_chunk[:, d0:]^T . G[:, tile]
        gemm::gemm(nd, nc, br, x_view.block(0, d0).transposed(), x_packed_dw, g.block(0, c0),
                   out.grad_w + d0 * C + c0, C, !first, ws.fma);
      else  // dW[tile, d0:] (nc, nd) += G[:, tile]^T . X_chunk[:, d0:]
        gemm::gemm(nc, nd, br, g.block(0, c0).transposed(), nullptr, x_view.block(0, d0), out.grad_w + c0 * D + d0,
                   D, !first, ws.fma, 0, 0, x_packed_dw);
    }
    if (out.grad_b && d0 == 0) {
      float* db = out.grad_b + c0;
      if (first) std::fill(db, db + nc, 0.0f);
      for (int64_t i = 0; i < br; ++i) {
        const float* gi = logits.get() + i * plan.ldz + c0;
        for (int64_t c = 0; c < nc; ++c) db[c] += gi[c];
      }
    }
  }

  // Phase 3 on AMX tiles: dW of class tile c0 .. + nc and features d0 .. + nd; false where the FMA
  // sgemm must run.
  bool amx_weight_gradient(int64_t c0, int64_t nc, int64_t d0, int64_t nd, int64_t br, bool first,
                           ProductWorkspace& ws) {
    const int64_t C = plan.classes, D = plan.features;
    if (!x_on_amx || d0 % 16 != 0) return false;
    const gemm::MatrixView g{logits.get(), plan.ldz, 1};
    if (w.layout == WeightLayout::kFeatureMajor) {  // dW[d0:, tile] (+)= X^T[d0:, :] . G[:, tile]
      if (!gemm::amx_pack_b(ws.b, g.block(0, c0), br, nc)) return false;
      gemm::amx_multiply(x_for_dw, d0, nd, ws.b, 0, nc, out.grad_w + d0 * C + c0, C, !first);
    } else {  // dW[tile, d0:] (+)= G[:, tile]^T . X[:, d0:]
      if (!gemm::amx_pack_a(ws.a, g.block(0, c0).transposed(), nc, br)) return false;
      gemm::amx_multiply(ws.a, 0, nc, x_for_dw, d0, nd, out.grad_w + c0 * D + d0, D, !first);
    }
    return true;
  }

  // The totals, in row order.
  void total() {
    out.loss_sum = 0;
    out.z_loss_sum = 0;
    out.correct = 0;
    for (int64_t i = 0; i < plan.batch; ++i) {
      const double z_loss = out.row_z_loss ? out.row_z_loss[i] : 0.0;
      out.loss_sum += out.row_loss[i] - z_loss;
      out.z_loss_sum += z_loss;
      out.correct += row_correct[static_cast<size_t>(i)];
      if (out.row_correct) out.row_correct[i] = row_correct[static_cast<size_t>(i)];
    }
  }
};

// Phase 2b (a soft cap), in the parallel region: dX = x_scale G . W, by the class groups of phase 1,
// each into a partial of its own (each reads its classes of G and whole rows of W once), the partials
// then added in group order.
template <typename T>
void run_input_gradient(TiledStep<T>& step, int64_t r0, int64_t br, ProductWorkspace& ws) {
  const bool on_amx = step.input_gradient_on_amx(br);
#pragma omp for schedule(dynamic)
  for (int64_t item = 0; item < step.plan.groups * step.plan.feature_slices; ++item)
    step.input_gradient_item(item, br, on_amx, ws);
#pragma omp for schedule(static)
  for (int64_t i = 0; i < br; ++i) step.sum_input_gradient(r0, i);
}

// The whole step, see the top of the file. Call from outside any parallel region; `threads` threads
// run it (1 = serial).
template <typename T>
void run(LargeVocabOutputs& out, const BatchRows<T>& batch, const int64_t* labels, const LargeVocabWeights& w,
         float x_scale, const CrossEntropyOptions& opt, int threads) {
  TiledStep<T> step(out, batch, labels, w, x_scale, opt);
  const TiledPlan& plan = step.plan;
#pragma omp parallel num_threads(threads) if (threads > 1)
  {
    // The packing buffers stay with the (pooled) thread from call to call; the tile scratch is each
    // granted thread's own, so memory follows the threads that run, not the count asked for.
    thread_local ProductWorkspace ws;
    const auto scratch = TiledStep<T>::buffer(plan.rows_per_block * kClassBlock);
    if (step.amx) {
#pragma omp for schedule(dynamic)
      for (int64_t t = 0; t < plan.class_tiles; ++t) step.find_largest_weights(t, ws.largest);
#pragma omp single
      step.w_on_amx = std::all_of(step.tile_largest.begin(), step.tile_largest.end(), gemm::amx_scales_exactly);
    }
    for (int64_t r0 = 0; r0 < plan.batch; r0 += plan.rows_per_block) {
      const int64_t br = std::min(plan.rows_per_block, plan.batch - r0);
      if (step.copy_x) {
#pragma omp for schedule(static)
        for (int64_t i = 0; i < br; ++i) step.gather_row(r0, i);
      }
#pragma omp single
      {
        gemm::pack_a_blocks(step.x_packed.get(), step.chunk_x(r0), br, plan.features);
        if (step.amx) step.pack_x_for_amx(r0, br);
        if (step.weight_gradient_x_packed()) step.pack_x_for_weight_gradient(r0, br);
      }
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < plan.groups * plan.row_slices; ++item)
        step.logits_item(item, r0, br, scratch.get(), ws);
#pragma omp for schedule(static)
      for (int64_t i = 0; i < br; ++i) step.finish_row(r0, i);
      if (step.dx_from_gradient) run_input_gradient(step, r0, br, ws);
      if (!out.grad_w && !out.grad_b) continue;
#pragma omp for schedule(dynamic)
      for (int64_t item = 0; item < plan.weight_tiles * plan.feature_slices; ++item)
        step.weight_gradient_item(item, r0, br, ws);
    }
  }
  step.total();
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::large_vocab
