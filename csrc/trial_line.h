// The trial-list line grammar: form detection from the first line, one line -> (enroll, test, label), keys
// resolved through the key table in batches. read_trials parses each piece of a block with it.
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

// Parses the trial lines [b, e) of a `form` list into `piece` (reset by the caller), resolving keys through
// `table`; stops at the first bad line, setting piece.st.err and piece.st.err_line (local to the piece).
void parse_trial_piece(const char* b, const char* e, TrialForm form, const KeyTable& table, bool skip_missing,
                       TrialPiece& piece);

}  // namespace wsavkd
