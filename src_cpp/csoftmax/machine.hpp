// What the running machine reports about itself: cache sizes, cache line, usable processors.
//
// Read once per process (machine_facts()), from sysconf (glibc answers from cpuid), else from
// /sys/devices/system/cpu/cpu0/cache, else the AMD Zen 5 the constants were first measured on
// (kZen5). Every value read is checked (validated()): 0, -1 (not reported) and sizes no CPU has fall
// back, and the fact says where it came from, so `csoftmax info` shows what the blocks rest on.
// The build's vector width and register count are not facts of the machine but of the variant
// (compile time, tuning.hpp).
#pragma once

#include "csoftmax/variant.hpp"

#include <cstdint>
#include <fstream>
#include <string>

#if defined(__linux__)
#include <sched.h>
#endif
#include <unistd.h>

namespace csoftmax::CSOFTMAX_VARIANT {

// One fact and where it came from: "sysconf", "sysfs", "Zen 5 default" (nothing valid reported), or
// "given" (derive_tuning's arguments).
struct Fact {
  int64_t value;
  const char* source;
};

struct MachineFacts {
  Fact l1d;         // bytes of L1 data cache per core
  Fact l2;          // bytes of L2 per core
  Fact l3;          // bytes of L3 (shared); 0 when the CPU has none
  Fact line;        // bytes of a cache line
  Fact processors;  // processors this process may run on
};

// The development machine's (DESIGN.md: AMD EPYC Zen 5, 2 vCPUs): the values the blocks were first
// measured with, used only for what the running machine does not report.
namespace zen5 {
inline constexpr int64_t kL1d = int64_t{48} << 10;
inline constexpr int64_t kL2 = int64_t{1} << 20;
inline constexpr int64_t kL3 = int64_t{32} << 20;
inline constexpr int64_t kLine = 64;
inline constexpr int64_t kProcessors = 2;
}  // namespace zen5

// Sizes a cache of that level has on some CPU (with a wide margin); outside them a report is wrong.
inline bool plausible_l1d(int64_t bytes) { return bytes >= (int64_t{4} << 10) && bytes <= (int64_t{4} << 20); }
inline bool plausible_l2(int64_t bytes) { return bytes >= (int64_t{64} << 10) && bytes <= (int64_t{256} << 20); }
inline bool plausible_l3(int64_t bytes) { return bytes == 0 || (bytes >= (int64_t{256} << 10) && bytes <= (int64_t{64} << 30)); }
inline bool plausible_line(int64_t bytes) { return bytes >= 16 && bytes <= 1024 && (bytes & (bytes - 1)) == 0; }
inline bool plausible_processors(int64_t n) { return n >= 1 && n <= (int64_t{1} << 20); }

// Each fact as given if plausible, else the Zen 5 value (source "Zen 5 default").
inline MachineFacts validated(const MachineFacts& raw) {
  auto check = [](Fact f, bool ok, int64_t fallback) { return ok ? f : Fact{fallback, "Zen 5 default"}; };
  return MachineFacts{
      check(raw.l1d, plausible_l1d(raw.l1d.value), zen5::kL1d),
      check(raw.l2, plausible_l2(raw.l2.value), zen5::kL2),
      check(raw.l3, plausible_l3(raw.l3.value), zen5::kL3),
      check(raw.line, plausible_line(raw.line.value), zen5::kLine),
      check(raw.processors, plausible_processors(raw.processors.value), zen5::kProcessors),
  };
}

namespace detail {

inline int64_t sysconf_value(int name) {
  const long v = ::sysconf(name);
  return v > 0 ? static_cast<int64_t>(v) : 0;
}

// The first line of a sysfs file, "" when unreadable.
inline std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "48K", "2048K", "32M" -> bytes; 0 when not a size.
inline int64_t parse_size(const std::string& text) {
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(text, &used);
  } catch (...) {
    return 0;
  }
  if (n <= 0 || n > (int64_t{1} << 40)) return 0;
  const std::string unit = text.substr(used);
  if (unit.empty()) return n;
  if (unit == "K") return n << 10;
  if (unit == "M") return n << 20;
  if (unit == "G") return n << 30;
  return 0;
}

// A cache of cpu0 from /sys/devices/system/cpu/cpu0/cache/index*: its size (or line size) at `level`
// for a data or unified cache; 0 when none is listed.
inline int64_t sysfs_cache(int level, bool line_size) {
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    const std::string lvl = read_line(dir + "level");
    if (lvl.empty()) break;
    const std::string type = read_line(dir + "type");
    if (lvl != std::to_string(level) || (type != "Data" && type != "Unified")) continue;
    return parse_size(read_line(dir + (line_size ? "coherency_line_size" : "size")));
  }
  return 0;
}

// sysconf's answer if plausible, else sysfs's (either may be missing: 0).
inline Fact first_plausible(int64_t from_sysconf, int64_t from_sysfs, bool (*plausible)(int64_t)) {
  if (from_sysconf != 0 && plausible(from_sysconf)) return {from_sysconf, "sysconf"};
  if (from_sysfs != 0 && plausible(from_sysfs)) return {from_sysfs, "sysfs"};
  return {-1, "none"};  // validated() replaces it
}

// The processors this process may run on (its affinity mask), else those online.
inline Fact usable_processors() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return {CPU_COUNT(&set), "sched_getaffinity"};
#endif
  return {sysconf_value(_SC_NPROCESSORS_ONLN), "sysconf"};
}

inline MachineFacts read_machine_facts() {
  int64_t l1d = 0, l2 = 0, l3 = 0, line = 0;
#if defined(_SC_LEVEL1_DCACHE_SIZE)
  l1d = sysconf_value(_SC_LEVEL1_DCACHE_SIZE);
  l2 = sysconf_value(_SC_LEVEL2_CACHE_SIZE);
  l3 = sysconf_value(_SC_LEVEL3_CACHE_SIZE);
  line = sysconf_value(_SC_LEVEL1_DCACHE_LINESIZE);
#endif
  const bool sysfs_has_l2 = sysfs_cache(2, false) != 0;
  MachineFacts raw{
      first_plausible(l1d, sysfs_cache(1, false), plausible_l1d),
      first_plausible(l2, sysfs_cache(2, false), plausible_l2),
      // a CPU without L3: sysconf says 0, and sysfs lists levels 1 and 2 only
      first_plausible(l3, sysfs_cache(3, false), [](int64_t b) { return b > 0 && plausible_l3(b); }),
      first_plausible(line, sysfs_cache(1, true), plausible_line),
      usable_processors(),
  };
  if (raw.l3.value < 0 && l3 == 0 && sysfs_has_l2 && sysfs_cache(3, false) == 0) raw.l3 = {0, "sysfs (no L3)"};
  return validated(raw);
}

}  // namespace detail

// The running machine's facts, read at first use (thread-safe: a function-local static).
inline const MachineFacts& machine_facts() {
  static const MachineFacts facts = detail::read_machine_facts();
  return facts;
}

}  // namespace csoftmax::CSOFTMAX_VARIANT
