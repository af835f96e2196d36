// The logits of a lane tile of uint8 rows on AMX tiles, in float32 precision.
//
// On Intel CPUs with AMX, uint8 rows are the one input whose forward the FMA units cannot run at
// their peak: widening bytes to floats (vpmovzxbd, vcvtdq2ps) issues on the two ports of the 512-bit
// FMAs (README: what limits the chapter step). AMX's TDPBF16PS multiplies 16 x 32 bf16 by 32 x 16
// bf16 into 16 x 16 float32 sums in one instruction, on a unit of its own. Its inputs are bfloat16,
// which holds 8 significant bits:
// - a pixel x, an integer of 0..255, goes in as x * 2^-112, exact: its float16 (vcvtuw2ph) shifted
//   right by 3 bits is that bf16 (the 5-bit exponent, biased by 15, read with bf16's bias of 127), and
//   0 stays 0. Three cheap instructions per 32 pixels, where widening to float32 takes five.
// - a float32 weight w goes in as w * 2^112, split into three bf16 parts, hi + mid + lo exactly
//   (split_scaled), so each product of a pixel and a part is exact in float32, and the 2^-112 and
//   2^112 cancel.
// Each part's products are summed in a float32 accumulator of its own (a column of the tile), and the
// three sums are added smallest first: the logit carries float32 summation error, as the FMA path's
// does, only in another order. (One accumulator for all three would round each lo product away
// against the growing sum and leave 16 bits.)
//
// AMX treats subnormal bf16 as zero and flushes subnormal results. AmxWeights::pack refuses weights
// whose parts or products could be subnormal (0 < |w| < 2^-103), whose scaled parts could overflow
// (|w| >= 2^15) or which are inf or NaN (whose parts are not a sum); the FMA path runs for those.
//
// Layout. A tile's columns are (part, class) pairs, part-major: column j of a class group of g
// classes holds part j / g of class j % g, so 10 classes fill 30 columns, two tiles, not three. The
// packed weights are the B operand in AMX's pair layout: for 32 features k0 .. k0 + 31, row p of a
// tile holds, for each column, the parts of features k0 + 2p and k0 + 2p + 1.
#pragma once

#include "csoftmax/variant.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "csoftmax/amx_support.hpp"
#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/weights.hpp"

#if CSOFTMAX_AMX_COMPILED
#include <immintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

#if CSOFTMAX_AMX_COMPILED

namespace amx {

inline constexpr int kTileRows = 16;       // rows of A and C; pairs of features in B
inline constexpr int kTileColumns = 16;    // float32 columns of C
inline constexpr int kStepFeatures = 32;   // features one TDPBF16PS sums (16 pairs)
inline constexpr int kGroupClasses = 16;   // classes per group: 48 columns, at most 3 C tiles
inline constexpr int kTileWords = kTileRows * kStepFeatures;  // bf16 in one A or B tile (1 KB)

// C tiles for a group of g classes: 3 g columns of 16.
inline int tiles_for(int64_t group_classes) {
  return static_cast<int>((3 * group_classes + kTileColumns - 1) / kTileColumns);
}

#define CSOFTMAX_AMX_VECTOR_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// Word i of the result is the high word of float i of (low, high): the bf16 of 32 floats whose low
// halves are zero, in order.
CSOFTMAX_AMX_VECTOR_TARGET inline __m512i high_words(__m512 low, __m512 high) {
  const __m512i odd_words = _mm512_set_epi16(63, 61, 59, 57, 55, 53, 51, 49, 47, 45, 43, 41, 39, 37, 35, 33, 31, 29,
                                             27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  return _mm512_permutex2var_epi16(_mm512_castps_si512(low), odd_words, _mm512_castps_si512(high));
}

CSOFTMAX_AMX_VECTOR_TARGET inline __m512 truncated(__m512 x) {  // the low 16 bits cleared
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(int(0xFFFF0000u))));
}

