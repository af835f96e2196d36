// csoftmax._core.tiled_linear_cross_entropy: the large-vocabulary kernel, for float32 or uint8 X.

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
                        const py::object& rows_obj, float x_scale, bool mean, float label_smoothing,
                        const py::object& ignore_obj, const py::object& weights_obj, bool class_major, bool want_lse,
                        bool grad_weight, bool grad_input, bool naive) {
  const LinearInputs in = require_linear<T>(X, W, class_major, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  const int64_t* rows = in.rows;
  require<int64_t>(y, "y", 1);
  require_dim(y, "y", 0, in.n);
  const float* bias = nullptr;
  if (const auto b = optional_vector<float>(b_obj, "b")) {
    require_dim(*b, "b", 0, C);
    bias = static_cast<const float*>(b->data());
  }
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
    throw py::value_error("label_smoothing must be in [0, 1]");
  CrossEntropyOptions options;
  options.label_smoothing = label_smoothing;
  if (!ignore_obj.is_none()) {
    options.has_ignore_index = true;
    options.ignore_index = ignore_obj.cast<int64_t>();
  }
  if (const auto row_weights = optional_vector<float>(weights_obj, "row_weights")) {
    require_dim(*row_weights, "row_weights", 0, B);
    options.row_weights = static_cast<const float*>(row_weights->data());
  }
  const auto* labels = static_cast<const int64_t*>(y.data());
  require_labels(labels, rows, B, C, options.has_ignore_index ? &options.ignore_index : nullptr);
  // A mean is over the rows that are not ignored (as PyTorch); with none left, the gradients are 0.
  int64_t counted = 0;
  for (int64_t i = 0; i < B; ++i) counted += !options.ignored(labels[rows ? rows[i] : i]);
  options.grad_scale = mean ? (counted ? 1.0f / static_cast<float>(counted) : 0.0f) : 1.0f;

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
  return py::make_tuple(out.loss_sum, counted, out.correct, row_loss, lse, grad_W, grad_b, grad_X);
}

}  // namespace

void register_tiled_linear_cross_entropy(py::module_& m) {
  m.def(
      "tiled_linear_cross_entropy",
      [](const py::array& X, const py::array& W, const py::object& b, const py::array& y, const py::object& rows,
         float x_scale, bool mean, float label_smoothing, const py::object& ignore_index,
         const py::object& row_weights, bool class_major, bool want_lse, bool grad_weight, bool grad_input,
         bool naive) {
        if (py::isinstance<py::array_t<uint8_t>>(X))
          return tiled_binding<uint8_t>(X, W, b, y, rows, x_scale, mean, label_smoothing, ignore_index,
                                        row_weights, class_major, want_lse, grad_weight, grad_input, naive);
        return tiled_binding<float>(X, W, b, y, rows, x_scale, mean, label_smoothing, ignore_index, row_weights,
                                    class_major, want_lse, grad_weight, grad_input, naive);
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("y"), py::arg("rows"), py::arg("x_scale"),
      py::arg("mean"), py::arg("label_smoothing"), py::arg("ignore_index"), py::arg("row_weights"),
      py::arg("class_major"),
      py::arg("want_lse"), py::arg("grad_weight"), py::arg("grad_input"), py::arg("naive") = false,
      "Large-vocabulary linear + cross-entropy in class tiles, never holding the B x C logits. "
      "Returns (loss_sum, counted rows, correct, row_loss, lse, grad_W, grad_b, grad_X); mean scales the "
      "gradients by 1 / counted rows.");
  m.def(
      "tiled_plan",
      [](int64_t B, int64_t C, int64_t D) {
        py::dict plan;
        plan["row_block"] = large_vocab::row_block(B, C);
        plan["class_block"] = large_vocab::kClassBlock;
        plan["class_groups"] = large_vocab::class_groups(C);
        plan["logits_bytes"] = large_vocab::row_block(B, C) * large_vocab::logits_stride(C) * int64_t{sizeof(float)};
        plan["micro_tile"] = py::make_tuple(gemm::kMicroRows, gemm::kMicroCols);
        return plan;
      },
      py::arg("B"), py::arg("C"), py::arg("D"),
      "How the tiled kernel cuts a problem of B rows, C classes, D features (logits_bytes: the logits kept "
      "at once, when dW or db is asked for).");
}

}  // namespace csoftmax::bindings
