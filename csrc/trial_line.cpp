#include "trial_line.h"

#include <utility>

#include "common.h"

namespace wsavkd {

namespace {

const char* form_usage(TrialForm form) {
  switch (form) {
    case TrialForm::kVoxCeleb: return "'1|0 enroll test'";
    case TrialForm::kKaldi: return "'enroll test target|nontarget'";
    case TrialForm::kUnlabeled: return "'enroll test'";
    case TrialForm::kScore: return "'enroll test score [target|nontarget]'";
  }
  return "";
}

int form_tokens(TrialForm form) { return form == TrialForm::kUnlabeled ? 2 : 3; }

// Label of a labeled form's label token: 1, 0, or -2 when the token is not a label of that form.
int8_t form_label(TrialForm form, std::string_view tok) {
  if (form == TrialForm::kVoxCeleb) return tok == "1" ? 1 : tok == "0" ? 0 : -2;
  return tok == "target" ? 1 : tok == "nontarget" ? 0 : -2;
}

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
  bool flush() {
    table_.find_batch(keys_, 2 * n_, rows_);
    const size_t n = n_;
    n_ = 0;
    for (size_t i = 0; i < n; ++i) {
      const int64_t re = rows_[2 * i], rt = rows_[2 * i + 1];
      if (re < 0 || rt < 0) {
        if (!missing(i, re < 0)) return false;
        continue;
      }
      out_.enroll.push_back(int32_t(re));
      out_.test.push_back(int32_t(rt));
      out_.labels.push_back(labels_[i]);
    }
    return true;
  }

 private:
  // Trial i of the batch has a missing key: an error, or a skipped trial under skip_missing.
  bool missing(size_t i, bool enroll_missing) {
    const std::string_view key = keys_[2 * i + (enroll_missing ? 0 : 1)];
    if (!skip_missing_) {
      out_.st.err = std::string(enroll_missing ? "enrollment" : "test") + " key '" + printable(key) +
                    "' is not in the embeddings (" + std::to_string(table_.size()) +
                    " keys); skip_missing skips such trials";
      out_.st.err_line = lines_[i];
      return false;
    }
    if (out_.skipped++ == 0) {
      out_.first_skip_line = lines_[i];
      out_.first_skip_key = printable(key);
    }
    return true;
  }

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

// Parses one line [b, e) (line number out.st.lines) into `batch`; on bad input sets out.st.err and returns false
// (after reporting a missing key of an earlier pending line first, so the first bad line is the one named).
bool parse_trial_line(const char* b, const char* e, TrialForm form, TrialBatcher& batch, TrialPiece& out) {
  std::string_view tok[kMaxTokens];
  const int n = split_tokens(b, e, tok);
  if (n == 0) return true;
  TrialFields f;
  std::string err;
  if (parse_trial_fields(tok, n, form, f, err)) return batch.add(f.enroll, f.test, f.label, out.st.lines);
  if (batch.flush()) out.st.err = std::move(err);
  return false;
}

}  // namespace

void TrialPiece::reset() {
  enroll.clear();
  test.clear();
  labels.clear();
  st.reset();
  skipped = 0;
  first_skip_line = -1;
  first_skip_key.clear();
}

bool parse_trial_fields(const std::string_view* tok, int n, TrialForm form, TrialFields& out, std::string& err) {
  if (n != form_tokens(form)) {
    err = "malformed trial line: expected " + std::to_string(form_tokens(form)) + " fields " + form_usage(form) +
          ", the form of this list, got " + std::to_string(n);
    return false;
  }
  if (form == TrialForm::kUnlabeled) {
    out = TrialFields{tok[0], tok[1], -1};
    return true;
  }
  const bool vox = form == TrialForm::kVoxCeleb;
  const std::string_view label_tok = vox ? tok[0] : tok[2];
  const int8_t label = form_label(form, label_tok);
  if (label < 0) {
    err = "unknown label '" + printable(label_tok) +
          (vox ? "' (VoxCeleb form: expected 1 or 0 first)" : "' (Kaldi form: expected target or nontarget)");
    return false;
  }
  out = vox ? TrialFields{tok[1], tok[2], label} : TrialFields{tok[0], tok[1], label};
  return true;
}

bool detect_form(const std::string_view* tok, int n, TrialForm& form, std::string& err) {
  if (n == 2) {
    form = TrialForm::kUnlabeled;
    return true;
  }
  if (n == 3 && (tok[2] == "target" || tok[2] == "nontarget")) {
    form = TrialForm::kKaldi;
    return true;
  }
  if (n == 3 && (tok[0] == "1" || tok[0] == "0")) {
    form = TrialForm::kVoxCeleb;
    return true;
  }
  if (n == 3)
    err =
        "unknown label: expected 'target' or 'nontarget' in the third field (Kaldi form) or '1' or '0' in the "
        "first field (VoxCeleb form), got '" +
        printable(tok[0]) + " " + printable(tok[1]) + " " + printable(tok[2]) + "'";
  else
    err =
        "malformed trial line: expected 2 or 3 fields ('1|0 enroll test', 'enroll test target|nontarget' or "
        "'enroll test'), got " +
        std::to_string(n);
  return false;
}

void parse_trial_piece(const char* b, const char* e, TrialForm form, const KeyTable& table, bool skip_missing,
                       TrialPiece& piece) {
  const size_t guess = size_t(e - b) / 16;
  piece.enroll.reserve(guess);
  piece.test.reserve(guess);
  piece.labels.reserve(guess);
  TrialBatcher batch(table, skip_missing, piece);
  parse_lines(b, e, piece.st,
              [&](const char* lb, const char* le) { return parse_trial_line(lb, le, form, batch, piece); });
  if (piece.st.err_line < 0) batch.flush();
}

}  // namespace wsavkd
