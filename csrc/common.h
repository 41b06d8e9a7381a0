// Shared pieces of the scorer core: the error type every entry point throws on bad input.
#pragma once

#include <stdexcept>
#include <string>

#ifdef WESPEAKER_AVKD_OPENMP
#include <omp.h>
#endif

namespace wsavkd {

// Bad input (file, line, key or value named in the message). The bindings map it to a Python exception.
class ScorerError : public std::runtime_error {
 public:
  explicit ScorerError(const std::string& msg) : std::runtime_error(msg) {}
};

// Threads to use: `requested` when positive, else OpenMP's default (1 in a build without OpenMP).
inline int thread_count(int requested) {
#ifdef WESPEAKER_AVKD_OPENMP
  return requested > 0 ? requested : omp_get_max_threads();
#else
  (void)requested;
  return 1;
#endif
}

}  // namespace wsavkd
