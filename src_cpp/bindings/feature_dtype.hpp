// The one place the bindings choose the kernel instantiation for X's dtype: uint8 (images, widened
// in registers) or float32 (everything else, which the checks then require).
#pragma once

#include "csoftmax/variant.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace py = pybind11;

template <typename T>
struct FeatureType {
  using type = T;
};

// f(FeatureType<uint8_t>{}) for a uint8 X, else f(FeatureType<float>{}); returns what f returns.
template <typename F>
inline auto with_feature_type(const py::array& X, F&& f) {
  if (py::isinstance<py::array_t<uint8_t>>(X)) return f(FeatureType<uint8_t>{});
  return f(FeatureType<float>{});
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
