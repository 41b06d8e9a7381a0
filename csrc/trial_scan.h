// Trial lists as a validator reads them: every line checked against the grammar of trial_line.h (the one
// read_trials parses with), keys kept as text, every bad line reported where read_trials stops at the first
// (no Python types).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trial_list.h"

namespace wsavkd {

struct TrialScan {
  TrialForm form = TrialForm::kUnlabeled;
  bool have_form = false;  // false: no line fitted a form (see problems)
  // The good lines: their keys, labels (1 target, 0 nontarget, -1 unlabeled) and 1-based line numbers.
  std::vector<std::string> enroll, test;
  std::vector<int8_t> labels;
  std::vector<int64_t> lines;
  // (line, why) of each bad line, in file order; line 0 stands for the whole file (an empty list).
  std::vector<std::pair<int64_t, std::string>> problems;
};

// Scans `path` as a trial list of the form named `form_name` ("voxceleb", "kaldi", "unlabeled"), or, when it is
// empty, of the form of its first non-blank line that fits one (read_trials' rule). Throws ScorerError on an
// unknown form name or a file that cannot be read; bad lines are problems, not errors.
TrialScan scan_trials(const std::string& path, const std::string& form_name);

}  // namespace wsavkd