// The lanes of w that AmxWeights can take: 0, or 2^-103 <= |w| < 2^15, so that the parts of w * 2^112
// cannot overflow and every product of a pixel (>= 1) and a part (>= |w| 2^-23) is a normal float32.
// Inf and NaN fail (NaN compares false).
CSOFTMAX_AMX_VECTOR_TARGET inline __mmask16 splits_exactly(__m512 w) {
  const __m512 magnitude = _mm512_abs_ps(w);
  return _mm512_cmp_ps_mask(w, _mm512_setzero_ps(), _CMP_EQ_OQ) |
         (_mm512_cmp_ps_mask(magnitude, _mm512_set1_ps(0x1p-103f), _CMP_GE_OQ) &
          _mm512_cmp_ps_mask(magnitude, _mm512_set1_ps(0x1p15f), _CMP_LT_OQ));
}

// Masks of the first n lanes (n clamped to [0, width]): the tails of rows and steps.
inline __mmask16 first_lanes16(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}
inline __mmask32 first_lanes32(int64_t n) {
  return n >= 32 ? ~__mmask32(0) : n <= 0 ? __mmask32(0) : (__mmask32(1) << n) - 1;
}

// w[0 .. 32) as two vectors, lanes past `count` 0.
struct Floats32 {
  __m512 low, high;
  __mmask16 low_mask, high_mask;
};
CSOFTMAX_AMX_VECTOR_TARGET inline Floats32 load_floats32(const float* w, int64_t count) {
  const __mmask16 low_mask = first_lanes16(count), high_mask = first_lanes16(count - 16);
  return {_mm512_maskz_loadu_ps(low_mask, w), _mm512_maskz_loadu_ps(high_mask, w + 16), low_mask, high_mask};
}

// v * scale * 2^112 = hi + mid + lo exactly, for the 32 values v: three bf16 parts. hi is the scaled
// value truncated to its top 8 significant bits, mid the remainder (at most 16 significant bits)
// truncated likewise, and lo what is left (at most 8 bits, so a bf16 as it is). part[k] holds the 32
// bf16 of part k, in order. |v * scale| < 2^15 keeps the scaled values finite (scale is a power of
// two, applied first, so nothing overflows on the way).
CSOFTMAX_AMX_VECTOR_TARGET inline void split_scaled(const Floats32& v, float scale, __m512i part[3]) {
  const __m512 by = _mm512_set1_ps(scale), by_2_112 = _mm512_set1_ps(0x1p112f);
  const __m512 low = _mm512_mul_ps(_mm512_mul_ps(v.low, by), by_2_112);
  const __m512 high = _mm512_mul_ps(_mm512_mul_ps(v.high, by), by_2_112);
  const __m512 low_hi = truncated(low), high_hi = truncated(high);
  const __m512 low_rest = _mm512_sub_ps(low, low_hi), high_rest = _mm512_sub_ps(high, high_hi);
  const __m512 low_mid = truncated(low_rest), high_mid = truncated(high_rest);
  part[0] = high_words(low_hi, high_hi);
  part[1] = high_words(low_mid, high_mid);
  part[2] = high_words(_mm512_sub_ps(low_rest, low_mid), _mm512_sub_ps(high_rest, high_mid));
}

// split_scaled of weights w[0 .. count), unscaled (scale 1); false when one fails splits_exactly.
CSOFTMAX_AMX_VECTOR_TARGET inline bool split_weights(const float* w, int64_t count, __m512i part[3]) {
  const Floats32 v = load_floats32(w, count);
  split_scaled(v, 1.0f, part);
  return (splits_exactly(v.low) & v.low_mask) == v.low_mask && (splits_exactly(v.high) & v.high_mask) == v.high_mask;
}

