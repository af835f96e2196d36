// csoftmax._core.sgd_epoch: a whole epoch of minibatch SGD in C++, with the GIL released; and
// sgd_epoch_phases, the same epoch with each thread's time per phase of its steps.
#include "csoftmax/variant.hpp"

#include <cmath>
#include <vector>

#include "bindings/array_checks.hpp"
#include "bindings/feature_dtype.hpp"
#include "csoftmax/kernels/sgd_epoch.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

template <typename T>
EpochTotals sgd_epoch_binding(const py::array& X, const py::array& y, const py::array& order, int64_t batch_size,
                              float lr, float x_scale, py::array& wt, py::array& bias,
                              std::vector<StepPhases>* phases) {
  require<T>(X, "X", 2);
  require<int64_t>(y, "y", 1);
  require<int64_t>(order, "order", 1);
  require<float>(wt, "wt", 2, /*writable=*/true);
  require<float>(bias, "bias", 1, /*writable=*/true);
  const int64_t N = X.shape(0), D = X.shape(1), C = wt.shape(0), n = order.shape(0);
  require_dim(y, "y", 0, N);
  require_dim(wt, "wt", 1, D);
  require_dim(bias, "bias", 0, C);
  if (batch_size < 1) throw py::value_error("batch_size must be positive");
  if (!std::isfinite(lr) || !std::isfinite(x_scale)) throw py::value_error("lr and x_scale must be finite");
  const auto* rows = static_cast<const int64_t*>(order.data());
  const auto* labels = static_cast<const int64_t*>(y.data());
  require_indices(rows, n, N, "order");
  require_labels(labels, rows, n, C);
  float* wt_data = static_cast<float*>(wt.mutable_data());
  float* bias_data = static_cast<float*>(bias.mutable_data());
  EpochTotals totals{0.0, 0};
  if (n > 0) {
    py::gil_scoped_release release;
    totals = sgd_epoch(static_cast<const T*>(X.data()), D, labels, rows, n, batch_size, lr, x_scale, wt_data,
                       bias_data, C, D, num_threads(), phases);
  }
  return totals;
}

// sgd_epoch_binding for X's feature type.
EpochTotals epoch_of_any_type(const py::array& X, const py::array& y, const py::array& order, int64_t batch_size,
                              float lr, float x_scale, py::array& wt, py::array& bias,
                              std::vector<StepPhases>* phases) {
  return with_feature_type(X, [&](auto type) {
    return sgd_epoch_binding<typename decltype(type)::type>(X, y, order, batch_size, lr, x_scale, wt, bias, phases);
  });
}

}  // namespace

void register_training(py::module_& m) {
  m.def(
      "sgd_epoch",
      [](const py::array& X, const py::array& y, const py::array& order, int64_t batch_size, float lr, float x_scale,
         py::array& wt, py::array& bias) {
        const EpochTotals totals = epoch_of_any_type(X, y, order, batch_size, lr, x_scale, wt, bias, nullptr);
        return py::make_tuple(totals.loss_sum, totals.correct);
      },
      py::arg("X"), py::arg("y"), py::arg("order"), py::arg("batch_size"), py::arg("lr"), py::arg("x_scale"),
      py::arg("wt"), py::arg("bias"),
      "Minibatch SGD over X[order] in batches, updating class-major wt (C, D) and bias (C) in place. "
      "Returns (loss_sum, correct), each batch's taken before its update.");
  m.def(
      "sgd_epoch_phases",
      [](const py::array& X, const py::array& y, const py::array& order, int64_t batch_size, float lr, float x_scale,
         py::array& wt, py::array& bias) {
        std::vector<StepPhases> phases;
        const EpochTotals totals = epoch_of_any_type(X, y, order, batch_size, lr, x_scale, wt, bias, &phases);
        py::list per_thread;
        for (const StepPhases& p : phases) per_thread.append(py::make_tuple(p.blocks, p.wait, p.update));
        return py::make_tuple(totals.loss_sum, totals.correct, per_thread);
      },
      py::arg("X"), py::arg("y"), py::arg("order"), py::arg("batch_size"), py::arg("lr"), py::arg("x_scale"),
      py::arg("wt"), py::arg("bias"),
      "sgd_epoch, timed: (loss_sum, correct, phases), phases holding for each thread that ran the seconds "
      "its steps spent (running its blocks, waiting at the barrier, summing the partials into its W).");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
