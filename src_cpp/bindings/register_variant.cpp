// One instruction-set variant's functions, all registered into csoftmax._core: bindings/module.cpp
// calls the register_kernels of the variant it chose at import, and no other.
#include "csoftmax/variant.hpp"

#include <pybind11/pybind11.h>

namespace py = pybind11;

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

void register_build_info(py::module_& m, const py::dict& dispatch);
void register_softmax(py::module_& m);
void register_linear_cross_entropy(py::module_& m);
void register_training(py::module_& m);
void register_tiled_linear_cross_entropy(py::module_& m);
void register_logistic_regression(py::module_& m);
void register_tuning(py::module_& m);

// `dispatch`: which variant runs and why (module.cpp), for build_info() to report.
void register_kernels(py::module_& m, const py::dict& dispatch) {
  register_build_info(m, dispatch);
  register_softmax(m);
  register_linear_cross_entropy(m);
  register_training(m);
  register_tiled_linear_cross_entropy(m);
  register_logistic_regression(m);
  register_tuning(m);
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
