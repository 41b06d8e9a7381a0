#include "trial_list.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "common.h"
#include "line_reader.h"
#include "trial_line.h"

namespace wsavkd {

namespace {

// Reads one trial list block by block: the first non-blank line decides the form, each block is cut at line
// boundaries into pieces parsed in parallel, the pieces are appended in order.
class TrialReader {
 public:
  TrialReader(const std::string& path, const KeyTable& table, bool skip_missing, int num_threads)
      : path_(path), table_(table), skip_missing_(skip_missing), nt_(thread_count(num_threads)) {}

  void on_block(const Block& blk) {
    if (blk.first) reserve(blk);
    if (!have_form_ && !find_form(blk)) return;
    cut_pieces(blk.begin, blk.end);
    parse_pieces();
    merge_pieces();
  }

  TrialList finish() {
    if (!have_form_) throw ScorerError(path_ + ": " + kEmptyTrialList);
    if (result_.enroll.empty())
      throw ScorerError(path_ + ": no trial could be scored: all " + std::to_string(result_.num_skipped) +
                        " trials have a key missing from the embeddings (first: " + result_.first_skipped + ")");
    return std::move(result_);
  }

 private:
  // Reserves from the line density of the first block, so the vectors do not grow by doubling.
  void reserve(const Block& blk) {
    const int64_t nl = std::max<int64_t>(1, std::count(blk.begin, blk.end, '\n'));
    const double est = double(blk.file_size) / double(blk.end - blk.begin) * double(nl) * 1.02 + 16;
    const size_t cap = size_t(std::min(est, 4e9));
    result_.enroll.reserve(cap);
    result_.test.reserve(cap);
    result_.labels.reserve(cap);
  }

  // Decides the form from the block's first non-blank line; false (lines counted) when the block is blank.
  bool find_form(const Block& blk) {
    int64_t line = lines_before_;
    for (const char* p = blk.begin; p < blk.end;) {
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(blk.end - p)));
      const char* le = nl ? nl : blk.end;
      ++line;
      std::string_view tok[kMaxTokens];
      const int n = split_tokens(p, le, tok);
      if (n > 0) {
        std::string err;
        if (!detect_form(tok, n, result_.form, err)) throw ScorerError(path_ + ":" + std::to_string(line) + ": " + err);
        return have_form_ = true;
      }
      p = nl ? nl + 1 : blk.end;
    }
    lines_before_ = line;
    return false;
  }

  // Cuts [b, e) at line boundaries into pieces handed out dynamically (a busy core takes fewer).
  void cut_pieces(const char* b, const char* e) {
    const int np = nt_ > 1 ? 8 * nt_ : 1;
    cuts_.assign(1, b);
    for (int k = 1; k < np; ++k) {
      const char* c = b + (e - b) * k / np;
      if (c < cuts_.back()) c = cuts_.back();
      const char* nl = static_cast<const char*>(std::memchr(c, '\n', size_t(e - c)));
      cuts_.push_back(nl ? nl + 1 : e);
    }
    cuts_.push_back(e);
    pieces_.resize(cuts_.size() - 1);
    for (TrialPiece& piece : pieces_) piece.reset();
  }

  void parse_pieces() {
    const TrialForm form = result_.form;
#ifdef WESPEAKER_AVKD_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt_)
#endif
    for (int k = 0; k < int(pieces_.size()); ++k) {
      parse_trial_piece(cuts_[k], cuts_[k + 1], form, table_, skip_missing_, pieces_[k]);
    }
  }

  void merge_pieces() {
    for (const TrialPiece& piece : pieces_) {
      if (piece.st.err_line >= 0)
        throw ScorerError(path_ + ":" + std::to_string(lines_before_ + piece.st.err_line) + ": " + piece.st.err);
      if (piece.skipped > 0 && result_.num_skipped == 0)
        result_.first_skipped =
            path_ + ":" + std::to_string(lines_before_ + piece.first_skip_line) + ": " + piece.first_skip_key;
      result_.num_skipped += piece.skipped;
      lines_before_ += piece.st.lines;
      append(result_.enroll, piece.enroll);
      append(result_.test, piece.test);
      append(result_.labels, piece.labels);
      if (result_.enroll.size() > size_t(INT32_MAX)) throw ScorerError(path_ + ": more than 2^31 trials");
    }
  }

  const std::string& path_;
  const KeyTable& table_;
  const bool skip_missing_;
  const int nt_;
  TrialList result_;
  bool have_form_ = false;
  int64_t lines_before_ = 0;  // lines in earlier blocks and pieces
  std::vector<const char*> cuts_;
  std::vector<TrialPiece> pieces_;
};

}  // namespace

const char* trial_form_name(TrialForm form) {
  switch (form) {
    case TrialForm::kVoxCeleb: return "voxceleb";
    case TrialForm::kKaldi: return "kaldi";
    case TrialForm::kUnlabeled: return "unlabeled";
    case TrialForm::kScore: return "score";
  }
  return "";
}

bool trial_form_from_name(const std::string& name, TrialForm& form) {
  for (TrialForm f : {TrialForm::kVoxCeleb, TrialForm::kKaldi, TrialForm::kUnlabeled}) {
    if (name == trial_form_name(f)) {
      form = f;
      return true;
    }
  }
  return false;
}

TrialList read_trials(const std::string& path, const KeyTable& table, bool skip_missing, int num_threads) {
  TrialReader reader(path, table, skip_missing, num_threads);
  for_each_block(path, [&reader](const Block& blk) { reader.on_block(blk); });
  return reader.finish();
}

}  // namespace wsavkd
