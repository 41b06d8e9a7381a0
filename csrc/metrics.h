// Verification metrics from scores and labels: EER (three named definitions), minDCF, DET points.
// Definitions and sources: docs/metrics.md (ROC crossing, Kaldi compute-eer, BOSARIS ROCCH, Kaldi
// compute_min_dcf.py). No Python types.
#pragma once

#include <cstdint>
#include <vector>

namespace wsavkd {

struct Metrics {
  int64_t num_trials = 0, num_target = 0, num_nontarget = 0;
  double eer = 0.0;            // ROC crossing, ties grouped into one operating point
  double eer_threshold = 0.0;  // score at the crossing (linear between the two operating points)
  float eer_kaldi = 0.f;       // Kaldi compute-eer, float32 as Kaldi returns it
  float eer_kaldi_threshold = 0.f;
  double eer_rocch = 0.0;                 // BOSARIS ROCCH-EER
  std::vector<double> min_dcf;            // one per p_target
  std::vector<double> min_dcf_threshold;  // score of the minimising trial
};

// Validates (n > 0, labels 0/1 only, finite scores, both classes present) and computes every metric from one
// stable radix sort. Throws ScorerError naming the first offending trial.
Metrics compute_metrics(const float* scores, const int8_t* labels, int64_t n, const std::vector<double>& p_targets,
                        double c_miss, double c_fa);

// DET / ROC operating points at every distinct score (ties grouped), ascending threshold, plus the reject-all
// point: p_fa from 1 down to 0, p_miss from 0 up to 1.
void det_curve(const float* scores, const int8_t* labels, int64_t n, std::vector<double>* p_fa,
               std::vector<double>* p_miss, std::vector<double>* thresholds);

}  // namespace wsavkd
