// Whether this process may run Intel AMX tile instructions (AMX-TILE, AMX-BF16, with AVX512-FP16 and
// AVX512-BF16), and if not, why.
//
// AMX is not an instruction-set variant of its own: the AVX-512 variant (and a native build) carries
// the AMX forward of uint8 rows (kernels/amx_logits.hpp) and the large-vocabulary products
// (kernels/amx_gemm.hpp) and uses them where this says it may. Three things must hold, and are
// checked in this order: the CPU reports AMX-TILE and AMX-BF16 (cpuid leaf 7; AVX512-FP16 too, which
// converts the pixels, and AVX512-BF16, which splits float32 into bf16), the OS saves the tile state
// (XCR0 bits 17 and 18), and Linux grants this process the tile data (arch_prctl
// ARCH_REQ_XCOMP_PERM, which Linux 5.16 and later ask for before the first use).
// CSOFTMAX_AMX=0 turns it off, so that the AVX-512 path can be tested and measured on a CPU with AMX.
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdlib>
#include <string>

#if defined(__x86_64__) && defined(__linux__) && defined(__AVX512BW__) && \
    (defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 11))
#define CSOFTMAX_AMX_COMPILED 1
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#define CSOFTMAX_AMX_COMPILED 0
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

struct AmxSupport {
  bool usable;
  std::string reason;  // what is used, or why not
  bool bad_setting;    // CSOFTMAX_AMX holds something other than 0 or 1
};

namespace detail {

#if CSOFTMAX_AMX_COMPILED
inline AmxSupport probe_amx_hardware() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  // EDX: AMX-BF16 (bit 22), AVX512-FP16 (23, for the pixels' conversion), AMX-TILE (24)
  constexpr unsigned kNeeded = (1u << 22) | (1u << 23) | (1u << 24);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || (d & kNeeded) != kNeeded)
    return {false, "this CPU lacks AMX-TILE, AMX-BF16 or AVX512-FP16", false};
  // EAX of subleaf 1: AVX512-BF16 (bit 5), which splits float32 into bf16 parts (kernels/amx_gemm.hpp)
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5)))
    return {false, "this CPU lacks AVX512-BF16", false};
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & (1u << 27)))  // OSXSAVE: xgetbv may be used
    return {false, "the OS has not enabled XSAVE", false};
  unsigned xcr0 = 0, xcr0_high = 0;
  __asm__ volatile("xgetbv" : "=a"(xcr0), "=d"(xcr0_high) : "c"(0));
  constexpr unsigned kTileState = (1u << 17) | (1u << 18);  // XTILECFG, XTILEDATA
  if ((xcr0 & kTileState) != kTileState) return {false, "the OS does not save the AMX tile state (XCR0)", false};
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  if (syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) != 0)
    return {false, "Linux refused this process the AMX tile data (arch_prctl ARCH_REQ_XCOMP_PERM)", false};
  return {true, "AMX-BF16 tiles, for the forward and grad_W of uint8 rows and the large-vocabulary GEMMs", false};
}
#endif

inline AmxSupport probe_amx() {
  const char* env = std::getenv("CSOFTMAX_AMX");
  const std::string setting = env ? env : "";
  if (!setting.empty() && setting != "0" && setting != "1")
    return {false, "CSOFTMAX_AMX=" + setting + ": takes 0 (off) or 1 (on where the machine runs it)", true};
#if CSOFTMAX_AMX_COMPILED
  if (setting == "0") return {false, "off (CSOFTMAX_AMX=0)", false};
  return probe_amx_hardware();
#else
  return {false, "not compiled into this variant (it needs AVX-512 on x86-64 Linux)", false};
#endif
}

}  // namespace detail

// Read once per process, at first use (module init asks, so a bad CSOFTMAX_AMX fails the import).
inline const AmxSupport& amx_support() {
  static const AmxSupport support = detail::probe_amx();
  return support;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
