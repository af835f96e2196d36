// Whether this process may run AVX512-VNNI integer dot products, and if not, why.
//
// Like AMX (amx_support.hpp), VNNI is not an instruction-set variant of its own: the AVX-512 variant
// (and a native build) carries the integer argmax of uint8 rows (kernels/vnni_argmax.hpp) and uses it
// where this says it may. x86-64-v4, the AVX-512 variant's level, does not include VNNI (Skylake-SP
// has AVX-512 without it), so the CPU is asked: cpuid leaf 7 reports AVX512-F, DQ, BW and VL (EBX) and
// AVX512-VNNI (ECX), and XCR0 says the OS saves the 512-bit state. CSOFTMAX_VNNI=0 turns it off, so
// that the float32 forward can be tested and measured on a CPU with VNNI. Where AMX is used, its
// tiles give the labels instead (every CPU with AMX has VNNI; which is faster there is not measured).
// The switch is read as
// amx_support.hpp reads CSOFTMAX_AMX, in a copy of that code rather than a helper both call: moving
// AMX's into a shared helper changed GCC's inlining in register_tiled_linear_cross_entropy.cpp enough
// to leave the AVX-512 variant's copy of a pybind11 helper as the only one in the binary, which
// tests/test_dispatch.py rightly refuses.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdlib>
#include <string>

#include "csoftmax/amx_support.hpp"

#if defined(__x86_64__) && defined(__AVX512BW__) && (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 9))
#define CSOFTMAX_VNNI_COMPILED 1
#include <cpuid.h>
#else
#define CSOFTMAX_VNNI_COMPILED 0
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

struct VnniSupport {
  bool usable;
  std::string reason;  // what is used, or why not
  bool bad_setting;    // CSOFTMAX_VNNI holds something other than 0 or 1
};

namespace detail {

#if CSOFTMAX_VNNI_COMPILED
inline VnniSupport probe_vnni_hardware() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  constexpr unsigned kAvx512 = (1u << 16) | (1u << 17) | (1u << 30) | (1u << 31);  // EBX: AVX512-F, DQ, BW, VL
  constexpr unsigned kVnni = 1u << 11;  // ECX: AVX512-VNNI
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (b & kAvx512) != kAvx512 || !(c & kVnni))
    return {false, "this CPU lacks AVX512-VNNI", false};
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))  // OSXSAVE: xgetbv may be used
    return {false, "the OS has not enabled XSAVE", false};
  unsigned xcr0 = 0, xcr0_high = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
  constexpr unsigned kZmmState = 0xe6;  // SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31
  if ((xcr0 & kZmmState) != kZmmState) return {false, "the OS does not save the AVX-512 state (XCR0)", false};
  return {true, "AVX512-VNNI int16 dot products, for the predicted labels of uint8 rows", false};
}
#endif

inline VnniSupport probe_vnni() {
  const char* env = std::getenv("CSOFTMAX_VNNI");
  const std::string setting = env ? env : "";
  if (!setting.empty() && setting != "0" && setting != "1")
    return {false, "CSOFTMAX_VNNI=" + setting + ": takes 0 (off) or 1 (on where the machine runs it)", true};
#if CSOFTMAX_VNNI_COMPILED
  if (setting == "0") return {false, "off (CSOFTMAX_VNNI=0)", false};
  if (amx_support().usable)  // the tiles run the whole forward of uint8 rows (kernels/amx_logits.hpp)
    return {false, "AMX tiles give the labels of uint8 rows here (CSOFTMAX_AMX=0 leaves them to VNNI)", false};
  return probe_vnni_hardware();
#else
  return {false, "not compiled into this variant (it needs AVX-512 on x86-64)", false};
#endif
}

}  // namespace detail

// Read once per process, at first use (module init asks, so a bad CSOFTMAX_VNNI fails the import).
inline const VnniSupport& vnni_support() {
  static const VnniSupport support = detail::probe_vnni();
  return support;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
