// csoftmax._core: the compiled kernels. Each register_*.cpp binds one area.
#include <pybind11/pybind11.h>

#include "csoftmax/variant.hpp"

namespace py = pybind11;

namespace csoftmax::CSOFTMAX_VARIANT::bindings {
void register_build_info(py::module_& m);
void register_softmax(py::module_& m);
void register_linear_cross_entropy(py::module_& m);
void register_training(py::module_& m);
void register_tiled_linear_cross_entropy(py::module_& m);
void register_logistic_regression(py::module_& m);
void register_tuning(py::module_& m);
}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings

PYBIND11_MODULE(_core, m) {
  m.doc() = "csoftmax's C++ kernels (use the csoftmax package, which validates arguments first)";
  csoftmax::bindings::register_build_info(m);
  csoftmax::bindings::register_softmax(m);
  csoftmax::bindings::register_linear_cross_entropy(m);
  csoftmax::bindings::register_training(m);
  csoftmax::bindings::register_tiled_linear_cross_entropy(m);
  csoftmax::bindings::register_logistic_regression(m);
  csoftmax::bindings::register_tuning(m);
}
