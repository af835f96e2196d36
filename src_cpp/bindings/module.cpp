// csoftmax._core: the compiled kernels, in one variant per instruction set (CMakeLists.txt). Module
// init picks the variant to run, the highest this CPU runs unless CSOFTMAX_ISA names one, and
// registers that variant's functions only.
//
// This file runs before anything has looked at the CPU, so it is compiled with the lowest variant's
// flags and includes no kernel header: nothing here may use an instruction the CPU might lack.
#include <pybind11/pybind11.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace py = pybind11;

#define CSOFTMAX_DECLARE_VARIANT(variant)                                  \
  namespace csoftmax::variant::bindings {                                 \
  void register_kernels(py::module_& m, const py::dict& dispatch);        \
  }
#ifdef CSOFTMAX_HAS_VARIANT_NATIVE
CSOFTMAX_DECLARE_VARIANT(native)
#endif
#ifdef CSOFTMAX_HAS_VARIANT_BASELINE
CSOFTMAX_DECLARE_VARIANT(baseline)
#endif
#ifdef CSOFTMAX_HAS_VARIANT_AVX2
CSOFTMAX_DECLARE_VARIANT(avx2)
#endif
#ifdef CSOFTMAX_HAS_VARIANT_AVX512
CSOFTMAX_DECLARE_VARIANT(avx512)
#endif

namespace {

// Every name CSOFTMAX_ISA accepts, whichever of them this build has.
constexpr const char* kVariantNames = "baseline, avx2, avx512, native";

using Features = std::vector<std::string>;

// __builtin_cpu_supports takes string literals only, hence a macro. It reports a feature only when
// the OS saves its registers too (XCR0), which is what running it takes.
#define CSOFTMAX_REQUIRE(feature) \
  if (!__builtin_cpu_supports(feature)) missing.push_back(feature)

// What the CPU lacks of what -march=x86-64-v3 lets the compiler use (the avx2 variant).
Features missing_for_x86_64_v3() {
  Features missing;
#if defined(__x86_64__)
  __builtin_cpu_init();
  CSOFTMAX_REQUIRE("sse3");
  CSOFTMAX_REQUIRE("ssse3");
  CSOFTMAX_REQUIRE("sse4.1");
  CSOFTMAX_REQUIRE("sse4.2");
  CSOFTMAX_REQUIRE("popcnt");
  CSOFTMAX_REQUIRE("avx");
  CSOFTMAX_REQUIRE("avx2");
  CSOFTMAX_REQUIRE("fma");
  CSOFTMAX_REQUIRE("bmi");
  CSOFTMAX_REQUIRE("bmi2");
  CSOFTMAX_REQUIRE("f16c");
  CSOFTMAX_REQUIRE("lzcnt");
  CSOFTMAX_REQUIRE("movbe");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  // GCC's own test of the whole level (also CMPXCHG16B, LAHF, XSAVE): the final word.
  if (missing.empty() && !__builtin_cpu_supports("x86-64-v3")) missing.push_back("x86-64-v3");
#endif
#endif
  return missing;
}

// What the CPU lacks of what -march=x86-64-v4 lets the compiler use (the avx512 variant).
Features missing_for_x86_64_v4() {
  Features missing = missing_for_x86_64_v3();
#if defined(__x86_64__)
  CSOFTMAX_REQUIRE("avx512f");
  CSOFTMAX_REQUIRE("avx512bw");
  CSOFTMAX_REQUIRE("avx512vl");
  CSOFTMAX_REQUIRE("avx512dq");
  CSOFTMAX_REQUIRE("avx512cd");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  if (missing.empty() && !__builtin_cpu_supports("x86-64-v4")) missing.push_back("x86-64-v4");
#endif
#endif
  return missing;
}

struct Variant {
  const char* name;
  void (*register_kernels)(py::module_&, const py::dict&);
  Features missing;  // what this CPU lacks to run it
};

// Lowest first. The native variant needs nothing checked here: csoftmax/_isa.py has compared its
// compiler's instruction sets with the CPU before importing _core. Nor does baseline: x86-64 is SSE2.
std::vector<Variant> compiled_variants() {
  std::vector<Variant> variants;
#ifdef CSOFTMAX_HAS_VARIANT_NATIVE
  variants.push_back({"native", &csoftmax::native::bindings::register_kernels, {}});
#endif
#ifdef CSOFTMAX_HAS_VARIANT_BASELINE
  variants.push_back({"baseline", &csoftmax::baseline::bindings::register_kernels, {}});
#endif
#ifdef CSOFTMAX_HAS_VARIANT_AVX2
  variants.push_back({"avx2", &csoftmax::avx2::bindings::register_kernels, missing_for_x86_64_v3()});
#endif
#ifdef CSOFTMAX_HAS_VARIANT_AVX512
  variants.push_back({"avx512", &csoftmax::avx512::bindings::register_kernels, missing_for_x86_64_v4()});
#endif
  return variants;
}

std::string joined(const std::vector<std::string>& words) {
  std::string text;
  for (const auto& word : words) text += (text.empty() ? "" : ", ") + word;
  return text;
}

bool is_variant_name(const std::string& name) {
  return name == "baseline" || name == "avx2" || name == "avx512" || name == "native";
}

// The variant CSOFTMAX_ISA names (`forced`), or the highest this CPU runs when it is empty; an
// ImportError says why a forced one cannot be had.
const Variant& choose(const std::vector<Variant>& variants, const std::string& forced) {
  if (forced.empty()) {
    const Variant* best = &variants.front();
    for (const auto& variant : variants)
      if (variant.missing.empty()) best = &variant;
    return *best;
  }
  const std::string setting = "CSOFTMAX_ISA=" + forced + ": ";
  std::vector<std::string> compiled;
  for (const auto& variant : variants) {
    if (variant.name != forced) {
      compiled.push_back(variant.name);
      continue;
    }
    if (!variant.missing.empty())
      throw py::import_error(setting + "this CPU cannot run the " + forced + " variant of csoftmax; it lacks " +
                             joined(variant.missing) + ". Unset CSOFTMAX_ISA to use the best variant it runs.");
    return variant;
  }
  if (!is_variant_name(forced))
    throw py::import_error(setting + "unknown instruction-set variant; CSOFTMAX_ISA takes one of " + kVariantNames +
                           " (empty or unset: the best this CPU runs)");
  throw py::import_error(setting + "this build of csoftmax has no " + forced + " variant; it was compiled with " +
                         joined(compiled) + " (the portable build, -Ccmake.define.CSOFTMAX_NATIVE=OFF, " +
                         "has baseline, avx2 and avx512 on x86-64)");
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "csoftmax's C++ kernels (use the csoftmax package, which validates arguments first)";
  const std::vector<Variant> variants = compiled_variants();
  const char* setting = std::getenv("CSOFTMAX_ISA");
  const std::string forced = setting ? setting : "";
  const Variant& chosen = choose(variants, forced);

  py::list compiled, runnable;
  for (const auto& variant : variants) {
    compiled.append(variant.name);
    if (variant.missing.empty()) runnable.append(variant.name);
  }
  py::dict dispatch;
  dispatch["variant"] = chosen.name;
  dispatch["variants_compiled"] = py::tuple(compiled);
  dispatch["variants_runnable"] = py::tuple(runnable);
  dispatch["variant_forced"] = forced.empty() ? py::object(py::none()) : py::object(py::str(forced));
  chosen.register_kernels(m, dispatch);
}
