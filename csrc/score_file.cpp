#include "score_file.h"

#include <charconv>
#include <cmath>
#include <string_view>

#include "common.h"
#include "line_reader.h"

namespace wsavkd {

namespace {

// The score token as a finite float32, or an error message in `err`.
bool parse_score(std::string_view tok, float& s, std::string& err) {
  const char* sb = tok.data();
  const char* se = sb + tok.size();
  if (sb < se && *sb == '+') ++sb;  // from_chars refuses a leading '+', printf-style writers emit it
  auto res = std::from_chars(sb, se, s);
  if (res.ec != std::errc() || res.ptr != se) {
    err = "bad score '" + printable(tok) + "' (expected a decimal number within float32 range)";
    return false;
  }
  if (!std::isfinite(s)) {
    err = "score is " + printable(tok) + " (scores must be finite)";
    return false;
  }
  return true;
}

// Parses one score-file line into `out`, interning its keys; ntok_expected is the first line's field count.
bool parse_score_line(const char* b, const char* e, KeyTable& table, int& ntok_expected, TrialList& out,
                      std::string& err) {
  std::string_view tok[kMaxTokens];
  const int n = split_tokens(b, e, tok);
  if (n == 0) return true;
  if (n != 3 && n != 4) {
    err = "malformed score line: expected 'enroll test score [target|nontarget]', got " + std::to_string(n) + " fields";
    return false;
  }
  if (ntok_expected == 0) ntok_expected = n;
  if (n != ntok_expected) {
    err = "malformed score line: " + std::to_string(n) + " fields where the first line has " +
          std::to_string(ntok_expected) + " (labels must be given on every line or on none)";
    return false;
  }
  float s = 0.f;
  if (!parse_score(tok[2], s, err)) return false;
  int8_t label = -1;
  if (n == 4) {
    if (tok[3] == "target") label = 1;
    else if (tok[3] == "nontarget") label = 0;
    else {
      err = "unknown label '" + printable(tok[3]) + "' (expected target or nontarget)";
      return false;
    }
  }
  out.enroll.push_back(int32_t(table.intern(tok[0])));
  out.test.push_back(int32_t(table.intern(tok[1])));
  out.scores.push_back(s);
  out.labels.push_back(label);
  return true;
}

}  // namespace

TrialList read_score_file(const std::string& path, KeyTable& table) {
  TrialList result;
  result.form = TrialForm::kScore;
  int ntok = 0;
  LineStatus st;  // keys are interned into one table, so score files are parsed on one thread
  for_each_block(path, [&](const Block& blk) {
    parse_lines(blk.begin, blk.end, st,
                [&](const char* lb, const char* le) { return parse_score_line(lb, le, table, ntok, result, st.err); });
    if (st.err_line >= 0) throw ScorerError(path + ":" + std::to_string(st.err_line) + ": " + st.err);
  });
  if (result.enroll.empty()) throw ScorerError(path + ": empty score file (no score lines)");
  return result;
}

}  // namespace wsavkd
