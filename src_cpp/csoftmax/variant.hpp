// The instruction-set variant this translation unit is compiled for.
//
// A portable build compiles every kernel and binding source several times, once per instruction set
// (baseline SSE2, AVX2+FMA, AVX-512; CMakeLists.txt), and csoftmax._core picks one at import
// (bindings/module.cpp). Each copy must have names of its own: an inline function compiled with
// AVX-512 that shared a name with its SSE2 twin could be the one the linker keeps for both. So all of
// csoftmax's C++ lives in csoftmax::CSOFTMAX_VARIANT, an inline namespace: code keeps writing
// csoftmax::simd::load, and the symbol is csoftmax::avx2::simd::load in the AVX2 copy.
#pragma once

#ifndef CSOFTMAX_VARIANT
#define CSOFTMAX_VARIANT native  // a single-variant build (-march=native, or one set of flags)
#endif

namespace csoftmax {
inline namespace CSOFTMAX_VARIANT {}
}  // namespace csoftmax
