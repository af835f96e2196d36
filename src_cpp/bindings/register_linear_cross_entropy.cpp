// csoftmax._core.linear_cross_entropy: the fused single-pass step, for float32 or uint8 X.
#include "csoftmax/variant.hpp"

#include <string>
#include <vector>

#include "bindings/array_checks.hpp"
#include "bindings/feature_dtype.hpp"
#include "bindings/output_arrays.hpp"
#include "csoftmax/kernels/linear_cross_entropy.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

template <typename T>
py::tuple linear_cross_entropy(const py::array& X, const py::array& W, const py::array& b, const py::array& y,
                               const py::object& rows_obj, float x_scale, float grad_scale, bool row_losses,
                               bool grad_input, WeightLayout layout) {
  const LinearInputs in = require_linear<T>(X, W, layout, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  require_lane_classes(C, "kernel='single_pass'", "use kernel='tiled'");
  require<float>(b, "b", 1);
  require_dim(b, "b", 0, C);
  require<int64_t>(y, "y", 1);
  require_dim(y, "y", 0, in.n);
  const auto* labels = static_cast<const int64_t*>(y.data());
  const BatchRows<T> batch{static_cast<const T*>(X.data()), D, in.rows, B};
  require_labels(labels, in.rows, B, C);

  float *grad_W_data, *grad_b_data, *row_loss_data, *grad_X_data;
  py::array_t<float> grad_W = new_output<float>({W.shape(0), W.shape(1)}, grad_W_data);
  py::array_t<float> grad_b = new_output<float>({C}, grad_b_data);
  py::object row_loss = optional_output<float>(row_losses, {B}, row_loss_data);
  py::object grad_X = optional_output<float>(grad_input, {B, D}, grad_X_data);

  // The kernel works class-major: a (D, C) W is transposed in, and its gradient back out.
  const bool feature_major = layout == WeightLayout::kFeatureMajor;
  LineAlignedVector<float> wt_storage;
  LineAlignedVector<float> grad_wt_storage(feature_major ? static_cast<size_t>(C * D) : 0);
  ClassMajorWeights weights{class_major_copy(W, layout, wt_storage), static_cast<const float*>(b.data()), C, D};
  AmxWeights amx_storage;
  const GradientSink sink{feature_major ? grad_wt_storage.data() : grad_W_data, grad_b_data};

  double loss_sum = 0.0;
  int64_t correct = 0;
  {
    py::gil_scoped_release release;
    weights.amx = amx_weights_for<T>(amx_storage, weights);
    const int threads = num_threads();
    const BlockPlan plan = plan_blocks(B, C, D);
    const bool parallel = threads > 1 && plan.blocks > 1 && worth_threads(B, D, C);
    const int team = parallel ? threads : 1;  // scratch for the threads the region may run
    FusedLinearCrossEntropy<T> step(B, C, D, team);
#pragma omp parallel num_threads(team) if (parallel)
    step.run(plan, batch, labels, weights, x_scale, grad_scale, row_loss_data, grad_X_data, sink);
    if (feature_major) transpose(grad_wt_storage.data(), C, D, grad_W_data);  // back to the caller's (D, C)
    loss_sum = step.loss_sum();
    correct = step.correct();
  }
  return py::make_tuple(loss_sum, correct, row_loss, grad_W, grad_b, grad_X);
}

}  // namespace

void register_linear_cross_entropy(py::module_& m) {
  m.def(
      "linear_cross_entropy",
      [](const py::array& X, const py::array& W, const py::array& b, const py::array& y, const py::object& rows,
         float x_scale, float grad_scale, bool row_losses, bool grad_input, const std::string& layout) {
        const WeightLayout weight_layout = parse_layout(layout);
        return with_feature_type(X, [&](auto type) {
          return linear_cross_entropy<typename decltype(type)::type>(X, W, b, y, rows, x_scale, grad_scale,
                                                                     row_losses, grad_input, weight_layout);
        });
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("y"), py::kw_only(), py::arg("rows") = py::none(),
      py::arg("x_scale") = 1.0f, py::arg("grad_scale") = 1.0f, py::arg("row_losses") = false,
      py::arg("grad_input") = false, py::arg("layout") = "DC",
      "Fused linear + softmax + cross-entropy step (at most 2^24 classes). Returns (loss_sum, correct, row_loss, "
      "grad_W, grad_b, grad_X); grad_W in W's layout, the gradients scaled by grad_scale.");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
