// csoftmax._core.logistic_loss_gradient and logistic_hessian_product: the full-batch kernels of the
// LogisticRegression estimator, for float32, float64 or uint8 X in C or F order (read in place).
#include "csoftmax/variant.hpp"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "bindings/array_checks.hpp"
#include "csoftmax/kernels/logistic_hessian_product.hpp"
#include "csoftmax/kernels/logistic_loss_gradient.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

// X (n, d), C- or F-contiguous, as a view of its own elements; n, d >= 1.
template <typename T>
logistic::MatrixView<T> matrix_view(const py::array& X) {
  if (X.ndim() != 2) throw py::value_error("X: expected 2 dimensions, got shape " + shape_string(X));
  const int64_t n = X.shape(0), d = X.shape(1);
  if (n < 1 || d < 1) throw py::value_error("X: expected at least one row and one column, got shape " + shape_string(X));
  require_aligned<T>(X, "X");
  const auto* data = static_cast<const T*>(X.data());
  if (X.flags() & py::array::c_style) return {data, n, d, d, 1};
  if (X.flags() & py::array::f_style) return {data, n, d, 1, n};
  throw py::value_error("X: expected a C- or F-contiguous array");
}

// coef (K, d) and intercept (K) or None: float64, finite, C-contiguous.
const double* parameters(const py::array& coef, const py::object& intercept, int64_t d, const char* coef_name,
                         const char* intercept_name, std::optional<py::array>& intercept_array) {
  require<double>(coef, coef_name, 2);
  require_dim(coef, coef_name, 1, d);
  if (coef.shape(0) < 1) throw py::value_error(std::string(coef_name) + ": expected at least one row");
  intercept_array = optional_vector<double>(intercept, intercept_name);
  if (intercept_array) require_dim(*intercept_array, intercept_name, 0, coef.shape(0));
  auto require_finite = [](const py::array& a, const char* name) {
    const auto* p = static_cast<const double*>(a.data());
    for (py::ssize_t i = 0; i < a.size(); ++i)
      if (!std::isfinite(p[i])) throw py::value_error(std::string(name) + ": contains NaN or infinity");
  };
  require_finite(coef, coef_name);
  if (intercept_array) require_finite(*intercept_array, intercept_name);
  return intercept_array ? static_cast<const double*>(intercept_array->data()) : nullptr;
}

const double* sample_weights(const py::object& sample_weight, int64_t n, std::optional<py::array>& array) {
  array = optional_vector<double>(sample_weight, "sample_weight");
  if (!array) return nullptr;
  require_dim(*array, "sample_weight", 0, n);
  return static_cast<const double*>(array->data());
}

// y (n) of int32 or int64, every code in [0, classes).
template <typename Code>
logistic::Labels checked_labels(const py::array& y, int64_t n, int64_t classes) {
  require<Code>(y, "y", 1);
  require_dim(y, "y", 0, n);
  const auto* codes = static_cast<const Code*>(y.data());
  for (int64_t i = 0; i < n; ++i)
    if (codes[i] < 0 || codes[i] >= classes)
      throw py::value_error("y: label " + std::to_string(codes[i]) + " at position " + std::to_string(i) +
                            " is outside [0, " + std::to_string(classes) + ")");
  if constexpr (sizeof(Code) == 4) return {codes, nullptr};
  return {nullptr, reinterpret_cast<const int64_t*>(codes)};
}

double checked_scale(double x_scale) {
  if (!std::isfinite(x_scale)) throw py::value_error("x_scale: must be finite");
  return x_scale;
}

// Calls f(view) with X's view for its dtype.
template <typename F>
auto with_matrix(const py::array& X, F&& f) {
  if (py::isinstance<py::array_t<float>>(X)) return f(matrix_view<float>(X));
  if (py::isinstance<py::array_t<double>>(X)) return f(matrix_view<double>(X));
  if (py::isinstance<py::array_t<uint8_t>>(X)) return f(matrix_view<uint8_t>(X));
  throw py::type_error("X: expected dtype float32, float64 or uint8, got " + std::string(py::str(X.dtype())));
}

