// Argument checks shared by the bindings. The Python layer (csoftmax/ops.py) already converts and
// validates user input; these checks make the extension safe on its own: an unexpected array is
// rejected with an exception naming the argument, never read out of bounds.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

namespace csoftmax::bindings {

namespace py = pybind11;

inline std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A C-contiguous array of exactly dtype T with `ndim` dimensions; `writable` when the kernel writes it.
template <typename T>
inline void require(const py::array& a, const char* name, int ndim, bool writable = false) {
  // isinstance<array_t<T>> compares dtypes by equivalence (numpy's PyArray_EquivTypes): any uint8,
  // and only native-byte-order floats; identity of dtype objects is not guaranteed.
  if (!py::isinstance<py::array_t<T>>(a))
    throw py::type_error(std::string(name) + ": expected dtype " + std::string(py::str(py::dtype::of<T>())) +
                         ", got " + std::string(py::str(a.dtype())));
  if (a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected " + std::to_string(ndim) + " dimensions, got shape " +
                          shape_string(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
}

inline void require_dim(const py::array& a, const char* name, int axis, py::ssize_t expected) {
  if (a.shape(axis) != expected)
    throw py::value_error(std::string(name) + ": expected size " + std::to_string(expected) + " along axis " +
                          std::to_string(axis) + ", got shape " + shape_string(a));
}

// Every index in [0, bound), so the kernels can trust them.
inline void require_indices(const int64_t* values, int64_t count, int64_t bound, const char* name) {
  for (int64_t i = 0; i < count; ++i)
    if (values[i] < 0 || values[i] >= bound)
      throw py::value_error(std::string(name) + ": value " + std::to_string(values[i]) + " at position " +
                            std::to_string(i) + " is outside [0, " + std::to_string(bound) + ")");
}

// The label of every row of a batch (labels[rows[i]], or labels[i] without rows) is in [0, classes),
// or equal to *ignore_index when one is given.
inline void require_labels(const int64_t* labels, const int64_t* rows, int64_t count, int64_t classes,
                           const int64_t* ignore_index = nullptr) {
  for (int64_t i = 0; i < count; ++i) {
    const int64_t source = rows ? rows[i] : i;
    if ((labels[source] < 0 || labels[source] >= classes) && !(ignore_index && labels[source] == *ignore_index))
      throw py::value_error("y: label " + std::to_string(labels[source]) + " at position " + std::to_string(source) +
                            " is outside [0, " + std::to_string(classes) + ")" +
                            (ignore_index ? " and is not ignore_index (" + std::to_string(*ignore_index) + ")" : ""));
  }
}

// The optional `rows` argument (int64 indices into the n rows of X) -> its data and the batch size.
inline const int64_t* gather_indices(const py::object& rows, int64_t n, int64_t& batch) {
  batch = n;
  if (rows.is_none()) return nullptr;
  // Only an existing ndarray: a converted temporary would not outlive this call.
  if (!py::isinstance<py::array>(rows)) throw py::type_error("rows: expected a numpy array of int64 or None");
  const py::array indices = rows.cast<py::array>();
  require<int64_t>(indices, "rows", 1);
  batch = indices.shape(0);
  const auto* data = static_cast<const int64_t*>(indices.data());
  require_indices(data, batch, n, "rows");
  return data;
}

// Weights as the kernels want them: class-major (C, D). W arrives as (D, C), the chapter's layout,
// or already class-major; the first is transposed into `storage`.
inline const float* class_major(const py::array& W, bool chapter_layout, std::vector<float>& storage) {
  const float* w = static_cast<const float*>(W.data());
  if (!chapter_layout) return w;
  const int64_t D = W.shape(0), C = W.shape(1);
  storage.resize(static_cast<size_t>(C * D));
  for (int64_t d = 0; d < D; ++d)
    for (int64_t c = 0; c < C; ++c) storage[c * D + d] = w[d * C + c];
  return storage.data();
}

}  // namespace csoftmax::bindings
