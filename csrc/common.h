// Shared pieces of the scorer core: the error type every entry point throws on bad input, thread counts.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef WESPEAKER_AVKD_OPENMP
#include <omp.h>
#endif

namespace wsavkd {

// Bad input (file, line, key or value named in the message). The bindings map it to a Python exception.
class ScorerError : public std::runtime_error {
 public:
  explicit ScorerError(const std::string& msg) : std::runtime_error(msg) {}
};

// The most threads one call uses: OpenMP's thread limit (OMP_THREAD_LIMIT) and kThreadsPerCpu per CPU the
// process may run on (at least kMinThreadCap). Far more threads than that can exhaust the process's stack
// space or thread quota, and libgomp then kills the process; the memory-bound loops here gain nothing from them.
// 1 in a build without OpenMP.
constexpr int kThreadsPerCpu = 4;
constexpr int kMinThreadCap = 8;
int max_threads();

// Whether this build runs its parallel loops on OpenMP threads (the module's `openmp` attribute).
#ifdef WESPEAKER_AVKD_OPENMP
constexpr bool kOpenMP = true;
#else
constexpr bool kOpenMP = false;
#endif

// OpenMP's default thread count (OMP_NUM_THREADS or the CPU count), uncapped; 1 without OpenMP.
int default_threads();

// Threads for a call asking for `requested` (0: default_threads()), capped at max_threads(); when capped,
// `why` (nullable) gets a sentence saying so. Throws ScorerError on a negative count.
int capped_threads(int64_t requested, std::string* why);

// capped_threads() without the sentence: what every parallel loop of the core runs with.
inline int thread_count(int64_t requested) { return capped_threads(requested, nullptr); }

template <class T>
void append(std::vector<T>& dst, const std::vector<T>& src) {
  dst.insert(dst.end(), src.begin(), src.end());
}

}  // namespace wsavkd
