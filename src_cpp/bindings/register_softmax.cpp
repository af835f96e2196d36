// csoftmax._core: row-wise softmax / log_softmax / cross_entropy on logits, and the forward-only
// linear layer (probabilities, log-probabilities or argmax of x_scale * X . W + b).
#include "csoftmax/variant.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/array_checks.hpp"
#include "bindings/feature_dtype.hpp"
#include "bindings/output_arrays.hpp"
#include "csoftmax/kernels/linear_forward.hpp"
#include "csoftmax/parallel/threads.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

RowOutput parse_output(const std::string& what, bool forward) {
  if (what == "softmax") return RowOutput::kProbabilities;
  if (what == "log_softmax") return RowOutput::kLogProbabilities;
  if (forward && what == "argmax") return RowOutput::kArgmax;
  if (!forward && what == "cross_entropy") return RowOutput::kCrossEntropy;
  throw py::value_error("what: expected " +
                        std::string(forward ? "'softmax', 'log_softmax' or 'argmax'"
                                            : "'softmax', 'log_softmax' or 'cross_entropy'") +
                        ", got '" + what + "'");
}

// The output array of a forward pass, and where the kernel writes it.
py::array allocate_output(RowSink& sink, int64_t B, int64_t C) {
  if (sink.what == RowOutput::kArgmax) return new_output<int64_t>({B}, sink.argmax);
  if (sink.what == RowOutput::kCrossEntropy) return new_output<float>({B}, sink.values);
  return new_output<float>({B, C}, sink.values);
}

py::array softmax_rows_binding(const py::array& Z, const std::string& what, const py::object& labels) {
  require<float>(Z, "logits", 2);
  const int64_t B = Z.shape(0), C = Z.shape(1);
  if (B == 0 || C == 0) throw py::value_error("logits: empty array of shape " + shape_string(Z));
  RowSink sink{parse_output(what, /*forward=*/false)};
  if (sink.what == RowOutput::kCrossEntropy) {
    const auto y = optional_vector<int64_t>(labels, "y");
    if (!y) throw py::type_error("y: the labels are needed for the loss");
    require_dim(*y, "y", 0, B);
    sink.labels = static_cast<const int64_t*>(y->data());
    require_indices(sink.labels, B, C, "y");
  }
  py::array out = allocate_output(sink, B, C);
  {
    py::gil_scoped_release release;
    softmax_rows(static_cast<const float*>(Z.data()), B, C, sink, num_threads());
  }
  return out;
}

template <typename T>
py::array linear_forward_binding(const py::array& X, const py::array& W, const py::array& b, const py::object& rows_obj,
                                 float x_scale, const std::string& what, WeightLayout layout) {
  const LinearInputs in = require_linear<T>(X, W, layout, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  require_lane_classes(C, "the forward pass (linear_softmax, predict)", "use the tiled kernel");
  require<float>(b, "b", 1);
  require_dim(b, "b", 0, C);
  RowSink sink{parse_output(what, /*forward=*/true)};
  py::array out = allocate_output(sink, B, C);
  LineAlignedVector<float> wt_storage;
  ClassMajorWeights weights{class_major_copy(W, layout, wt_storage), static_cast<const float*>(b.data()), C, D};
  AmxWeights amx_storage;
  VnniWeights vnni_storage;
  {
    py::gil_scoped_release release;
    weights.amx = amx_weights_for<T>(amx_storage, weights);
    if (sink.what == RowOutput::kArgmax && !weights.amx && B >= kVnniMinRows)
      weights.vnni = vnni_weights_for<T>(vnni_storage, weights);
    linear_forward(BatchRows<T>{static_cast<const T*>(X.data()), D, in.rows, B}, weights, x_scale, sink,
                   num_threads());
  }
  return out;
}

// The integer forward's labels alone (kernels/vnni_argmax.hpp): each row's proven label, or -1 where
// it proves none, from the loop predict runs. For the tests, which check every proven label against
// the exact argmax and that the proof holds for most rows of real data.
py::array vnni_proven_labels_binding(const py::array& X, const py::array& W, const py::array& b, float x_scale) {
  const LinearInputs in = require_linear<uint8_t>(X, W, WeightLayout::kFeatureMajor, x_scale, py::none());
  const int64_t D = in.features, C = in.classes, B = in.batch;
  require<float>(b, "b", 1);
  require_dim(b, "b", 0, C);
  if (!vnni_support().usable) throw std::runtime_error("the integer forward is not used: " + vnni_support().reason);
  LineAlignedVector<float> wt_storage;
  ClassMajorWeights weights{class_major_copy(W, WeightLayout::kFeatureMajor, wt_storage),
                            static_cast<const float*>(b.data()), C, D};
  VnniWeights storage;
  weights.vnni = vnni_weights_for<uint8_t>(storage, weights);
  if (!weights.vnni)
    throw py::value_error("the integer forward does not take these weights (non-finite, or rows too long)");
  RowSink sink{RowOutput::kArgmax};
  py::array out = allocate_output(sink, B, C);
#if CSOFTMAX_VNNI_COMPILED
  {
    py::gil_scoped_release release;
    vnni_linear_argmax(BatchRows<uint8_t>{static_cast<const uint8_t*>(X.data()), D, nullptr, B}, weights, x_scale,
                       sink.argmax, num_threads(), /*settle_unproven=*/false);
  }
#endif
  return out;
}

}  // namespace

void register_softmax(py::module_& m) {
  m.def("softmax_rows", &softmax_rows_binding, py::arg("logits"), py::arg("what"), py::arg("y") = py::none(),
        "Row-wise 'softmax', 'log_softmax' or 'cross_entropy' (per row, needs y) of float32 logits (B, C).");
  m.def(
      "linear_forward",
      [](const py::array& X, const py::array& W, const py::array& b, const std::string& what, const py::object& rows,
         float x_scale, const std::string& layout) {
        const WeightLayout weight_layout = parse_layout(layout);
        return with_feature_type(X, [&](auto type) {
          return linear_forward_binding<typename decltype(type)::type>(X, W, b, rows, x_scale, what, weight_layout);
        });
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("what"), py::kw_only(), py::arg("rows") = py::none(),
      py::arg("x_scale") = 1.0f, py::arg("layout") = "DC",
      "Forward pass: 'softmax', 'log_softmax' or 'argmax' of x_scale * X . W + b (at most 2^24 classes).");
  m.def("vnni_proven_labels", &vnni_proven_labels_binding, py::arg("X"), py::arg("W"), py::arg("b"), py::kw_only(),
        py::arg("x_scale") = 1.0f,
        "The integer forward's label of each uint8 row of X (W is (D, C)), or -1 where it proves none.");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
