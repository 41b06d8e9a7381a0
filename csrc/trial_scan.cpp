#include "trial_scan.h"

#include <string_view>

#include "common.h"
#include "line_reader.h"
#include "trial_line.h"

namespace wsavkd {

namespace {

// One line [b, e), number `line`, into `out`: fields of a good line or the problem of a bad one.
void scan_line(const char* b, const char* e, int64_t line, TrialScan& out) {
  std::string_view tok[kMaxTokens];
  const int n = split_tokens(b, e, tok);
  if (n == 0) return;
  std::string err;
  TrialFields f;
  if (!out.have_form) out.have_form = detect_form(tok, n, out.form, err);
  if (!out.have_form || !parse_trial_fields(tok, n, out.form, f, err)) {
    out.problems.emplace_back(line, std::move(err));
    return;
  }
  out.enroll.emplace_back(f.enroll);
  out.test.emplace_back(f.test);
  out.labels.push_back(f.label);
  out.lines.push_back(line);
}

}  // namespace

TrialScan scan_trials(const std::string& path, const std::string& form_name) {
  TrialScan out;
  if (!form_name.empty() && !(out.have_form = trial_form_from_name(form_name, out.form)))
    throw ScorerError("unknown trial-list form '" + form_name + "' (expected voxceleb, kaldi or unlabeled)");
  LineStatus st;  // one status across blocks: its line count numbers the whole file
  for_each_block(path, [&](const Block& blk) {
    parse_lines(blk.begin, blk.end, st, [&](const char* lb, const char* le) {
      scan_line(lb, le, st.lines, out);
      return true;
    });
  });
  if (out.lines.empty() && out.problems.empty()) out.problems.emplace_back(0, kEmptyTrialList);
  return out;
}

}  // namespace wsavkd
