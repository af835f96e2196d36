// Argument checks shared by the bindings. The Python layer (csoftmax/ops.py) already converts and
// validates user input; these checks make the extension safe on its own: an unexpected array is
// rejected with an exception naming the argument, never read out of bounds.
#pragma once

#include "csoftmax/variant.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "csoftmax/cache_aligned.hpp"
#include "csoftmax/kernels/lane_tile.hpp"
#include "csoftmax/kernels/weights.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace py = pybind11;

inline std::string shape_string(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A C-contiguous array of exactly dtype T with `ndim` dimensions; `writable` when the kernel writes it.
// The kernels load T through T*: its address must be a multiple of alignof(T). A NumPy array need not
// be (a view at an odd byte offset, a buffer unpickled by Dask), and reading it would be undefined.
template <typename T>
inline void require_aligned(const py::array& a, const char* name) {
  if (reinterpret_cast<std::uintptr_t>(a.data()) % alignof(T) != 0)
    throw py::value_error(std::string(name) + ": the array's data is not aligned to its dtype (copy it, e.g. "
                          "with np.require(a, requirements='A'))");
}

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
  require_aligned<T>(a, name);
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

// A 1-D array argument that may be None (nullopt then). Only an existing ndarray is taken: a
// converted temporary would not outlive this call.
template <typename T>
inline std::optional<py::array> optional_vector(const py::object& obj, const char* name) {
  if (obj.is_none()) return std::nullopt;
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy array of " + std::string(py::str(py::dtype::of<T>())) +
                         " or None");
  py::array a = obj.cast<py::array>();
  require<T>(a, name, 1);
  return a;
}

// The optional `rows` argument (int64 indices into the n rows of X) -> its data and the batch size.
inline const int64_t* gather_indices(const py::object& rows, int64_t n, int64_t& batch) {
  const std::optional<py::array> indices = optional_vector<int64_t>(rows, "rows");
  batch = indices ? indices->shape(0) : n;
  if (!indices) return nullptr;
  const auto* data = static_cast<const int64_t*>(indices->data());
  require_indices(data, batch, n, "rows");
  return data;
}

// The one spelling of the weight layout across the boundary: the Python layer passes layout="DC" (W
// is (D, C), the chapter's) or "CD" (W is (C, D), like torch.nn.Linear.weight).
inline WeightLayout parse_layout(const std::string& layout) {
  if (layout == "DC") return WeightLayout::kFeatureMajor;
  if (layout == "CD") return WeightLayout::kClassMajor;
  throw py::value_error("layout: must be 'DC' (W is (D, C)) or 'CD' (W is (C, D)), got '" + layout + "'");
}

// The inputs of every linear kernel: X (N, D) of T; W in `layout`; a finite x_scale; and the batch,
// all N rows or those `rows` picks, at least one.
struct LinearInputs {
  int64_t n, features, classes, batch;
  const int64_t* rows;  // nullptr: rows 0..n-1
};

template <typename T>
inline LinearInputs require_linear(const py::array& X, const py::array& W, WeightLayout layout, float x_scale,
                                   const py::object& rows) {
  require<T>(X, "X", 2);
  require<float>(W, "W", 2);
  const bool class_major = layout == WeightLayout::kClassMajor;
  LinearInputs in{X.shape(0), X.shape(1), W.shape(class_major ? 0 : 1), 0, nullptr};
  require_dim(W, "W", class_major ? 1 : 0, in.features);
  if (in.features < 1 || in.classes < 1) throw py::value_error("X and W need at least one feature and one class");
  if (!std::isfinite(x_scale)) throw py::value_error("x_scale must be finite");
  in.rows = gather_indices(rows, in.n, in.batch);
  if (in.batch == 0) throw py::value_error("the batch is empty");
  return in;
}

// The lane-tile kernels (single-pass step, forward pass) carry class indices as float32 lanes.
inline void require_lane_classes(int64_t classes, const char* kernel, const char* instead) {
  if (classes > kMaxLaneClasses)
    throw py::value_error(std::string(kernel) + " handles at most " + std::to_string(kMaxLaneClasses) +
                          " classes (2^24: class indices travel as float32 lanes, exact only that far), got " +
                          std::to_string(classes) + ": " + instead);
}

// dst (cols, rows) = the transpose of src (rows, cols), both row-major.
inline void transpose(const float* src, int64_t rows, int64_t cols, float* dst) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) dst[j * rows + i] = src[i * cols + j];
}

// W as the lane-tile kernels want it, (C, D): as given when class-major, else transposed into `storage`.
inline const float* class_major_copy(const py::array& W, WeightLayout layout, LineAlignedVector<float>& storage) {
  const float* w = static_cast<const float*>(W.data());
  if (layout == WeightLayout::kClassMajor) return w;
  storage.resize(static_cast<size_t>(W.shape(0) * W.shape(1)));
  transpose(w, W.shape(0), W.shape(1), storage.data());
  return storage.data();
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
