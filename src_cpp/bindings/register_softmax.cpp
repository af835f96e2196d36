// csoftmax._core: row-wise softmax / log_softmax / cross_entropy on logits, and the forward-only
// linear layer (logits, probabilities, log-probabilities or argmax of x_scale * X . W + b).
#include <string>
#include <vector>

#include "bindings/array_checks.hpp"
#include "csoftmax/linear_forward.hpp"
#include "csoftmax/threads.hpp"

namespace csoftmax::bindings {

namespace {

RowOutput parse_output(const std::string& what) {
  if (what == "logits") return RowOutput::kLogits;
  if (what == "softmax") return RowOutput::kProbabilities;
  if (what == "log_softmax") return RowOutput::kLogProbabilities;
  if (what == "argmax") return RowOutput::kArgmax;
  if (what == "cross_entropy") return RowOutput::kCrossEntropy;
  throw py::value_error("unknown output '" + what + "'");
}

// The output array of a forward pass, and where the kernel writes it.
py::array allocate_output(RowSink& sink, int64_t B, int64_t C) {
  if (sink.what == RowOutput::kArgmax) {
    py::array_t<int64_t> out(B);
    sink.argmax = out.mutable_data();
    return out;
  }
  if (sink.what == RowOutput::kCrossEntropy) {
    py::array_t<float> out(B);
    sink.values = out.mutable_data();
    return out;
  }
  py::array_t<float> out({B, C});
  sink.values = out.mutable_data();
  return out;
}

py::array softmax_rows_binding(const py::array& Z, const std::string& what, const py::object& labels) {
  require<float>(Z, "logits", 2);
  const int64_t B = Z.shape(0), C = Z.shape(1);
  if (B == 0 || C == 0) throw py::value_error("logits: empty array of shape " + shape_string(Z));
  RowSink sink{parse_output(what)};
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
                                 float x_scale, const std::string& what, bool chapter_layout) {
  const LinearInputs in = require_linear<T>(X, W, !chapter_layout, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  const int64_t* rows = in.rows;
  require<float>(b, "b", 1);
  require_dim(b, "b", 0, C);
  RowSink sink{parse_output(what)};
  if (sink.what == RowOutput::kCrossEntropy) throw py::value_error("use linear_cross_entropy for the loss");
  py::array out = allocate_output(sink, B, C);
  std::vector<float> wt_storage;
  const ClassMajorWeights weights{class_major(W, chapter_layout, wt_storage), static_cast<const float*>(b.data()), C, D};
  {
    py::gil_scoped_release release;
    linear_forward(BatchRows<T>{static_cast<const T*>(X.data()), D, rows, B}, weights, x_scale, sink, num_threads());
  }
  return out;
}

}  // namespace

void register_softmax(py::module_& m) {
  m.def("softmax_rows", &softmax_rows_binding, py::arg("logits"), py::arg("what"), py::arg("y"),
        "Row-wise 'softmax', 'log_softmax' or 'cross_entropy' (per row) of float32 logits.");
  m.def(
      "linear_forward",
      [](const py::array& X, const py::array& W, const py::array& b, const py::object& rows, float x_scale,
         const std::string& what, bool chapter_layout) {
        if (py::isinstance<py::array_t<uint8_t>>(X))
          return linear_forward_binding<uint8_t>(X, W, b, rows, x_scale, what, chapter_layout);
        return linear_forward_binding<float>(X, W, b, rows, x_scale, what, chapter_layout);
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("rows"), py::arg("x_scale"), py::arg("what"),
      py::arg("chapter_layout"),
      "Forward pass: 'logits', 'softmax', 'log_softmax' or 'argmax' of x_scale * X . W + b.");
}

}  // namespace csoftmax::bindings
