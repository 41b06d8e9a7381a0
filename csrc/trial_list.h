// Trial lists: streaming, multi-threaded parsing of `1|0 enroll test`, `enroll test target|nontarget` or
// `enroll test` lines into key-table rows (no Python types). The parsed form is shared with score files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "key_table.h"

namespace wsavkd {

// The three trial-list forms, and score files; a file uses one form throughout (decided by its first
// non-blank line).
enum class TrialForm { kVoxCeleb, kKaldi, kUnlabeled, kScore };

const char* trial_form_name(TrialForm form);
// The trial-list form (not kScore) of a trial_form_name; false for any other name.
bool trial_form_from_name(const std::string& name, TrialForm& form);

struct TrialList {
  std::vector<int32_t> enroll;  // rows of the key table
  std::vector<int32_t> test;
  std::vector<int8_t> labels;  // 1 target, 0 nontarget, -1 unlabeled
  std::vector<float> scores;   // score files only
  TrialForm form = TrialForm::kUnlabeled;
  int64_t num_skipped = 0;    // trials with a key missing from the table (skip_missing only)
  std::string first_skipped;  // "path:line: key" of the first skipped trial, for the warning
};

// Reads `path` (`1|0 enroll test`, `enroll test target|nontarget` or `enroll test`), mapping keys through `table`.
// Blank lines are ignored; CRLF and runs of spaces/tabs are accepted. Throws ScorerError naming path:line on a
// malformed line, an unknown label, a key missing from `table` (unless skip_missing), an empty list.
TrialList read_trials(const std::string& path, const KeyTable& table, bool skip_missing, int num_threads);

}  // namespace wsavkd
