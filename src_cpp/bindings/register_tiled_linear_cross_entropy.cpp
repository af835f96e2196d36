// csoftmax._core.tiled_linear_cross_entropy: the large-vocabulary kernel (and its naive reference), for
// float32 or uint8 X; tiled_plan: how it cuts a shape; amx_product: its products on AMX tiles alone,
// for the tests.
#include "csoftmax/variant.hpp"

#include <cmath>
#include <string>

#include "bindings/array_checks.hpp"
#include "bindings/feature_dtype.hpp"
#include "bindings/output_arrays.hpp"
#include "csoftmax/kernels/tiled_linear_cross_entropy.hpp"
#include "csoftmax/kernels/tiled_linear_cross_entropy_naive.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

CrossEntropyOptions parse_options(float label_smoothing, const py::object& ignore_index, const py::object& weights,
                                  const py::object& class_weight, int64_t batch, int64_t classes) {
  if (!(label_smoothing >= 0.0f && label_smoothing <= 1.0f))
    throw py::value_error("label_smoothing must be in [0, 1]");
  CrossEntropyOptions options;
  options.label_smoothing = label_smoothing;
  if (!ignore_index.is_none()) {
    options.has_ignore_index = true;
    options.ignore_index = ignore_index.cast<int64_t>();
  }
  if (const auto row_weights = optional_vector<float>(weights, "row_weights")) {
    require_dim(*row_weights, "row_weights", 0, batch);
    options.row_weights = static_cast<const float*>(row_weights->data());
  }
  double total = static_cast<double>(classes);
  if (const auto class_weights = optional_vector<float>(class_weight, "class_weight")) {
    require_dim(*class_weights, "class_weight", 0, classes);
    options.class_weights = static_cast<const float*>(class_weights->data());
    total = 0.0;
    for (int64_t c = 0; c < classes; ++c) {
      const float w = options.class_weights[c];
      if (!(std::isfinite(w) && w >= 0.0f))
        throw py::value_error("class_weight: every weight must be finite and >= 0, got " + std::to_string(w) +
                              " for class " + std::to_string(c));
      total += w;
    }
  }
  options.class_weight_total = static_cast<float>(total);
  return options;
}

