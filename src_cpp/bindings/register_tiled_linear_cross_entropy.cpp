// csoftmax._core.tiled_linear_cross_entropy: the large-vocabulary kernel, for float32 or uint8 X.
#include <cmath>

#include "bindings/array_checks.hpp"
#include "csoftmax/tiled_linear_cross_entropy.hpp"

namespace csoftmax::bindings {

namespace {

py::array_t<float> new_array(std::initializer_list<py::ssize_t> shape, float*& data) {
  py::array_t<float> a(shape);
  data = a.mutable_data();
  return a;
}

template <typename T>
py::tuple tiled_binding(const py::array& X, const py::array& W, const py::object& b_obj, const py::array& y,
                        const py::object& rows_obj, float x_scale, float grad_scale, float label_smoothing,
                        const py::object& ignore_obj, bool class_major, bool want_lse, bool grad_weight,
                        bool grad_input, bool naive) {
  require<T>(X, "X", 2);
  require<float>(W, "W", 2);
  require<int64_t>(y, "y", 1);
  const int64_t N = X.shape(0), D = X.shape(1), C = W.shape(class_major ? 0 : 1);
  require_dim(W, "W", class_major ? 1 : 0, D);
  require_dim(y, "y", 0, N);
  const float* bias = nullptr;
  if (!b_obj.is_none()) {
    if (!py::isinstance<py::array>(b_obj)) throw py::type_error("b: expected a numpy array of float32 or None");
    const py::array b = b_obj.cast<py::array>();
    require<float>(b, "b", 1);
    require_dim(b, "b", 0, C);
    bias = static_cast<const float*>(b.data());
  }
  if (D < 1 || C < 1) throw py::value_error("X and W need at least one feature and one class");
  if (!std::isfinite(x_scale)) throw py::value_error("x_scale must be finite");
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
    throw py::value_error("label_smoothing must be in [0, 1]");
  int64_t B = 0;
  const int64_t* rows = gather_indices(rows_obj, N, B);
  if (B == 0) throw py::value_error("the batch is empty");
  CrossEntropyOptions options;
  options.grad_scale = grad_scale;
  options.label_smoothing = label_smoothing;
  if (!ignore_obj.is_none()) {
    options.has_ignore_index = true;
    options.ignore_index = ignore_obj.cast<int64_t>();
  }
  const auto* labels = static_cast<const int64_t*>(y.data());
  require_labels(labels, rows, B, C, options.has_ignore_index ? &options.ignore_index : nullptr);

  LargeVocabOutputs out{};
  py::array_t<float> row_loss = new_array({B}, out.row_loss);
  py::object lse = py::none(), grad_W = py::none(), grad_b = py::none(), grad_X = py::none();
  if (want_lse) lse = new_array({B}, out.row_lse);
  if (grad_weight) {
    grad_W = new_array({W.shape(0), W.shape(1)}, out.grad_w);
    if (bias) grad_b = new_array({C}, out.grad_b);
  }
  if (grad_input) grad_X = new_array({B, D}, out.grad_x);

  const BatchRows<T> batch{static_cast<const T*>(X.data()), D, rows, B};
  const LargeVocabWeights weights{static_cast<const float*>(W.data()), bias, C, D,
                                  class_major ? WeightLayout::kClassMajor : WeightLayout::kFeatureMajor};
  {
    py::gil_scoped_release release;
    if (naive)
      linear_cross_entropy_naive(out, batch, labels, weights, x_scale, options);
    else
      large_vocab::run(out, batch, labels, weights, x_scale, options, num_threads());
  }
  return py::make_tuple(out.loss_sum, out.correct, row_loss, lse, grad_W, grad_b, grad_X);
}

}  // namespace

void register_tiled_linear_cross_entropy(py::module_& m) {
  m.def(
      "tiled_linear_cross_entropy",
      [](const py::array& X, const py::array& W, const py::object& b, const py::array& y, const py::object& rows,
         float x_scale, float grad_scale, float label_smoothing, const py::object& ignore_index, bool class_major,
         bool want_lse, bool grad_weight, bool grad_input, bool naive) {
        if (py::isinstance<py::array_t<uint8_t>>(X) && X.dtype().is(py::dtype::of<uint8_t>()))
          return tiled_binding<uint8_t>(X, W, b, y, rows, x_scale, grad_scale, label_smoothing, ignore_index,
                                        class_major, want_lse, grad_weight, grad_input, naive);
        return tiled_binding<float>(X, W, b, y, rows, x_scale, grad_scale, label_smoothing, ignore_index, class_major,
                                    want_lse, grad_weight, grad_input, naive);
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("y"), py::arg("rows"), py::arg("x_scale"),
      py::arg("grad_scale"), py::arg("label_smoothing"), py::arg("ignore_index"), py::arg("class_major"),
      py::arg("want_lse"), py::arg("grad_weight"), py::arg("grad_input"), py::arg("naive") = false,
      "Large-vocabulary linear + cross-entropy in class tiles, never holding the B x C logits. "
      "Returns (loss_sum, correct, row_loss, lse, grad_W, grad_b, grad_X).");
  m.def(
      "tiled_plan",
      [](int64_t B, int64_t C, int64_t D) {
        py::dict plan;
        plan["row_block"] = large_vocab::row_block(B, C);
        plan["class_block"] = large_vocab::kClassBlock;
        plan["feature_slice"] = large_vocab::feature_slice(D);
        plan["logits_bytes"] = large_vocab::row_block(B, C) * large_vocab::logits_stride(C) * int64_t{sizeof(float)};
        plan["micro_tile"] = py::make_tuple(gemm::kMicroRows, gemm::kMicroCols);
        return plan;
      },
      py::arg("B"), py::arg("C"), py::arg("D"), "How the tiled kernel cuts a problem of B rows, C classes, D features.");
}

}  // namespace csoftmax::bindings