// The 16 x 16 transpose of 32-bit words: row i of the result is column i of r.
CSOFTMAX_AMX_VECTOR_TARGET inline void transpose_16x16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; ++i) {  // pairs of words, within 128-bit lanes
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 4; ++i) {  // u[4i + q], lane L: rows 4i .. 4i + 3 of column 4L + q
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int q = 0; q < 4; ++q) {  // column 4L + q: lane L of u[q], u[4 + q], u[8 + q], u[12 + q]
    const __m512i x0 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0x44), x1 = _mm512_shuffle_i32x4(u[q], u[4 + q], 0xEE);
    const __m512i y0 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0x44);
    const __m512i y1 = _mm512_shuffle_i32x4(u[8 + q], u[12 + q], 0xEE);
    r[q] = _mm512_shuffle_i32x4(x0, y0, 0x88);
    r[4 + q] = _mm512_shuffle_i32x4(x0, y0, 0xDD);
    r[8 + q] = _mm512_shuffle_i32x4(x1, y1, 0x88);
    r[12 + q] = _mm512_shuffle_i32x4(x1, y1, 0xDD);
  }
}

}  // namespace amx

// Class-major weights packed as AMX B tiles: for each group of up to 16 classes, for each step of 32
// features, that group's tiles_for(g) tiles. Packed again for every new W (each SGD step): 2.4 us at
// the chapter's shape (a one-off timing loop on the Intel Xeon).
class AmxWeights {
 public:
  // Packs wt (C, D); false (and nothing usable) when some weight does not split exactly.
  bool pack(const float* wt, int64_t classes, int64_t features) {
    classes_ = classes;
    features_ = features;
    steps_ = (features + amx::kStepFeatures - 1) / amx::kStepFeatures;
    const int64_t groups = (classes + amx::kGroupClasses - 1) / amx::kGroupClasses;
    group_offset_.assign(static_cast<size_t>(groups + 1), 0);
    for (int64_t g = 0; g < groups; ++g)
      group_offset_[g + 1] = group_offset_[g] + steps_ * group_tiles(g) * amx::kTileWords;
    tiles_.resize(static_cast<size_t>(group_offset_[groups]));
    bool exact = true;
    for (int64_t group = 0; group < groups; ++group)
      for (int64_t step = 0; step < steps_; ++step) exact &= pack_step(wt, group, step);
    return exact;
  }

  // The bytes pack() takes for a (classes, features) W.
  static int64_t packed_bytes(int64_t classes, int64_t features) {
    const int64_t steps = (features + amx::kStepFeatures - 1) / amx::kStepFeatures;
    const int64_t full_groups = classes / amx::kGroupClasses, rest = classes % amx::kGroupClasses;
    const int64_t tiles = full_groups * amx::tiles_for(amx::kGroupClasses) + (rest ? amx::tiles_for(rest) : 0);
    return tiles * steps * amx::kTileWords * int64_t{sizeof(uint16_t)};
  }

  int64_t features() const { return features_; }
  int64_t steps() const { return steps_; }
  int64_t groups() const { return static_cast<int64_t>(group_offset_.size()) - 1; }
  int64_t group_classes(int64_t group) const {
    return std::min<int64_t>(amx::kGroupClasses, classes_ - group * amx::kGroupClasses);
  }
  int group_tiles(int64_t group) const { return amx::tiles_for(group_classes(group)); }
  // The tile-th B tile of a group's step.
  const uint16_t* tile(int64_t group, int64_t step, int tile) const {
    return tiles_.data() + group_offset_[group] + (step * group_tiles(group) + tile) * amx::kTileWords;
  }

 private:
  // A group's tiles for one step. Column j (part j / g of class j % g) is 32 bf16 along the
  // features, 16 words of pairs; a tile's row p is word p of each of its 16 columns: a transpose.
  CSOFTMAX_AMX_VECTOR_TARGET bool pack_step(const float* wt, int64_t group, int64_t step) {
    const int64_t g = group_classes(group), c0 = group * amx::kGroupClasses, k0 = step * amx::kStepFeatures;
    const int tiles = group_tiles(group);
    __m512i columns[3 * amx::kGroupClasses + amx::kTileColumns];
    for (int j = static_cast<int>(3 * g); j < tiles * amx::kTileColumns; ++j) columns[j] = _mm512_setzero_si512();
    bool exact = true;
    for (int64_t c = 0; c < g; ++c) {
      __m512i parts[3];
      exact &= amx::split_weights(wt + (c0 + c) * features_ + k0, features_ - k0, parts);
      for (int part = 0; part < 3; ++part) columns[part * g + c] = parts[part];
    }
    for (int t = 0; t < tiles; ++t) {
      __m512i* rows = columns + t * amx::kTileColumns;
      amx::transpose_16x16(rows);
      uint16_t* out = const_cast<uint16_t*>(tile(group, step, t));
      for (int p = 0; p < amx::kTileRows; ++p) _mm512_store_si512(out + p * amx::kStepFeatures, rows[p]);
    }
    return exact;
  }

