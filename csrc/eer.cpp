#include <algorithm>
#include <cmath>
#include <vector>

#include "sorted_scores.h"

namespace wsavkd {

// ROC crossing over grouped operating points; d = FNR - FPR rises strictly from -1 (accept all) to +1. The EER
// and its threshold interpolate linearly between the two operating points around the crossing.
void crossing_eer(const std::vector<uint64_t>& items, Metrics& r) {
  const int64_t nn = r.num_nontarget;
  const double dnt = double(r.num_target), dnn = double(nn);
  bool found = false;
  double prev_fnr = 0.0, prev_d = -1.0, prev_thr = 0.0;
  int64_t below_t = 0, below_n = 0;
  for_each_group(items, [&](uint32_t key, int64_t t, int64_t m) {
    const double thr = double(key_float(key));
    const double fnr = double(below_t) / dnt, fpr = double(nn - below_n) / dnn, d = fnr - fpr;
    below_t += t;
    below_n += m;
    if (found) return;
    if (d > 0.0) {
      const double a = prev_d / (prev_d - d);
      r.eer = prev_fnr + a * (fnr - prev_fnr);
      r.eer_threshold = prev_thr + a * (thr - prev_thr);
      found = true;
      return;
    }
    prev_fnr = fnr;
    prev_d = d;
    prev_thr = thr;
  });
  if (!found) {  // crossing on the last segment, towards the reject-all point (FNR 1, FPR 0)
    const double d = 1.0, a = prev_d / (prev_d - d);
    r.eer = prev_fnr + a * (1.0 - prev_fnr);
    r.eer_threshold = prev_thr;
  }
}

// Kaldi compute-eer: the smallest i <= nT-2 with #{nontarget >= t_(i)} * nT <= i * nN, else nT-1; float32 as
// Kaldi returns it, the threshold being the i-th smallest target score.
void kaldi_eer(const std::vector<uint64_t>& items, Metrics& r) {
  const int64_t nt = r.num_target, nn = r.num_nontarget;
  int64_t kaldi_i = -1, target_index = 0, below_n = 0;
  float kaldi_thr = 0.f;
  for_each_group(items, [&](uint32_t key, int64_t t, int64_t m) {
    const int64_t n_ge = nn - below_n;  // nontargets scoring >= this group's score
    below_n += m;
    for (int64_t k = 0; k < t && kaldi_i < 0; ++k, ++target_index) {
      if (target_index > nt - 2) break;
      if (__int128(n_ge) * nt <= __int128(target_index) * nn) {
        kaldi_i = target_index;
        kaldi_thr = key_float(key);
      }
    }
  });
  if (kaldi_i < 0) {
    kaldi_i = nt - 1;
    for (auto it = items.rbegin(); it != items.rend(); ++it)  // the largest target score
      if (*it & 1) {
        kaldi_thr = key_float(uint32_t(*it >> 32));
        break;
      }
  }
  r.eer_kaldi = float(double(kaldi_i) * 1.0 / double(nt));
  r.eer_kaldi_threshold = kaldi_thr;
}

namespace {

struct PavBlock {
  int64_t t, m;
};

// Initial PAV blocks per group, targets before nontargets on ties (pessimistic pooling), merged while the
// previous block's target rate >= this one's (BOSARIS pavx merges on >=): the ROC convex hull's segments.
std::vector<PavBlock> rocch_blocks(const std::vector<uint64_t>& items) {
  std::vector<PavBlock> stack;
  auto push_block = [&stack](int64_t t, int64_t m) {
    stack.push_back({t, m});
    while (stack.size() > 1) {
      PavBlock& cur = stack.back();
      PavBlock& prev = stack[stack.size() - 2];
      const __int128 lhs = __int128(prev.t) * (cur.t + cur.m), rhs = __int128(cur.t) * (prev.t + prev.m);
      if (lhs < rhs) break;
      prev.t += cur.t;
      prev.m += cur.m;
      stack.pop_back();
    }
  };
  for_each_group(items, [&](uint32_t, int64_t t, int64_t m) {
    if (t > 0) push_block(t, 0);
    if (m > 0) push_block(0, m);
  });
  return stack;
}

}  // namespace

// ROCCH-EER (BOSARIS rocch + rocch2eer): hull vertices, then max over edges of the edge line's crossing.
double rocch_eer(const std::vector<uint64_t>& items, int64_t nt, int64_t nn) {
  std::vector<double> pmiss{0.0}, pfa{1.0};
  int64_t miss = 0, fa = nn;
  for (const PavBlock& blk : rocch_blocks(items)) {
    miss += blk.t;
    fa -= blk.m;
    pmiss.push_back(double(miss) / double(nt));
    pfa.push_back(double(fa) / double(nn));
  }
  double eer = 0.0;
  for (size_t i = 0; i + 1 < pfa.size(); ++i) {
    const double x0 = pfa[i], x1 = pfa[i + 1], y0 = pmiss[i], y1 = pmiss[i + 1];
    const double dx = x0 - x1, dy = y0 - y1;
    double seg = 0.0;
    if (std::fabs(dx) != 0.0 && std::fabs(dy) != 0.0) seg = (x0 * y1 - y0 * x1) / ((y1 - y0) + (x0 - x1));
    eer = std::max(eer, seg);
  }
  return eer;
}

}  // namespace wsavkd
