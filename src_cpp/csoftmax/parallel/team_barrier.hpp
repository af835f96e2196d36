// A barrier for the threads of one parallel region that spins briefly, then sleeps.
//
// The SGD epoch waits at one barrier per minibatch, hundreds per epoch. OpenMP's barrier follows the
// runtime's global wait policy: libgomp spins ~300,000 rounds by default, which is fast on an idle
// machine but holds a CPU that the thread being waited for may need on a busy one (two processes
// training at once took 915 ms per epoch instead of 21 ms). Changing that policy is the user's
// business (OMP_WAIT_POLICY, GOMP_SPINCOUNT), not a library's; so the epoch loop brings its own
// barrier: a short spin covers the usual wait of a few microseconds, then the thread sleeps on a
// futex and frees its CPU.
#pragma once

#include "csoftmax/variant.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>

#include "csoftmax/tuning.hpp"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#else
#include <thread>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace csoftmax::CSOFTMAX_VARIANT {

class TeamBarrier {
 public:
  // The number of threads that meet here: set it from the region itself (OpenMP may grant fewer
  // threads than asked for), before anyone waits.
  void set_team(int team) { team_ = team; }

  // Returns once all `team` threads have called wait() (for this round).
  void wait() {
    if (team_ == 1) return;
    const uint32_t round = round_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == team_ - 1) {
      arrived_.store(0, std::memory_order_relaxed);
      round_.fetch_add(1, std::memory_order_seq_cst);
      if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all();
      return;
    }
    const auto give_up = std::chrono::steady_clock::now() + kSpinTime;
    for (int spin = 1;; ++spin) {
      if (round_.load(std::memory_order_acquire) != round) return;
      pause();
      if (spin % 16 == 0 && std::chrono::steady_clock::now() > give_up) break;
    }
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    while (round_.load(std::memory_order_seq_cst) == round) sleep_while(round);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
  }

 private:
  // Longer than a balanced step's wait, far shorter than a scheduler time slice (measured: tuning.hpp).
  static constexpr std::chrono::microseconds kSpinTime = kBarrierSpinTime;

  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
  }

  // Sleep until round_ may have changed from `round` (returns at once if it already has).
  void sleep_while(uint32_t round) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&round_), FUTEX_WAIT_PRIVATE, round, nullptr, nullptr, 0);
#else
    (void)round;
    std::this_thread::yield();
#endif
  }

  void wake_all() {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&round_), FUTEX_WAKE_PRIVATE, team_, nullptr, nullptr, 0);
#endif
  }

  int team_ = 1;
  std::atomic<int> arrived_{0};
  std::atomic<uint32_t> round_{0};
  std::atomic<int> sleepers_{0};
};

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "the futex word is the atomic itself");

}  // namespace csoftmax::CSOFTMAX_VARIANT
