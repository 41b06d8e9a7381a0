// The trial-list line grammar: form detection from the first line, one line -> (enroll, test, label). Both
// readers use it: read_trials (keys resolved through the key table in batches, stops at the first bad line)
// and scan_trials (the validators' read: every bad line reported).
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

// Why a list without a trial line is refused (read_trials, scan_trials); the caller prefixes the path.
constexpr const char kEmptyTrialList[] = "empty trial list (no trial lines)";

// One trial line's fields: the keys (views into the line) and the label (1 target, 0 nontarget, -1 unlabeled).
struct TrialFields {
  std::string_view enroll, test;
  int8_t label = -1;
};

// The form of a list from the tokens (split_tokens) of its first non-blank line; false, with `err` saying why
// (no file or line), on a line that fits no form.
bool detect_form(const std::string_view* tok, int n, TrialForm& form, std::string& err);

// The grammar of one non-blank line of a `form` list: its n tokens -> fields; false, with `err` saying why (no
// file or line), on a wrong field count or an unknown label. Keys are not looked up here.
bool parse_trial_fields(const std::string_view* tok, int n, TrialForm form, TrialFields& out, std::string& err);

// Parses the trial lines [b, e) of a `form` list into `piece` (reset by the caller), resolving keys through
// `table`; stops at the first bad line, setting piece.st.err and piece.st.err_line (local to the piece).
void parse_trial_piece(const char* b, const char* e, TrialForm form, const KeyTable& table, bool skip_missing,
                       TrialPiece& piece);

}  // namespace wsavkd
