// The weights of the linear layer as the kernels take them, and the one name of their layout.
//
// The user's W is (D, C) as in the chapter (X . W + b), or (C, D) like torch.nn.Linear.weight; the
// Python parameter spells these layout="DC" and "CD", and everything below it says WeightLayout.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>

#include "csoftmax/kernels/gemm.hpp"

namespace csoftmax::CSOFTMAX_VARIANT {

enum class WeightLayout {
  kFeatureMajor,  // (D, C): layout="DC", the chapter's
  kClassMajor,    // (C, D): layout="CD", like torch.nn.Linear.weight
};

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

class AmxWeights;    // kernels/amx_logits.hpp
struct VnniWeights;  // kernels/vnni_argmax.hpp

// Class-major weights, whatever the caller's layout (the single-pass kernel's form: each logit is a
// dot product along D): wt is (classes, features), bias is (classes). `amx`, when set, is wt packed
// for the AMX forward of uint8 rows (amx_weights_for); `vnni`, when set, is W as int16 levels for
// the integer argmax of uint8 rows (vnni_weights_for).
struct ClassMajorWeights {
  const float* wt;
  const float* bias;
  int64_t classes;
  int64_t features;
  const AmxWeights* amx = nullptr;
  const VnniWeights* vnni = nullptr;
};

}  // namespace csoftmax::CSOFTMAX_VARIANT
