// csoftmax._core: what was compiled in (compiler, flags, SIMD, OpenMP; the running variant's), which
// variant runs, whether it uses AMX, and the thread setting.
#include "csoftmax/variant.hpp"

#include <stdexcept>
#include <string>

#include "bindings/array_checks.hpp"
#include "csoftmax/amx_support.hpp"
#include "csoftmax/vnni_support.hpp"
#include "csoftmax/kernels/peak_probe.hpp"
#include "csoftmax/simd/vector.hpp"
#include "csoftmax/parallel/threads.hpp"
#include "csoftmax/tuning.hpp"

#ifndef CSOFTMAX_COMPILER
#define CSOFTMAX_COMPILER "unknown"
#endif
#ifndef CSOFTMAX_CXX_FLAGS
#define CSOFTMAX_CXX_FLAGS "unknown"
#endif
#ifndef CSOFTMAX_BUILD_NATIVE
#define CSOFTMAX_BUILD_NATIVE 0
#endif

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace {

py::dict cpu_features() {
  py::dict features;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  features["sse2"] = bool(__builtin_cpu_supports("sse2"));
  features["avx"] = bool(__builtin_cpu_supports("avx"));
  features["avx2"] = bool(__builtin_cpu_supports("avx2"));
  features["fma"] = bool(__builtin_cpu_supports("fma"));
  features["avx512f"] = bool(__builtin_cpu_supports("avx512f"));
  features["avx512bw"] = bool(__builtin_cpu_supports("avx512bw"));
  features["avx512vl"] = bool(__builtin_cpu_supports("avx512vl"));
#endif
  return features;
}

}  // namespace

// `dispatch`: variant, variants_compiled, variants_runnable, variant_forced (bindings/module.cpp).
void register_build_info(py::module_& m, const py::dict& dispatch) {
  if (amx_support().bad_setting) throw py::import_error(amx_support().reason);
  if (vnni_support().bad_setting) throw py::import_error(vnni_support().reason);
  m.def("build_info", [dispatch] {
    py::dict info;
    for (auto item : dispatch) info[item.first] = item.second;
    info["compiler"] = CSOFTMAX_COMPILER;
    info["cxx_flags"] = CSOFTMAX_CXX_FLAGS;
    info["native"] = bool(CSOFTMAX_BUILD_NATIVE);
    info["simd"] = simd::kIsaName;
    info["simd_width"] = simd::kWidth;
    info["tile"] = py::make_tuple(kRowTile, kClassTile, kGradChunkTile, kGradClassTile);
    info["openmp"] = kOpenMP;
    info["available_threads"] = available_threads();
    info["max_threads"] = max_threads();
    info["cpu_features"] = cpu_features();
    info["amx"] = amx_support().usable;
    info["amx_reason"] = amx_support().reason;
    info["vnni"] = vnni_support().usable;
    info["vnni_reason"] = vnni_support().reason;
    return info;
  });
  m.def(
      "peak_fma_flops",
      [](int threads, int64_t iterations, int repeats) {
        if (threads < 1 || threads > max_threads() || iterations < 1 || repeats < 1)
          throw py::value_error("peak_fma_flops: threads must be in [1, " + std::to_string(max_threads()) +
                                "], iterations and repeats positive");
        PeakFlops peak{};
        {
          py::gil_scoped_release release;
          peak = peak_fma_flops(threads, iterations, repeats);
        }
        return py::make_tuple(peak.flops, peak.threads);
      },
      py::arg("threads"), py::arg("iterations") = 2000000, py::arg("repeats") = 5,
      "Measured fp32 FMA rate of up to `threads` threads running independent FMA chains at the build's vector "
      "width: the machine's peak, best of `repeats`. Returns (FLOP/s, threads that ran): a serial build, or "
      "OMP_THREAD_LIMIT, runs fewer than asked.");
  m.def("get_num_threads", &num_threads, "Threads the kernels use.");
  m.def("max_threads", &max_threads, "The most threads set_num_threads accepts (4 per processor, at least 64).");
  m.def(
      "set_num_threads",
      [](int64_t n) {
        if (n < 0 || n > max_threads())
          throw py::value_error("set_num_threads: expected 0 (the default) or a thread count of at most " +
                                std::to_string(max_threads()) + " (4 per processor, at least 64), got " +
                                std::to_string(n));
        requested_threads().store(static_cast<int>(n), std::memory_order_relaxed);
      },
      py::arg("n"), "Threads the kernels use; 0 restores the default (OpenMP's, i.e. OMP_NUM_THREADS or the cores).");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
