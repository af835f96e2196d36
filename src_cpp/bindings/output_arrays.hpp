// The one way the bindings allocate what a kernel writes: a new C-contiguous array, and the pointer
// the kernel writes through.
#pragma once

#include "csoftmax/variant.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <initializer_list>

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace py = pybind11;

template <typename T>
inline py::array_t<T> new_output(std::initializer_list<py::ssize_t> shape, T*& data) {
  py::array_t<T> a(shape);
  data = a.mutable_data();
  return a;
}

// An output the caller may not have asked for: the array when `wanted` (data points into it), else
// None (data is nullptr, which the kernels read as "not wanted").
template <typename T>
inline py::object optional_output(bool wanted, std::initializer_list<py::ssize_t> shape, T*& data) {
  data = nullptr;
  if (!wanted) return py::none();
  return new_output<T>(shape, data);
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