  int64_t classes_ = 0, features_ = 0, steps_ = 0;
  std::vector<int64_t> group_offset_;
  LineAlignedVector<uint16_t> tiles_;
};

namespace amx {

// ldtilecfg's 64-byte operand (palette 1): all eight tiles of 16 rows of 64 bytes. amx_lane_logits
// uses tiles 0-5, amx_grad_weight (kernels/amx_grad_weight.hpp) all eight.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t column_bytes[16] = {};
  uint8_t rows[16] = {};
};

inline TileConfig tile_config() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.rows[t] = kTileRows;
    config.column_bytes[t] = 64;
  }
  return config;
}

#define CSOFTMAX_AMX_PIXEL_TARGET __attribute__((target("avx512fp16,avx512bw,avx512vl")))

// The bf16 of 32 pixels times 2^-112: their float16 (exact), shifted right by 3 bits.
CSOFTMAX_AMX_PIXEL_TARGET inline __m512i pixels_to_bf16(__m256i pixels) {
  return _mm512_srli_epi16(_mm512_castph_si512(_mm512_cvtepu16_ph(_mm512_cvtepu8_epi16(pixels))), 3);
}

// a[r * 32 + i] = bf16(x_rows[r][k0 + i] * 2^-112) for 16 rows and i < 32; features past D are 0.
// Only the last step of a row may be short; the others load without a mask, which on Intel costs
// an extra uop on the ports the conversion needs. (No lambdas here: they would not inherit the
// function's target.)
CSOFTMAX_AMX_PIXEL_TARGET inline void rows_to_bf16(uint16_t* a, const uint8_t* const* x_rows, int64_t k0,
                                                   int64_t D) {
  const int64_t left = D - k0;
  if (left >= kStepFeatures) {
    for (int r = 0; r < kTileRows; ++r)
      _mm512_store_si512(a + r * kStepFeatures,
                         pixels_to_bf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x_rows[r] + k0))));
  } else {
    const __mmask32 mask = first_lanes32(left);
    for (int r = 0; r < kTileRows; ++r)
      _mm512_store_si512(a + r * kStepFeatures, pixels_to_bf16(_mm256_maskz_loadu_epi8(mask, x_rows[r] + k0)));
  }
}

// Loads the tile configuration for amx_lane_logits and amx_grad_weight, and releases the tiles, in
// this thread (AmxTileScope, below).
__attribute__((target("amx-tile"), noinline)) inline void load_tile_config() {
  static const TileConfig config = tile_config();
  _tile_loadconfig(&config);
}
__attribute__((target("amx-tile"), noinline)) inline void release_tiles() { _tile_release(); }

}  // namespace amx

