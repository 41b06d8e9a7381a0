// The trial-list line grammar: form detection from the first line, one line -> (enroll, test, label), keys
// resolved through the key table in batches. Used by read_trials for each piece of a block.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "key_table.h"
#include "line_reader.h"
#include "trial_list.h"

namespace wsavkd {

// Output of one parsed piece of a block; line numbers are local to the piece (1-based).
struct TrialPiece {
  std::vector<int32_t> enroll, test;
  std::vector<int8_t> labels;
  LineStatus st;
  int64_t skipped = 0;
  int64_t first_skip_line = -1;
  std::string first_skip_key;

  void reset();  // keeps the vectors' capacity from block to block
};

// Decides the form from the tokens of the first non-blank line; throws ScorerError (prefixed by `where`, e.g.
// "path:line") on a line that fits none.
TrialForm detect_form(const std::string_view* tok, int n, const std::string& where);

// Collects the trial lines of a piece and resolves their keys in batches (KeyTable::find_batch), so the
// cache misses of the lookups overlap. On a missing key sets the piece's error at the key's line.
class TrialBatcher {
 public:
  TrialBatcher(const KeyTable& table, bool skip_missing, TrialPiece& out)
      : table_(table), skip_missing_(skip_missing), out_(out) {}

  // Queues one trial; false when a flush found a missing key (the piece's error is set).
  bool add(std::string_view enroll, std::string_view test, int8_t label, int64_t line) {
    keys_[2 * n_] = enroll;
    keys_[2 * n_ + 1] = test;
    labels_[n_] = label;
    lines_[n_] = line;
    return ++n_ < kBatch ? true : flush();
  }

  // Resolves the queued trials into the piece; false at the first missing key (unless skip_missing).
  bool flush();

 private:
  bool missing(size_t i, bool enroll_missing);

  static constexpr size_t kBatch = 32;
  const KeyTable& table_;
  const bool skip_missing_;
  TrialPiece& out_;
  size_t n_ = 0;
  std::string_view keys_[2 * kBatch];
  int64_t rows_[2 * kBatch];
  int8_t labels_[kBatch];
  int64_t lines_[kBatch];
};

// Parses one line [b, e) of a `form` list (line number out.st.lines) into `batch`; on bad input sets
// out.st.err and returns false (after reporting a missing key of an earlier pending line first, so the first
// bad line is the one named). Blank lines are accepted and skipped.
bool parse_trial_line(const char* b, const char* e, TrialForm form, TrialBatcher& batch, TrialPiece& out);

}  // namespace wsavkd
