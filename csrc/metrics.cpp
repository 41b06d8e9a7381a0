#include "metrics.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "common.h"

namespace wsavkd {

namespace {

// Order-preserving map float32 -> uint32 (after folding -0 into +0, so equal floats get equal keys).
inline uint32_t float_key(float f) {
  if (f == 0.f) f = 0.f;
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float key_float(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7FFFFFFFu) : ~k;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Items (key << 32 | label) sorted by key, stable (ties keep trial order, as Python's sorted() in
// compute_min_dcf.py does). LSD radix sort on the key bits, 3 passes of 11 bits; uniform passes are skipped.
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

void validate(const float* scores, const int8_t* labels, int64_t n, int64_t* nt, int64_t* nn) {
  if (n <= 0) throw ScorerError("no trials to evaluate");
  *nt = *nn = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(scores[i]))
      throw ScorerError("the score of trial " + std::to_string(i) + " is " +
                        (std::isnan(scores[i]) ? "NaN" : "Inf") + " (scores must be finite)");
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

// Walks the groups of equal score: f(score_key, targets_in_group, nontargets_in_group).
template <class F>
void for_each_group(const std::vector<uint64_t>& items, F&& f) {
  size_t i = 0;
  while (i < items.size()) {
    const uint32_t key = uint32_t(items[i] >> 32);
    int64_t t = 0, m = 0;
    while (i < items.size() && uint32_t(items[i] >> 32) == key) {
      if (items[i] & 1) ++t;
      else ++m;
      ++i;
    }
    f(key, t, m);
  }
}

}  // namespace

Metrics compute_metrics(const float* scores, const int8_t* labels, int64_t n, const std::vector<double>& p_targets,
                        double c_miss, double c_fa) {
  for (double p : p_targets)
    if (!(p > 0.0 && p < 1.0)) throw ScorerError("p_target must lie in (0, 1), got " + std::to_string(p));
  if (!(c_miss > 0.0) || !(c_fa > 0.0) || !std::isfinite(c_miss) || !std::isfinite(c_fa))
    throw ScorerError("c_miss and c_fa must be positive and finite");
  Metrics r;
  validate(scores, labels, n, &r.num_target, &r.num_nontarget);
  r.num_trials = n;
  const int64_t nt = r.num_target, nn = r.num_nontarget;
  const double dnt = double(nt), dnn = double(nn);
  const std::vector<uint64_t> items = sorted_items(scores, labels, n);

  // minDCF (compute_min_dcf.py): every trial in stable sorted order is an operating point; first strict minimum.
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

  // ROC crossing over grouped operating points; d = FNR - FPR rises strictly from -1 (accept all) to +1.
  bool found = false;
  double prev_fnr = 0.0, prev_fpr = 1.0, prev_d = -1.0, prev_thr = 0.0;
  int64_t below_t = 0, below_n = 0;
  // Kaldi compute-eer: the smallest i <= nT-2 with #{nontarget >= t_(i)} * nT <= i * nN, else nT-1.
  int64_t kaldi_i = -1, target_index = 0;
  float kaldi_thr = 0.f;
  // ROCCH: initial PAV blocks per group, targets before nontargets on ties (pessimistic pooling).
  struct Block { int64_t t, m; };
  std::vector<Block> stack;
  auto push_block = [&stack](int64_t t, int64_t m) {
    stack.push_back({t, m});
    // Merge while the previous block's target rate >= this one's (BOSARIS pavx merges on >=).
    while (stack.size() > 1) {
      Block& cur = stack.back();
      Block& prev = stack[stack.size() - 2];
      const __int128 lhs = __int128(prev.t) * (cur.t + cur.m), rhs = __int128(cur.t) * (prev.t + prev.m);
      if (lhs < rhs) break;
      prev.t += cur.t;
      prev.m += cur.m;
      stack.pop_back();
    }
  };
  for_each_group(items, [&](uint32_t key, int64_t t, int64_t m) {
    const double thr = double(key_float(key));
    const double fnr = double(below_t) / dnt, fpr = double(nn - below_n) / dnn, d = fnr - fpr;
    if (!found) {
      if (d > 0.0) {
        const double a = prev_d / (prev_d - d);
        r.eer = prev_fnr + a * (fnr - prev_fnr);
        r.eer_threshold = prev_thr + a * (thr - prev_thr);
        found = true;
      } else {
        prev_fnr = fnr;
        prev_fpr = fpr;
        prev_d = d;
        prev_thr = thr;
      }
    }
    if (kaldi_i < 0) {
      const int64_t n_ge = nn - below_n;  // nontargets scoring >= this group's score
      for (int64_t k = 0; k < t && kaldi_i < 0; ++k, ++target_index) {
        if (target_index > nt - 2) break;
        if (__int128(n_ge) * nt <= __int128(target_index) * nn) {
          kaldi_i = target_index;
          kaldi_thr = float(thr);
        }
      }
    }
    if (t > 0) push_block(t, 0);
    if (m > 0) push_block(0, m);
    below_t += t;
    below_n += m;
  });
  if (!found) {  // crossing on the last segment, towards the reject-all point (FNR 1, FPR 0)
    const double d = 1.0, a = prev_d / (prev_d - d);
    r.eer = prev_fnr + a * (1.0 - prev_fnr);
    r.eer_threshold = prev_thr;
  }
  if (kaldi_i < 0) {
    kaldi_i = nt - 1;
    // the largest target score
    for (auto it = items.rbegin(); it != items.rend(); ++it)
      if (*it & 1) {
        kaldi_thr = key_float(uint32_t(*it >> 32));
        break;
      }
  }
  r.eer_kaldi = float(double(kaldi_i) * 1.0 / double(nt));
  r.eer_kaldi_threshold = kaldi_thr;

  // ROCCH-EER (BOSARIS rocch + rocch2eer): hull vertices, then max over edges of the edge line's crossing.
  std::vector<double> pmiss{0.0}, pfa{1.0};
  int64_t miss = 0, fa = nn;
  for (const Block& blk : stack) {
    miss += blk.t;
    fa -= blk.m;
    pmiss.push_back(double(miss) / dnt);
    pfa.push_back(double(fa) / dnn);
  }
  double eer = 0.0;
  for (size_t i = 0; i + 1 < pfa.size(); ++i) {
    const double x0 = pfa[i], x1 = pfa[i + 1], y0 = pmiss[i], y1 = pmiss[i + 1];
    const double dx = x0 - x1, dy = y0 - y1;
    double seg = 0.0;
    if (std::fabs(dx) != 0.0 && std::fabs(dy) != 0.0) seg = (x0 * y1 - y0 * x1) / ((y1 - y0) + (x0 - x1));
    eer = std::max(eer, seg);
  }
  r.eer_rocch = eer;
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
