// Trial lists and score files: streaming, multi-threaded text parsing and writing (no Python types).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "key_table.h"

namespace wsavkd {

// The three trial-list forms; a file must use one form throughout (decided by its first non-blank line).
enum class TrialForm { kVoxCeleb, kKaldi, kUnlabeled, kScore };

const char* trial_form_name(TrialForm form);

struct TrialList {
  std::vector<int32_t> enroll;  // rows of the key table
  std::vector<int32_t> test;
  std::vector<int8_t> labels;   // 1 target, 0 nontarget, -1 unlabeled
  std::vector<float> scores;    // score files only
  TrialForm form = TrialForm::kUnlabeled;
  int64_t num_skipped = 0;      // trials with a key missing from the table (skip_missing only)
  std::string first_skipped;    // "path:line: key" of the first skipped trial, for the warning
};

// Reads `path` (`1|0 enroll test`, `enroll test target|nontarget` or `enroll test`), mapping keys through `table`.
// Blank lines are ignored; CRLF and runs of spaces/tabs are accepted. Throws ScorerError naming path:line on a
// malformed line, an unknown label, a key missing from `table` (unless skip_missing), an empty list.
TrialList read_trials(const std::string& path, const KeyTable& table, bool skip_missing, int num_threads);

// Reads a score file (`enroll test score [target|nontarget]`), interning its keys into `table`.
TrialList read_score_file(const std::string& path, KeyTable& table);

// Writes `enroll test score [label]` lines to the open file descriptor `fd` (the label column is left out for
// label -1). Scores are written as the shortest decimal that reads back to the same float32 (std::to_chars).
void write_score_lines(int fd, const KeyTable& table, const int32_t* enroll, const int32_t* test,
                       const float* scores, const int8_t* labels, int64_t n, int num_threads);

// Key for a message: printable ASCII kept, other bytes as \xNN, cut at 200 characters.
std::string printable(const char* data, size_t size);

}  // namespace wsavkd