// An output shaped like the parameters: (K, d) and, with an intercept, (K).
struct ParameterArrays {
  py::array_t<double> coef;
  py::object intercept = py::none();
  double* coef_data;
  double* intercept_data = nullptr;
  ParameterArrays(int64_t K, int64_t d, bool with_intercept) : coef({K, d}), coef_data(coef.mutable_data()) {
    if (!with_intercept) return;
    py::array_t<double> a(K);
    intercept_data = a.mutable_data();
    intercept = a;
  }
};

py::tuple loss_gradient(const py::array& X, const py::array& y, const py::object& sample_weight,
                        const py::array& coef, const py::object& intercept, double x_scale) {
  return with_matrix(X, [&](auto view) {
    std::optional<py::array> intercept_array, weight_array;
    const double* b = parameters(coef, intercept, view.cols, "coef", "intercept", intercept_array);
    const double* w = sample_weights(sample_weight, view.rows, weight_array);
    const int64_t K = coef.shape(0);
    const logistic::Labels labels = py::isinstance<py::array_t<int32_t>>(y)
                                        ? checked_labels<int32_t>(y, view.rows, std::max<int64_t>(K, 2))
                                        : checked_labels<int64_t>(y, view.rows, std::max<int64_t>(K, 2));
    const double scale = checked_scale(x_scale);
    ParameterArrays grad(K, view.cols, b != nullptr);
    const auto* coef_data = static_cast<const double*>(coef.data());
    double loss;
    {
      py::gil_scoped_release release;
      loss = logistic::logistic_loss_gradient(grad.coef_data, grad.intercept_data, view, labels, w, coef_data, b,
                                              scale, K);
    }
    return py::make_tuple(loss, grad.coef, grad.intercept);
  });
}

py::tuple hessian_product(const py::array& X, const py::object& sample_weight, const py::array& coef,
                          const py::object& intercept, const py::array& V, const py::object& V_intercept,
                          double x_scale) {
  return with_matrix(X, [&](auto view) {
    std::optional<py::array> intercept_array, v_intercept_array, weight_array;
    const double* b = parameters(coef, intercept, view.cols, "coef", "intercept", intercept_array);
    const double* vb = parameters(V, V_intercept, view.cols, "V", "V_intercept", v_intercept_array);
    const int64_t K = coef.shape(0);
    require_dim(V, "V", 0, K);
    if ((b == nullptr) != (vb == nullptr))
      throw py::value_error("V_intercept: must be given exactly when intercept is");
    const double* w = sample_weights(sample_weight, view.rows, weight_array);
    const double scale = checked_scale(x_scale);
    ParameterArrays hv(K, view.cols, b != nullptr);
    const auto* coef_data = static_cast<const double*>(coef.data());
    const auto* v_data = static_cast<const double*>(V.data());
    {
      py::gil_scoped_release release;
      logistic::logistic_hessian_product(hv.coef_data, hv.intercept_data, view, w, coef_data, b, v_data, vb, scale, K);
    }
    return py::make_tuple(hv.coef, hv.intercept);
  });
}

}  // namespace

void register_logistic_regression(py::module_& m) {
  m.def("logistic_loss_gradient", &loss_gradient, py::arg("X"), py::arg("y"), py::arg("sample_weight"),
        py::arg("coef"), py::arg("intercept"), py::arg("x_scale"),
        "Sum of weighted logistic losses and its gradients in one pass over X. Returns "
        "(loss_sum, grad_coef, grad_intercept or None).");
  m.def("logistic_hessian_product", &hessian_product, py::arg("X"), py::arg("sample_weight"), py::arg("coef"),
        py::arg("intercept"), py::arg("V"), py::arg("V_intercept"), py::arg("x_scale"),
        "The Hessian of the loss sum times (V, V_intercept) in one pass over X. Returns (HV, HV_intercept or None).");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
