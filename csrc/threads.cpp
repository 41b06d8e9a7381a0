#include <algorithm>
#include <string>

#include "common.h"

namespace wsavkd {

int max_threads() {
#ifdef WESPEAKER_AVKD_OPENMP
  const int per_cpu = std::max(kMinThreadCap, kThreadsPerCpu * std::max(1, omp_get_num_procs()));
  return std::max(1, std::min(per_cpu, omp_get_thread_limit()));
#else
  return 1;
#endif
}

int default_threads() {
#ifdef WESPEAKER_AVKD_OPENMP
  return std::max(1, omp_get_max_threads());
#else
  return 1;
#endif
}

int capped_threads(int64_t requested, std::string* why) {
  if (requested < 0)
    throw ScorerError("num_threads must be >= 0 (0: OpenMP's default), got " + std::to_string(requested));
#ifdef WESPEAKER_AVKD_OPENMP
  const int64_t want = requested > 0 ? requested : default_threads();
  const int cap = max_threads();
  if (want <= cap) return int(want);
  if (why)
    *why = (requested > 0 ? "num_threads=" + std::to_string(requested)
                          : "OpenMP's default of " + std::to_string(want) + " threads (OMP_NUM_THREADS)") +
           " exceeds what the scorer uses (at most " + std::to_string(cap) + ": " + std::to_string(kThreadsPerCpu) +
           " per CPU, within OMP_THREAD_LIMIT); using " + std::to_string(cap);
  return cap;
#else
  return 1;  // a build without OpenMP runs on one thread whatever is asked
#endif
}

}  // namespace wsavkd
