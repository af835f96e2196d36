// csoftmax._core.tuning: the running machine's facts and the blocks derived from them;
// derive_tuning: the same rules on facts given (for tests: both project CPUs, absurd reports).
#include "csoftmax/variant.hpp"

#include <pybind11/pybind11.h>

#include <cstdint>

#include "csoftmax/machine.hpp"
#include "csoftmax/tuning.hpp"

namespace csoftmax::CSOFTMAX_VARIANT::bindings {

namespace py = pybind11;

namespace {

py::dict describe(const MachineFacts& facts, const Tuning& t) {
  py::dict machine, source;
  const std::pair<const char*, const Fact*> named[] = {{"l1d", &facts.l1d},
                                                       {"l2", &facts.l2},
                                                       {"l3", &facts.l3},
                                                       {"line", &facts.line},
                                                       {"processors", &facts.processors}};
  for (const auto& [name, fact] : named) {
    machine[name] = fact->value;
    source[name] = fact->source;
  }
  py::dict result;
  result["machine"] = machine;
  result["source"] = source;
  result["micro_tile"] = py::make_tuple(gemm::kMicroRows, gemm::kMicroCols);
  result["block_k"] = t.block_k;
  result["block_n"] = t.block_n;
  result["block_m"] = t.block_m;
  result["max_row_block"] = t.max_row_block;
  result["min_row_block"] = large_vocab::kMinRowBlock;
  result["logits_floor_bytes"] = large_vocab::kLogitsFloorBytes;
  result["logits_cap_bytes"] = large_vocab::kLogitsCapBytes;
  return result;
}

}  // namespace

void register_tuning(py::module_& m) {
  m.def(
      "tuning", [] { return describe(machine_facts(), tuning()); },
      "The running machine's facts (machine: l1d, l2, l3, line in bytes, processors; source: where each was "
      "read) and what the kernels derive from them once per process: the sgemm's cache blocks (block_k, "
      "block_n, block_m), the large-vocabulary chunk's rows (min_row_block, max_row_block) and its logits "
      "bounds (logits_floor_bytes, logits_cap_bytes).");
  m.def(
      "derive_tuning",
      [](int64_t l1d, int64_t l2, int64_t l3, int64_t line, int64_t processors) {
        const char* given = "given";
        const MachineFacts facts =
            validated(MachineFacts{{l1d, given}, {l2, given}, {l3, given}, {line, given}, {processors, given}});
        return describe(facts, derive_tuning(facts));
      },
      py::arg("l1d"), py::arg("l2"), py::arg("l3"), py::arg("line"), py::arg("processors"),
      "tuning() for a machine with these facts (bytes; processors a count): the rules the kernels apply at "
      "start, on any values (implausible ones are replaced by the Zen 5 defaults, source 'Zen 5 default').");
}

}  // namespace csoftmax::CSOFTMAX_VARIANT::bindings
