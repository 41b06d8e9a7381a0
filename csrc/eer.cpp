#include <algorithm>
#include <cmath>
#include <vector>

#include "sorted_scores.h"

namespace wsavkd {

namespace {

// ROC crossing over grouped operating points; d = FNR - FPR rises strictly from -1 (accept all) to +1. The EER
// and its threshold interpolate linearly between the two operating points around the crossing.
class CrossingEer {
 public:
  CrossingEer(int64_t nt, int64_t nn) : nn_(nn), dnt_(double(nt)), dnn_(double(nn)) {}

  // One group of equal score `key`, with below_t targets and below_n nontargets scoring lower.
  void add(uint32_t key, int64_t below_t, int64_t below_n) {
    if (found_) return;
    const double thr = double(key_float(key));
    const double fnr = double(below_t) / dnt_, fpr = double(nn_ - below_n) / dnn_, d = fnr - fpr;
    if (d > 0.0) {
      const double a = prev_d_ / (prev_d_ - d);
      eer_ = prev_fnr_ + a * (fnr - prev_fnr_);
      thr_ = prev_thr_ + a * (thr - prev_thr_);
      found_ = true;
      return;
    }
    prev_fnr_ = fnr;
    prev_d_ = d;
    prev_thr_ = thr;
  }

  void finish(Metrics& r) const {
    if (found_) {
      r.eer = eer_;
      r.eer_threshold = thr_;
      return;
    }
    // crossing on the last segment, towards the reject-all point (FNR 1, FPR 0)
    const double d = 1.0, a = prev_d_ / (prev_d_ - d);
    r.eer = prev_fnr_ + a * (1.0 - prev_fnr_);
    r.eer_threshold = prev_thr_;
  }

 private:
  const int64_t nn_;
  const double dnt_, dnn_;
  bool found_ = false;
  double prev_fnr_ = 0.0, prev_d_ = -1.0, prev_thr_ = 0.0, eer_ = 0.0, thr_ = 0.0;
};

// Kaldi compute-eer: the smallest i <= nT-2 with #{nontarget >= t_(i)} * nT <= i * nN, else nT-1; float32 as
// Kaldi returns it, the threshold being the i-th smallest target score.
class KaldiEer {
 public:
  KaldiEer(int64_t nt, int64_t nn) : nt_(nt), nn_(nn) {}

  // One group of equal score `key` holding t targets, with below_n nontargets scoring lower.
  void add(uint32_t key, int64_t t, int64_t below_n) {
    const int64_t n_ge = nn_ - below_n;  // nontargets scoring >= this group's score
    for (int64_t k = 0; k < t && index_ < 0; ++k, ++target_index_) {
      if (target_index_ > nt_ - 2) break;
      if (__int128(n_ge) * nt_ <= __int128(target_index_) * nn_) {
        index_ = target_index_;
        thr_ = key_float(key);
      }
    }
  }

  void finish(const std::vector<uint64_t>& items, Metrics& r) {
    if (index_ < 0) {
      index_ = nt_ - 1;
      for (auto it = items.rbegin(); it != items.rend(); ++it)  // the largest target score
        if (*it & 1) {
          thr_ = key_float(uint32_t(*it >> 32));
          break;
        }
    }
    r.eer_kaldi = float(double(index_) * 1.0 / double(nt_));
    r.eer_kaldi_threshold = thr_;
  }

 private:
  const int64_t nt_, nn_;
  int64_t index_ = -1, target_index_ = 0;
  float thr_ = 0.f;
};

// ROCCH-EER (BOSARIS rocch + rocch2eer). PAV blocks per group, targets before nontargets on ties (pessimistic
// pooling), merged while the previous block's target rate >= this one's (BOSARIS pavx merges on >=): the ROC
// convex hull's vertices; the EER is the max over hull edges of the edge line's crossing.
class RocchEer {
 public:
  void add(int64_t t, int64_t m) {
    if (t > 0) push(t, 0);
    if (m > 0) push(0, m);
  }

  double eer(int64_t nt, int64_t nn) const {
    std::vector<double> pmiss{0.0}, pfa{1.0};
    int64_t miss = 0, fa = nn;
    for (const Block& blk : stack_) {
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

 private:
  struct Block {
    int64_t t, m;
  };

  void push(int64_t t, int64_t m) {
    stack_.push_back({t, m});
    while (stack_.size() > 1) {
      Block& cur = stack_.back();
      Block& prev = stack_[stack_.size() - 2];
      const __int128 lhs = __int128(prev.t) * (cur.t + cur.m), rhs = __int128(cur.t) * (prev.t + prev.m);
      if (lhs < rhs) break;
      prev.t += cur.t;
      prev.m += cur.m;
      stack_.pop_back();
    }
  }

  std::vector<Block> stack_;
};

}  // namespace

void eers(const std::vector<uint64_t>& items, Metrics& r) {
  const int64_t nt = r.num_target, nn = r.num_nontarget;
  CrossingEer crossing(nt, nn);
  KaldiEer kaldi(nt, nn);
  RocchEer rocch;
  int64_t below_t = 0, below_n = 0;
  for_each_group(items, [&](uint32_t key, int64_t t, int64_t m) {  // one pass: the walk dominates the cost
    crossing.add(key, below_t, below_n);
    kaldi.add(key, t, below_n);
    rocch.add(t, m);
    below_t += t;
    below_n += m;
  });
  crossing.finish(r);
  kaldi.finish(items, r);
  r.eer_rocch = rocch.eer(nt, nn);
}

}  // namespace wsavkd