template <typename T>
py::tuple tiled_binding(const py::array& X, const py::array& W, const py::object& b_obj, const py::array& y,
                        const py::object& rows_obj, float x_scale, bool mean, float label_smoothing,
                        const py::object& ignore_obj, const py::object& weights_obj,
                        const py::object& class_weight_obj, float z_loss, float softcap, WeightLayout layout,
                        bool want_lse, bool want_predictions, bool grad_weight, bool grad_input, bool naive) {
  const LinearInputs in = require_linear<T>(X, W, layout, x_scale, rows_obj);
  const int64_t D = in.features, C = in.classes, B = in.batch;
  require<int64_t>(y, "y", 1);
  require_dim(y, "y", 0, in.n);
  const float* bias = nullptr;
  if (const auto b = optional_vector<float>(b_obj, "b")) {
    require_dim(*b, "b", 0, C);
    bias = static_cast<const float*>(b->data());
  }
  CrossEntropyOptions options = parse_options(label_smoothing, ignore_obj, weights_obj, class_weight_obj, B, C);
  const auto* labels = static_cast<const int64_t*>(y.data());
  require_labels(labels, in.rows, B, C, options.has_ignore_index ? &options.ignore_index : nullptr);
  // A mean is over the rows that are not ignored, each counting its label's class weight (as
  // PyTorch: the weight sum, in float64); with nothing left, the gradients are 0.
  int64_t counted = 0;
  double weight_sum = 0.0;
  for (int64_t i = 0; i < B; ++i) {
    const int64_t label = labels[in.rows ? in.rows[i] : i];
    if (options.ignored(label)) continue;
    ++counted;
    weight_sum += options.class_weight(label);
  }
  options.grad_scale = mean ? (weight_sum > 0.0 ? static_cast<float>(1.0 / weight_sum) : 0.0f) : 1.0f;
  if (!(std::isfinite(z_loss) && z_loss >= 0.0f))
    throw py::value_error("z_loss: must be finite and >= 0, got " + std::to_string(z_loss));
  options.z_loss = z_loss;
  if (!(std::isfinite(softcap) && softcap >= 0.0f))
    throw py::value_error("softcap: must be finite and > 0 (or 0 for none), got " + std::to_string(softcap));
  options.softcap = softcap;
  // the z-loss's mean is over the counted rows, the cross-entropy's over their class weights
  const double z_ratio = weight_sum > 0.0 ? weight_sum / static_cast<double>(counted) : 0.0;
  options.z_grad_ratio = mean ? static_cast<float>(z_ratio) : 1.0f;

  LargeVocabOutputs out{};
  py::array_t<float> row_loss = new_output<float>({B}, out.row_loss);
  py::object lse = optional_output<float>(want_lse, {B}, out.row_lse);
  py::object row_z_loss = optional_output<float>(z_loss != 0.0f, {B}, out.row_z_loss);
  py::object row_argmax = optional_output<int64_t>(want_predictions, {B}, out.row_argmax);
  py::object row_correct = optional_output<uint8_t>(want_predictions, {B}, out.row_correct);
  py::object grad_W = optional_output<float>(grad_weight, {W.shape(0), W.shape(1)}, out.grad_w);
  py::object grad_b = optional_output<float>(grad_weight && bias, {C}, out.grad_b);
  py::object grad_X = optional_output<float>(grad_input, {B, D}, out.grad_x);

  const BatchRows<T> batch{static_cast<const T*>(X.data()), D, in.rows, B};
  const LargeVocabWeights weights{static_cast<const float*>(W.data()), bias, C, D, layout};
  {
    py::gil_scoped_release release;
    if (naive)
      linear_cross_entropy_naive(out, batch, labels, weights, x_scale, options);
    else
      large_vocab::run(out, batch, labels, weights, x_scale, options, num_threads());
  }
  return py::make_tuple(out.loss_sum, counted, weight_sum, out.correct, row_loss, lse, grad_W, grad_b, grad_X,
                        out.z_loss_sum, row_z_loss, row_argmax, row_correct);
}

// A (M, K) . B (K, N) by the AMX products (kernels/amx_gemm.hpp), each operand given as itself or
// as its transpose's storage (a_transposed: the array is A^T, (K, M)); None where they refuse it (a
// value they cannot hold, a depth past kAmxMaxDepth, or no AMX in this process).
py::object amx_product(const py::array& a, const py::array& b, bool a_transposed, bool b_transposed) {
  require<float>(a, "A", 2);
  require<float>(b, "B", 2);
  const int64_t M = a.shape(a_transposed ? 1 : 0), K = a.shape(a_transposed ? 0 : 1);
  const int64_t N = b.shape(b_transposed ? 0 : 1);
  require_dim(b, "B", b_transposed ? 1 : 0, K);
  if (!amx_support().usable) return py::none();
  const auto* a_data = static_cast<const float*>(a.data());
  const auto* b_data = static_cast<const float*>(b.data());
  const gemm::MatrixView A = a_transposed ? gemm::MatrixView{a_data, 1, M} : gemm::MatrixView{a_data, K, 1};
  const gemm::MatrixView B = b_transposed ? gemm::MatrixView{b_data, 1, K} : gemm::MatrixView{b_data, N, 1};
  gemm::AmxOperand packed_a, packed_b;
  py::array_t<float> c({M, N});
  float* out = c.mutable_data();
  bool packed = false;
  {
    py::gil_scoped_release released;
    packed = gemm::amx_pack_a(packed_a, A, M, K) && gemm::amx_pack_b(packed_b, B, K, N);
    if (packed) gemm::amx_multiply(packed_a, 0, M, packed_b, 0, N, out, N, false);
  }
  if (!packed) return py::none();
  return std::move(c);
}

