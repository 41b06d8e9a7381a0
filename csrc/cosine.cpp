#include "cosine.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "common.h"

namespace wsavkd {

namespace {

std::string row_name(int64_t row, const KeyTable* names) {
  std::string s = "embedding row " + std::to_string(row);
  if (names && row < int64_t(names->size())) s += " ('" + std::string(names->key(size_t(row))) + "')";
  return s;
}

// 16 independent float partial sums: the compiler vectorises them without -ffast-math, and the
// rounding error stays ~1e-7 relative for d = 512.
template <bool kMean>
inline float dot(const float* a, const float* b, const float* mean, int64_t d) {
  float acc[16] = {0.f};
  int64_t j = 0;
  for (; j + 16 <= d; j += 16) {
    for (int k = 0; k < 16; ++k) {
      const float x = kMean ? a[j + k] - mean[j + k] : a[j + k];
      const float y = kMean ? b[j + k] - mean[j + k] : b[j + k];
      acc[k] += x * y;
    }
  }
  for (; j < d; ++j) {
    const float x = kMean ? a[j] - mean[j] : a[j];
    const float y = kMean ? b[j] - mean[j] : b[j];
    acc[0] += x * y;
  }
  float s = 0.f;
  for (int k = 0; k < 16; ++k) s += acc[k];
  return s;
}

// The same dot product in double, for rows whose norms lie outside 2^-40..2^60 (kMaxInverseNorm and
// kMinInverseNorm below): products of any two finite floats and their sums stay finite and normal in double,
// so the cosine is right for embeddings of any magnitude.
inline double dot_double(const float* a, const float* b, const float* mean, int64_t d) {
  double s = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double x = mean ? double(a[j]) - double(mean[j]) : double(a[j]);
    const double y = mean ? double(b[j]) - double(mean[j]) : double(b[j]);
    s += x * y;
  }
  return s;
}

// Row norms for which the float dot product is right to float rounding: up to 2^60 no product or partial sum
// can overflow a float (|sum| <= |a| |b| <= 2^120), from 2^-40 on the products lost to float underflow are
// negligible against |a| |b|. Embeddings of usual magnitudes always take the float path (its scores are
// unchanged); others take dot_double (1e19 overflowed the float sum to inf, 1e-22 underflowed it to wrong
// scores).
const double kMaxInverseNorm = std::ldexp(1.0, 40);   // norm >= 2^-40
const double kMinInverseNorm = std::ldexp(1.0, -60);  // norm <= 2^60

inline bool float_safe(double inverse_norm) {
  return inverse_norm >= kMinInverseNorm && inverse_norm <= kMaxInverseNorm;
}

}  // namespace

std::vector<double> inverse_row_norms(const float* emb, int64_t n, int64_t d, const float* mean, const KeyTable* names,
                                      int num_threads) {
  std::vector<double> inv(size_t(n), 0.0);
  int64_t bad = std::numeric_limits<int64_t>::max();
  const int nt = thread_count(num_threads);
#ifdef WESPEAKER_AVKD_OPENMP
#pragma omp parallel for schedule(dynamic, 1024) num_threads(nt) reduction(min : bad)
#endif
  for (int64_t r = 0; r < n; ++r) {
    const float* row = emb + r * d;
    double ss = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double x = mean ? double(row[j]) - double(mean[j]) : double(row[j]);
      ss += x * x;
    }
    // NaN/Inf in the row propagate into ss; squares of finite floats cannot overflow a double.
    if (!std::isfinite(ss)) {
      bad = std::min(bad, r);
      continue;
    }
    inv[size_t(r)] = ss > 0.0 ? 1.0 / std::sqrt(ss) : 0.0;
  }
  (void)nt;
  if (bad != std::numeric_limits<int64_t>::max()) throw ScorerError(row_name(bad, names) + " contains NaN or Inf");
  return inv;
}

void cosine_scores(const float* emb, int64_t n, int64_t d, const float* mean, const int32_t* enroll,
                   const int32_t* test, int64_t m, float* out, const KeyTable* names, int num_threads) {
  if (d <= 0) throw ScorerError("embeddings have dimension 0");
  if (mean) {
    for (int64_t j = 0; j < d; ++j)
      if (!std::isfinite(mean[j])) throw ScorerError("the mean vector contains NaN or Inf");
  }
  for (int64_t i = 0; i < m; ++i) {
    if (enroll[i] < 0 || enroll[i] >= n || test[i] < 0 || test[i] >= n)
      throw ScorerError("trial " + std::to_string(i) + " refers to embedding row " +
                        std::to_string(enroll[i] < 0 || enroll[i] >= n ? enroll[i] : test[i]) + " outside [0, " +
                        std::to_string(n) + ")");
  }
  // One pass over the table for the norms; the scores then read each row once per trial and never need a
  // normalised copy of the table (which would double the peak memory).
  const std::vector<double> inv = inverse_row_norms(emb, n, d, mean, names, num_threads);
  // Memory-bound: each trial streams its test row from DRAM (the enrollment row is usually still cached,
  // lists being grouped by enrollment). Visiting an ungrouped list in enrollment order was measured slower
  // (the scattered index reads and score writes cost more than the saved row reads), so trials run in order.
  int64_t bad = std::numeric_limits<int64_t>::max();
  const int nt = thread_count(num_threads);
#ifdef WESPEAKER_AVKD_OPENMP
#pragma omp parallel for schedule(dynamic, 16384) num_threads(nt) reduction(min : bad)
#endif
  for (int64_t i = 0; i < m; ++i) {
    const double ie = inv[size_t(enroll[i])], it = inv[size_t(test[i])];
    if (ie == 0.0 || it == 0.0) {
      bad = std::min(bad, i);
      out[i] = 0.f;
      continue;
    }
    const float* a = emb + int64_t(enroll[i]) * d;
    const float* b = emb + int64_t(test[i]) * d;
    if (!float_safe(ie) || !float_safe(it)) {
      out[i] = float(dot_double(a, b, mean, d) * ie * it);
      continue;
    }
    const float s = mean ? dot<true>(a, b, mean, d) : dot<false>(a, b, nullptr, d);
    out[i] = float(double(s) * ie * it);
  }
  (void)nt;
  if (bad != std::numeric_limits<int64_t>::max()) {
    const int64_t row = inv[size_t(enroll[bad])] == 0.0 ? enroll[bad] : test[bad];
    throw ScorerError("trial " + std::to_string(bad) + ": " + row_name(row, names) + " has zero norm" +
                      (mean ? " after mean subtraction" : "") + "; its cosine is undefined");
  }
}

}  // namespace wsavkd
