// csoftmax._core.linear_cross_entropy: the fused step, for float32 or uint8 X.
#include <vector>

#include "bindings/array_checks.hpp"
#include "csoftmax/linear_cross_entropy.hpp"

namespace csoftmax::bindings {

namespace {

template <typename T>
py::tuple linear_cross_entropy(const py::array& X, const py::array& W, const py::array& b, const py::array& y,
                               const py::object& rows_obj, float x_scale, float grad_scale, bool row_losses,
                               bool grad_input, bool chapter_layout) {
  const LinearInputs in = require_linear<T>(X, W, !chapter_layout, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  const int64_t* rows = in.rows;
  require<float>(b, "b", 1);
  require_dim(b, "b", 0, C);
  require<int64_t>(y, "y", 1);
  require_dim(y, "y", 0, in.n);
  const auto* labels = static_cast<const int64_t*>(y.data());
  const BatchRows<T> batch{static_cast<const T*>(X.data()), D, rows, B};
  require_labels(labels, rows, B, C);

  py::array_t<float> grad_W({W.shape(0), W.shape(1)});
  py::array_t<float> grad_b(C);
  py::object row_loss = py::none(), grad_X = py::none();
  float* row_loss_data = nullptr;
  float* grad_X_data = nullptr;
  if (row_losses) {
    py::array_t<float> a(B);
    row_loss_data = a.mutable_data();
    row_loss = a;
  }
  if (grad_input) {
    py::array_t<float> a({B, D});
    grad_X_data = a.mutable_data();
    grad_X = a;
  }

  std::vector<float> wt_storage, grad_wt_storage(chapter_layout ? static_cast<size_t>(C * D) : 0);
  const ClassMajorWeights weights{class_major(W, chapter_layout, wt_storage), static_cast<const float*>(b.data()), C, D};
  GradientSink sink;
  sink.grad_wt = chapter_layout ? grad_wt_storage.data() : grad_W.mutable_data();
  sink.grad_b = grad_b.mutable_data();
  float* grad_W_data = grad_W.mutable_data();

  double loss_sum = 0.0;
  int64_t correct = 0;
  {
    py::gil_scoped_release release;
    const int threads = num_threads();
    FusedLinearCrossEntropy<T> step(B, C, D, threads);
#pragma omp parallel num_threads(threads) if (threads > 1 && plan_blocks(B, C, D).blocks > 1 && worth_threads(B, D, C))
    step.run(batch, labels, weights, x_scale, grad_scale, row_loss_data, grad_X_data, sink);
    if (chapter_layout) transpose(grad_wt_storage.data(), C, D, grad_W_data);  // back to the caller's (D, C)
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
         float x_scale, float grad_scale, bool row_losses, bool grad_input, bool chapter_layout) {
        if (py::isinstance<py::array_t<uint8_t>>(X))
          return linear_cross_entropy<uint8_t>(X, W, b, y, rows, x_scale, grad_scale, row_losses, grad_input,
                                               chapter_layout);
        return linear_cross_entropy<float>(X, W, b, y, rows, x_scale, grad_scale, row_losses, grad_input,
                                           chapter_layout);
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("y"), py::arg("rows"), py::arg("x_scale"),
      py::arg("grad_scale"), py::arg("row_losses"), py::arg("grad_input"), py::arg("chapter_layout"),
      "Fused linear + softmax + cross-entropy step. Returns (loss_sum, correct, row_loss, grad_W, grad_b, grad_X).");
}

}  // namespace csoftmax::bindings