void require_plan_size(int64_t value, const char* name) {
  if (value < 1 || value > large_vocab::kMaxDimension)
    throw py::value_error(std::string("tiled_plan: ") + name + " must be in [1, 2^40], got " + std::to_string(value));
}

}  // namespace

void register_tiled_linear_cross_entropy(py::module_& m) {
  m.def(
      "tiled_linear_cross_entropy",
      [](const py::array& X, const py::array& W, const py::object& b, const py::array& y, const py::object& rows,
         float x_scale, bool mean, float label_smoothing, const py::object& ignore_index,
         const py::object& row_weights, const py::object& class_weight, float z_loss, float softcap,
         const std::string& layout, bool want_lse, bool want_predictions, bool grad_weight, bool grad_input,
         bool naive) {
        const WeightLayout weight_layout = parse_layout(layout);
        return with_feature_type(X, [&](auto type) {
          return tiled_binding<typename decltype(type)::type>(X, W, b, y, rows, x_scale, mean, label_smoothing,
                                                              ignore_index, row_weights, class_weight, z_loss, softcap,
                                                              weight_layout, want_lse, want_predictions, grad_weight,
                                                              grad_input, naive);
        });
      },
      py::arg("X"), py::arg("W"), py::arg("b"), py::arg("y"), py::kw_only(), py::arg("rows") = py::none(),
      py::arg("x_scale") = 1.0f, py::arg("mean") = true, py::arg("label_smoothing") = 0.0f,
      py::arg("ignore_index") = py::none(), py::arg("row_weights") = py::none(),
      py::arg("class_weight") = py::none(), py::arg("z_loss") = 0.0f, py::arg("softcap") = 0.0f,
      py::arg("layout") = "DC",
      py::arg("want_lse") = false, py::arg("want_predictions") = false, py::arg("grad_weight") = true, py::arg("grad_input") = false,
      py::arg("naive") = false,
      "Large-vocabulary linear + cross-entropy in class tiles, never holding the B x C logits (naive=True: "
      "the plain-loop reference). Returns (loss_sum, counted rows, their class-weight sum, correct, row_loss, lse, "
      "grad_W, grad_b, grad_X, z_loss_sum, row_z_loss, row_argmax, row_correct); loss_sum is the cross-entropy's (without the "
      "z-loss), row_loss includes the z-loss; mean scales the cross-entropy's gradients by 1 / the "
      "class-weight sum (the counted rows without class weights), the z-loss's by 1 / counted rows."); 
  m.def("amx_product", &amx_product, py::arg("A"), py::arg("B"), py::kw_only(), py::arg("a_transposed") = false,
        py::arg("b_transposed") = false,
        "A . B (float32) by the large-vocabulary kernel's AMX products; A given as A^T's storage when "
        "a_transposed, B likewise. None where they refuse the values or the depth, or AMX is not used here.");
  m.def(
      "tiled_plan",
      [](int64_t B, int64_t C, int64_t D) {
        require_plan_size(B, "B");
        require_plan_size(C, "C");
        require_plan_size(D, "D");
        const large_vocab::TiledPlan plan(B, C, D);
        py::dict result;
        result["row_block"] = plan.rows_per_block;
        result["row_unit"] = large_vocab::row_unit(C, D);
        result["class_block"] = large_vocab::kClassBlock;
        result["weight_class_block"] = plan.weight_classes;
        result["class_groups"] = plan.groups;
        result["feature_slices"] = plan.feature_slices;
        result["gradient_depth_block"] = large_vocab::kGradientDepthBlock;
        result["logits_bytes"] = plan.logits_bytes();
        result["micro_tile"] = py::make_tuple(gemm::kMicroRows, gemm::kMicroCols);
        return result;
      },
      py::arg("B"), py::arg("C"), py::arg("D"),
      "How the tiled kernel cuts a problem of B rows, C classes, D features (each in [1, 2^40]; row_block is "
      "a multiple of row_unit unless capped; logits_bytes: the logits kept at once, when dW or db is asked for).");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