// zt[c * 16 + r] = x_scale * <x_rows[r], wt[c]> + bias[c]    for the 16 rows of a lane tile.
// The same contract as lane_logits (kernels/lane_tile.hpp), for uint8 rows and weights packed by
// AmxWeights::pack, in a thread that holds an AmxTileScope.
__attribute__((target("amx-tile,amx-bf16,avx512fp16,avx512bw,avx512vl"), noinline)) inline void amx_lane_logits(
    float* zt, const uint8_t* const* x_rows, const AmxWeights& packed, const float* bias, float x_scale) {
  constexpr int kAhead = 2, kRing = 4;  // rows converted kAhead steps before the tiles load them
  alignas(64) uint16_t a[kRing][amx::kTileWords];
  alignas(64) float sums[3][amx::kTileRows * amx::kTileColumns];
  const int64_t D = packed.features();
  const __m512i row_starts = _mm512_mullo_epi32(
      _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0), _mm512_set1_epi32(amx::kTileColumns));
  for (int64_t group = 0; group < packed.groups(); ++group) {
    const int tiles = packed.group_tiles(group);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    const int64_t steps = packed.steps();
    for (int64_t step = 0; step < std::min<int64_t>(kAhead, steps); ++step)
      amx::rows_to_bf16(a[step % kRing], x_rows, step * amx::kStepFeatures, D);
    for (int64_t step = 0; step < steps; ++step) {
      if (step + kAhead < steps)
        amx::rows_to_bf16(a[(step + kAhead) % kRing], x_rows, (step + kAhead) * amx::kStepFeatures, D);
      _tile_loadd(3, a[step % kRing], 64);
      _tile_loadd(4, packed.tile(group, step, 0), 64);
      _tile_dpbf16ps(0, 3, 4);
      if (tiles > 1) {
        _tile_loadd(5, packed.tile(group, step, 1), 64);
        _tile_dpbf16ps(1, 3, 5);
      }
      if (tiles > 2) {
        _tile_loadd(4, packed.tile(group, step, 2), 64);
        _tile_dpbf16ps(2, 3, 4);
      }
    }
    _tile_stored(0, sums[0], 64);  // only the tiles the group's columns fill
    if (tiles > 1) _tile_stored(1, sums[1], 64);
    if (tiles > 2) _tile_stored(2, sums[2], 64);
    // Row r's sum of column j is sums[j / 16][r * 16 + j % 16]: a gather per (part, class).
    const int64_t g = packed.group_classes(group), c0 = group * amx::kGroupClasses;
    auto column = [&](int64_t j) {
      return _mm512_i32gather_ps(row_starts, sums[j / amx::kTileColumns] + j % amx::kTileColumns, 4);
    };
    for (int64_t c = 0; c < g; ++c) {
      const __m512 sum = _mm512_add_ps(_mm512_add_ps(column(2 * g + c), column(g + c)), column(c));
      _mm512_storeu_ps(zt + (c0 + c) * amx::kTileRows,
                      _mm512_fmadd_ps(sum, _mm512_set1_ps(x_scale), _mm512_set1_ps(bias[c0 + c])));
    }
  }
}

#else
class AmxWeights {  // never packed: amx_support() says no in this variant
 public:
  static int64_t packed_bytes(int64_t, int64_t) { return 0; }
};
#endif  // CSOFTMAX_AMX_COMPILED

// A class count below 5 leaves most of a tile's 16 columns empty, so the packed weights can be up to
// 8 times W: past this size, the FMA path runs instead of packing.
inline constexpr int64_t kAmxPackedBytesMax = int64_t{64} << 20;

// The packed weights for the forward of rows of type T, in `storage`: nullptr (the FMA path) unless
// T is uint8, AMX runs here (amx_support), the packing fits kAmxPackedBytesMax and every weight
// splits exactly.
template <typename T>
inline const AmxWeights* amx_weights_for(AmxWeights& storage, const ClassMajorWeights& w) {
#if CSOFTMAX_AMX_COMPILED
  if constexpr (std::is_same_v<T, uint8_t>)
    if (amx_support().usable && AmxWeights::packed_bytes(w.classes, w.features) <= kAmxPackedBytesMax &&
        storage.pack(w.wt, w.classes, w.features))
      return &storage;
#endif
  (void)storage;
  (void)w;
  return nullptr;
}

// The tile state of this thread while a kernel uses amx_lane_logits: loads the configuration when
// `active` and releases the tiles at the end. Nothing is assumed of the tile state outside a scope,
// since other libraries in the process may use the tiles too; nothing inside one calls out of
// csoftmax.
class AmxTileScope {
 public:
  explicit AmxTileScope(bool active) : active_(active) {
#if CSOFTMAX_AMX_COMPILED
    if (active_) amx::load_tile_config();
#endif
  }
  ~AmxTileScope() {
#if CSOFTMAX_AMX_COMPILED
    if (active_) amx::release_tiles();
#endif
  }
  AmxTileScope(const AmxTileScope&) = delete;
  AmxTileScope& operator=(const AmxTileScope&) = delete;

 private:
  bool active_;
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
