// Internal to the metrics: trials as sorted (score key, label) items, the EER definitions over them.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "metrics.h"

namespace wsavkd {

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
std::vector<uint64_t> sorted_items(const float* scores, const int8_t* labels, int64_t n);

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

// The three EER definitions of docs/metrics.md (ROC crossing, Kaldi compute-eer, ROCCH) over sorted_items(),
// in one walk over the groups of equal score; fills r's EER fields (r.num_target and r.num_nontarget are set).
void eers(const std::vector<uint64_t>& items, Metrics& r);

}  // namespace wsavkd
