#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common.h"
#include "sorted_scores.h"

namespace wsavkd {

namespace {

void validate(const float* scores, const int8_t* labels, int64_t n, int64_t* nt, int64_t* nn) {
  if (n <= 0) throw ScorerError("no trials to evaluate");
  *nt = *nn = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i]))
      throw ScorerError("the score of trial " + std::to_string(i) + " is " + (std::isnan(scores[i]) ? "NaN" : "Inf") +
                        " (scores must be finite)");
    if (labels[i] == 1) ++*nt;
    else if (labels[i] == 0) ++*nn;
    else
      throw ScorerError("trial " + std::to_string(i) + " has label " + std::to_string(int(labels[i])) +
                        (labels[i] == -1 ? " (unlabeled): unlabeled trials cannot be evaluated"
                                         : " (expected 1 target or 0 nontarget)"));
  }
  if (*nt == 0 || *nn == 0)
    throw ScorerError(std::string("the trials are all ") + (*nt == 0 ? "nontargets" : "targets") + " (" +
                      std::to_string(n) + " trials): EER and minDCF need both target and nontarget trials");
}

// minDCF (compute_min_dcf.py): every trial in stable sorted order is an operating point; first strict minimum.
void min_dcf(const std::vector<uint64_t>& items, const std::vector<double>& p_targets, double c_miss, double c_fa,
             Metrics& r) {
  const double dnt = double(r.num_target), dnn = double(r.num_nontarget);
  const size_t np = p_targets.size();
  std::vector<double> best(np, std::numeric_limits<double>::infinity());
  std::vector<double> best_thr(np, double(key_float(uint32_t(items[0] >> 32))));
  int64_t cum_t = 0, cum_n = 0;
  for (uint64_t v : items) {
    if (v & 1) ++cum_t;
    else ++cum_n;
    const double fnr = double(cum_t) / dnt;
    const double fpr = 1.0 - double(cum_n) / dnn;
    for (size_t k = 0; k < np; ++k) {
      const double p = p_targets[k];
      const double c_det = c_miss * fnr * p + c_fa * fpr * (1.0 - p);
      if (c_det < best[k]) {
        best[k] = c_det;
        best_thr[k] = double(key_float(uint32_t(v >> 32)));
      }
    }
  }
  for (size_t k = 0; k < np; ++k) {
    const double p = p_targets[k];
    r.min_dcf.push_back(best[k] / std::min(c_miss * p, c_fa * (1.0 - p)));
  }
  r.min_dcf_threshold = best_thr;
}

void check_costs(const std::vector<double>& p_targets, double c_miss, double c_fa) {
  for (double p : p_targets)
    if (!(p > 0.0 && p < 1.0)) throw ScorerError("p_target must lie in (0, 1), got " + std::to_string(p));
  if (!(c_miss > 0.0) || !(c_fa > 0.0) || !std::isfinite(c_miss) || !std::isfinite(c_fa))
    throw ScorerError("c_miss and c_fa must be positive and finite");
}

}  // namespace

std::vector<uint64_t> sorted_items(const float* scores, const int8_t* labels, int64_t n) {
  std::vector<uint64_t> a(static_cast<size_t>(n)), b(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) a[size_t(i)] = (uint64_t(float_key(scores[i])) << 32) | uint64_t(labels[i]);
  const int shifts[3] = {32, 43, 54};
  const int widths[3] = {11, 11, 10};
  for (int p = 0; p < 3; ++p) {
    const int sh = shifts[p];
    const uint64_t mask = (uint64_t(1) << widths[p]) - 1;
    std::vector<int64_t> count(size_t(mask + 2), 0);
    for (uint64_t v : a) ++count[size_t(((v >> sh) & mask) + 1)];
    bool uniform = false;
    for (size_t k = 1; k < count.size(); ++k) {
      if (count[k] == n) uniform = true;
      count[k] += count[k - 1];
    }
    if (uniform) continue;
    for (uint64_t v : a) b[size_t(count[size_t((v >> sh) & mask)]++)] = v;
    a.swap(b);
  }
  return a;
}

Metrics compute_metrics(const float* scores, const int8_t* labels, int64_t n, const std::vector<double>& p_targets,
                        double c_miss, double c_fa) {
  check_costs(p_targets, c_miss, c_fa);
  Metrics r;
  validate(scores, labels, n, &r.num_target, &r.num_nontarget);
  r.num_trials = n;
  const std::vector<uint64_t> items = sorted_items(scores, labels, n);
  min_dcf(items, p_targets, c_miss, c_fa, r);
  eers(items, r);
  return r;
}

void det_curve(const float* scores, const int8_t* labels, int64_t n, std::vector<double>* p_fa,
               std::vector<double>* p_miss, std::vector<double>* thresholds) {
  int64_t nt = 0, nn = 0;
  validate(scores, labels, n, &nt, &nn);
  const std::vector<uint64_t> items = sorted_items(scores, labels, n);
  int64_t below_t = 0, below_n = 0;
  for_each_group(items, [&](uint32_t key, int64_t t, int64_t m) {
    p_miss->push_back(double(below_t) / double(nt));
    p_fa->push_back(double(nn - below_n) / double(nn));
    thresholds->push_back(double(key_float(key)));
    below_t += t;
    below_n += m;
  });
  p_miss->push_back(1.0);
  p_fa->push_back(0.0);
  thresholds->push_back(std::numeric_limits<double>::infinity());
}

}  // namespace wsavkd
