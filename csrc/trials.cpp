#include "trials.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <string_view>

#include "common.h"

namespace wsavkd {

namespace {

constexpr size_t kBlockBytes = size_t(32) << 20;  // read granularity: bounded memory for any file size
constexpr int kMaxTokens = 5;

std::string printable_sv(std::string_view s) { return printable(s.data(), s.size()); }

// Splits [b, e) on spaces, tabs and carriage returns; returns the token count (tokens beyond kMaxTokens are
// counted, not stored).
int split(const char* b, const char* e, std::string_view* tok) {
  int n = 0;
  const char* p = b;
  for (;;) {
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) ++p;
    if (p == e) break;
    const char* s = p;
    while (p < e && *p != ' ' && *p != '\t' && *p != '\r') ++p;
    if (n < kMaxTokens) tok[n] = std::string_view(s, size_t(p - s));
    ++n;
  }
  return n;
}

// Output of one parsed piece of a file; line numbers are local to the piece (1-based).
struct Piece {
  std::vector<int32_t> enroll, test;
  std::vector<int8_t> labels;
  std::vector<float> scores;
  int64_t lines = 0;
  int64_t err_line = -1;
  std::string err;
  int64_t skipped = 0;
  int64_t first_skip_line = -1;
  std::string first_skip_key;

  void reset() {
    enroll.clear();
    test.clear();
    labels.clear();
    scores.clear();
    lines = skipped = 0;
    err_line = first_skip_line = -1;
    err.clear();
    first_skip_key.clear();
  }
};

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

// Decides the form from the first non-blank line; throws on a line that fits none.
TrialForm detect_form(const std::string_view* tok, int n, const std::string& where) {
  if (n == 2) return TrialForm::kUnlabeled;
  if (n == 3) {
    if (tok[2] == "target" || tok[2] == "nontarget") return TrialForm::kKaldi;
    if (tok[0] == "1" || tok[0] == "0") return TrialForm::kVoxCeleb;
    throw ScorerError(where + ": unknown label: expected 'target' or 'nontarget' in the third field (Kaldi form) "
                      "or '1' or '0' in the first field (VoxCeleb form), got '" + printable_sv(tok[0]) + " " +
                      printable_sv(tok[1]) + " " + printable_sv(tok[2]) + "'");
  }
  throw ScorerError(where + ": malformed trial line: expected 2 or 3 fields ('1|0 enroll test', "
                    "'enroll test target|nontarget' or 'enroll test'), got " + std::to_string(n));
}

// Collects the trial lines of a piece and resolves their keys in batches (KeyTable::find_batch), so the
// cache misses of the lookups overlap. On a missing key sets out.err / out.err_line (the key's line).
class TrialBatcher {
 public:
  TrialBatcher(const KeyTable& table, bool skip_missing, Piece& out)
      : table_(table), skip_missing_(skip_missing), out_(out) {}

  bool add(std::string_view enroll, std::string_view test, int8_t label, int64_t line) {
    keys_[2 * n_] = enroll;
    keys_[2 * n_ + 1] = test;
    labels_[n_] = label;
    lines_[n_] = line;
    return ++n_ < kBatch ? true : flush();
  }

  bool flush() {
    table_.find_batch(keys_, 2 * n_, rows_);
    const size_t n = n_;
    n_ = 0;
    for (size_t i = 0; i < n; ++i) {
      const int64_t re = rows_[2 * i], rt = rows_[2 * i + 1];
      if (re < 0 || rt < 0) {
        const std::string_view missing = keys_[2 * i + (re < 0 ? 0 : 1)];
        if (!skip_missing_) {
          out_.err = std::string(re < 0 ? "enrollment" : "test") + " key '" + printable_sv(missing) +
                     "' is not in the embeddings (" + std::to_string(table_.size()) +
                     " keys); skip_missing skips such trials";
          out_.err_line = lines_[i];
          return false;
        }
        if (out_.skipped++ == 0) {
          out_.first_skip_line = lines_[i];
          out_.first_skip_key = printable_sv(missing);
        }
        continue;
      }
      out_.enroll.push_back(int32_t(re));
      out_.test.push_back(int32_t(rt));
      out_.labels.push_back(labels_[i]);
    }
    return true;
  }

 private:
  static constexpr size_t kBatch = 32;
  const KeyTable& table_;
  const bool skip_missing_;
  Piece& out_;
  size_t n_ = 0;
  std::string_view keys_[2 * kBatch];
  int64_t rows_[2 * kBatch];
  int8_t labels_[kBatch];
  int64_t lines_[kBatch];
};

// Parses one trial line into `batch`; on bad input sets out.err and returns false (after reporting a missing
// key of an earlier pending line first, so the first bad line is the one named).
bool parse_trial_line(const char* b, const char* e, TrialForm form, TrialBatcher& batch, Piece& out) {
  std::string_view tok[kMaxTokens];
  const int n = split(b, e, tok);
  if (n == 0) return true;
  auto fail = [&](std::string msg) {
    if (batch.flush()) out.err = std::move(msg);
    return false;
  };
  if (n != form_tokens(form))
    return fail("malformed trial line: expected " + std::to_string(form_tokens(form)) + " fields " +
                form_usage(form) + " like the first line, got " + std::to_string(n));
  int8_t label = -1;
  std::string_view enroll = tok[0], test = tok[1];
  if (form == TrialForm::kVoxCeleb) {
    if (tok[0] == "1") label = 1;
    else if (tok[0] == "0") label = 0;
    else return fail("unknown label '" + printable_sv(tok[0]) + "' (VoxCeleb form: expected 1 or 0 first)");
    enroll = tok[1];
    test = tok[2];
  } else if (form == TrialForm::kKaldi) {
    if (tok[2] == "target") label = 1;
    else if (tok[2] == "nontarget") label = 0;
    else return fail("unknown label '" + printable_sv(tok[2]) + "' (Kaldi form: expected target or nontarget)");
  }
  return batch.add(enroll, test, label, out.lines);
}

// Parses one score-file line, interning its keys.
bool parse_score_line(const char* b, const char* e, KeyTable& table, int& ntok_expected, Piece& out) {
  std::string_view tok[kMaxTokens];
  const int n = split(b, e, tok);
  if (n == 0) return true;
  if (n != 3 && n != 4) {
    out.err = "malformed score line: expected 'enroll test score [target|nontarget]', got " + std::to_string(n) +
              " fields";
    return false;
  }
  if (ntok_expected == 0) ntok_expected = n;
  if (n != ntok_expected) {
    out.err = "malformed score line: " + std::to_string(n) + " fields where the first line has " +
              std::to_string(ntok_expected) + " (labels must be given on every line or on none)";
    return false;
  }
  float s = 0.f;
  const char* sb = tok[2].data();
  const char* se = sb + tok[2].size();
  if (sb < se && *sb == '+') ++sb;  // from_chars refuses a leading '+', printf-style writers emit it
  auto res = std::from_chars(sb, se, s);
  if (res.ec != std::errc() || res.ptr != se) {
    out.err = "bad score '" + printable_sv(tok[2]) + "' (expected a decimal number within float32 range)";
    return false;
  }
  if (!std::isfinite(s)) {
    out.err = "score is " + printable_sv(tok[2]) + " (scores must be finite)";
    return false;
  }
  int8_t label = -1;
  if (n == 4) {
    if (tok[3] == "target") label = 1;
    else if (tok[3] == "nontarget") label = 0;
    else {
      out.err = "unknown label '" + printable_sv(tok[3]) + "' (expected target or nontarget)";
      return false;
    }
  }
  out.enroll.push_back(int32_t(table.intern(tok[0])));
  out.test.push_back(int32_t(table.intern(tok[1])));
  out.scores.push_back(s);
  out.labels.push_back(label);
  return true;
}

// Calls parse(line_begin, line_end, piece) on each line of [b, e); stops at the first error.
template <class F>
void parse_lines(const char* b, const char* e, Piece& out, F&& parse) {
  const char* p = b;
  while (p < e) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(e - p)));
    const char* le = nl ? nl : e;
    ++out.lines;
    if (!parse(p, le, out)) {
      if (out.err_line < 0) out.err_line = out.lines;
      return;
    }
    p = nl ? nl + 1 : e;
  }
}

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Streams `path` in blocks of whole lines; calls on_block(begin, end, is_first_block).
template <class F>
void for_each_block(const std::string& path, F&& on_block) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw ScorerError(path + ": cannot open (" + std::strerror(errno) + ")");
  std::vector<char> buf(kBlockBytes);
  size_t have = 0;
  bool first = true, eof = false;
  while (!eof) {
    if (have == buf.size()) buf.resize(buf.size() * 2);  // a line longer than the block
    const size_t got = std::fread(buf.data() + have, 1, buf.size() - have, f.get());
    if (got == 0) {
      if (std::ferror(f.get())) throw ScorerError(path + ": read error");
      eof = true;
    }
    have += got;
    size_t end = have;
    if (!eof) {
      const char* last = nullptr;
      for (size_t i = have; i > 0; --i) {
        if (buf[i - 1] == '\n') {
          last = buf.data() + i;
          break;
        }
      }
      if (!last) continue;  // no complete line yet: read more
      end = size_t(last - buf.data());
    }
    if (end > 0) {
      on_block(buf.data(), buf.data() + end, first);
      first = false;
    }
    std::memmove(buf.data(), buf.data() + end, have - end);
    have -= end;
  }
}

// Writes all of `out` at file offset `written` onwards, then asks the kernel to start writing it back.
void write_all(int fd, const std::string& out, int64_t& written) {
  size_t done = 0;
  while (done < out.size()) {
    const ssize_t w = ::write(fd, out.data() + done, out.size() - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      throw ScorerError(std::string("writing the score file failed: ") + std::strerror(errno));
    }
    done += size_t(w);
  }
#ifdef __linux__
  if (!out.empty()) ::sync_file_range(fd, written, off64_t(out.size()), SYNC_FILE_RANGE_WRITE);
#endif
  written += int64_t(out.size());
}

template <class T>
void append(std::vector<T>& dst, const std::vector<T>& src) {
  dst.insert(dst.end(), src.begin(), src.end());
}

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

std::string printable(const char* data, size_t size) {
  std::string out;
  const size_t n = std::min(size, size_t(200));
  for (size_t i = 0; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(data[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(char(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof(hex), "\\x%02x", c);
      out += hex;
    }
  }
  if (size > n) out += "...";
  return out;
}

TrialList read_trials(const std::string& path, const KeyTable& table, bool skip_missing, int num_threads) {
  const int nt = thread_count(num_threads);
  TrialList result;
  bool have_form = false;
  int64_t lines_before = 0;  // lines in earlier blocks and pieces
  std::vector<Piece> pieces;
  for_each_block(path, [&](const char* b, const char* e, bool first) {
    if (first) {  // reserve from the line density of the first block, so the vectors do not grow by doubling
      std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
      long size = 0;
      if (f && std::fseek(f.get(), 0, SEEK_END) == 0) size = std::ftell(f.get());
      const int64_t nl = std::max<int64_t>(1, std::count(b, e, '\n'));
      const double est = double(size) / double(e - b) * double(nl) * 1.02 + 16;
      const size_t cap = size_t(std::min(est, 4e9));
      result.enroll.reserve(cap);
      result.test.reserve(cap);
      result.labels.reserve(cap);
    }
    if (!have_form) {  // the first non-blank line decides the form of the whole file
      const char* p = b;
      int64_t line = lines_before;
      while (p < e) {
        const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(e - p)));
        const char* le = nl ? nl : e;
        ++line;
        std::string_view tok[kMaxTokens];
        const int n = split(p, le, tok);
        if (n > 0) {
          result.form = detect_form(tok, n, path + ":" + std::to_string(line));
          have_form = true;
          break;
        }
        p = nl ? nl + 1 : e;
      }
      if (!have_form) {
        lines_before = line;
        return;
      }
    }
    // Split the block at line boundaries into pieces handed out dynamically (a busy core takes fewer).
    const int np = nt > 1 ? 8 * nt : 1;
    std::vector<const char*> cuts{b};
    for (int k = 1; k < np; ++k) {
      const char* c = b + (e - b) * k / np;
      if (c < cuts.back()) c = cuts.back();
      const char* nl = static_cast<const char*>(std::memchr(c, '\n', size_t(e - c)));
      cuts.push_back(nl ? nl + 1 : e);
    }
    cuts.push_back(e);
    pieces.resize(cuts.size() - 1);
    for (Piece& piece : pieces) piece.reset();  // keeps the vectors' capacity from block to block
    const TrialForm form = result.form;
#ifdef WESPEAKER_AVKD_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
#endif
    for (int k = 0; k < int(pieces.size()); ++k) {
      Piece& piece = pieces[k];
      const size_t guess = size_t(cuts[k + 1] - cuts[k]) / 16;
      piece.enroll.reserve(guess);
      piece.test.reserve(guess);
      piece.labels.reserve(guess);
      TrialBatcher batch(table, skip_missing, piece);
      parse_lines(cuts[k], cuts[k + 1], piece, [&](const char* lb, const char* le, Piece& out) {
        return parse_trial_line(lb, le, form, batch, out);
      });
      if (piece.err_line < 0) batch.flush();
    }
    for (const Piece& piece : pieces) {
      if (piece.err_line >= 0)
        throw ScorerError(path + ":" + std::to_string(lines_before + piece.err_line) + ": " + piece.err);
      if (piece.skipped > 0 && result.num_skipped == 0)
        result.first_skipped = path + ":" + std::to_string(lines_before + piece.first_skip_line) + ": " +
                               piece.first_skip_key;
      result.num_skipped += piece.skipped;
      lines_before += piece.lines;
      append(result.enroll, piece.enroll);
      append(result.test, piece.test);
      append(result.labels, piece.labels);
      if (result.enroll.size() > size_t(INT32_MAX))
        throw ScorerError(path + ": more than 2^31 trials");
    }
  });
  if (!have_form) throw ScorerError(path + ": empty trial list (no trial lines)");
  if (result.enroll.empty())
    throw ScorerError(path + ": no trial could be scored: all " + std::to_string(result.num_skipped) +
                      " trials have a key missing from the embeddings (first: " + result.first_skipped + ")");
  return result;
}

TrialList read_score_file(const std::string& path, KeyTable& table) {
  TrialList result;
  result.form = TrialForm::kScore;
  int ntok = 0;
  int64_t lines_before = 0;
  for_each_block(path, [&](const char* b, const char* e, bool) {
    Piece piece;  // keys are interned into one table, so score files are parsed on one thread
    parse_lines(b, e, piece, [&](const char* lb, const char* le, Piece& out) {
      return parse_score_line(lb, le, table, ntok, out);
    });
    if (piece.err_line >= 0)
      throw ScorerError(path + ":" + std::to_string(lines_before + piece.err_line) + ": " + piece.err);
    lines_before += piece.lines;
    append(result.enroll, piece.enroll);
    append(result.test, piece.test);
    append(result.labels, piece.labels);
    append(result.scores, piece.scores);
  });
  if (result.enroll.empty()) throw ScorerError(path + ": empty score file (no score lines)");
  return result;
}

void write_score_lines(int fd, const KeyTable& table, const int32_t* enroll, const int32_t* test,
                       const float* scores, const int8_t* labels, int64_t n, int num_threads) {
  const int nt = thread_count(num_threads);
  const int64_t rows = int64_t(table.size());
  for (int64_t i = 0; i < n; ++i) {  // validate before writing anything
    if (enroll[i] < 0 || enroll[i] >= rows || test[i] < 0 || test[i] >= rows)
      throw ScorerError("trial " + std::to_string(i) + " refers to a key row outside the key table");
    if (labels[i] < -1 || labels[i] > 1)
      throw ScorerError("trial " + std::to_string(i) + " has label " + std::to_string(int(labels[i])) +
                        " (expected 1, 0 or -1)");
    // A score file has a label column on every line or on none (read_score_file relies on it).
    if ((labels[i] == -1) != (labels[0] == -1))
      throw ScorerError("trial " + std::to_string(i) + " is " + (labels[i] == -1 ? "unlabeled" : "labeled") +
                        " but trial 0 is not: a score file is labeled throughout or not at all");
  }
  constexpr int64_t kChunk = 1 << 17;  // trials formatted per thread between writes
  // Double buffering: a writer thread hands one set of formatted chunks to the kernel (and starts its
  // writeback, so the final fsync of atomic_write finds little left to do) while the next set is formatted.
  std::vector<std::string> bufs(static_cast<size_t>(nt)), spare(static_cast<size_t>(nt));
  std::future<void> writing;
  int64_t written = 0;
  for (int64_t start = 0; start < n; start += kChunk * nt) {
#ifdef WESPEAKER_AVKD_OPENMP
#pragma omp parallel for schedule(static, 1) num_threads(nt)
#endif
    for (int k = 0; k < nt; ++k) {
      std::string& out = bufs[size_t(k)];
      out.clear();
      const int64_t b = start + k * kChunk, e = std::min(n, b + kChunk);
      char num[64];
      for (int64_t i = b; i < e; ++i) {
        if (i + 16 < e) table.prefetch_offset(size_t(test[i + 16]));
        if (i + 8 < e) table.prefetch_entry(size_t(test[i + 8]));
        out += table.key(size_t(enroll[i]));
        out += ' ';
        out += table.key(size_t(test[i]));
        out += ' ';
        auto res = std::to_chars(num, num + sizeof(num), scores[i]);
        out.append(num, size_t(res.ptr - num));
        if (labels[i] == 1) out += " target";
        else if (labels[i] == 0) out += " nontarget";
        out += '\n';
      }
    }
    if (writing.valid()) writing.get();  // rethrows a write error
    bufs.swap(spare);
    writing = std::async(std::launch::async, [fd, &spare, &written] {
      for (const std::string& out : spare) write_all(fd, out, written);
    });
  }
  if (writing.valid()) writing.get();
}

}  // namespace wsavkd
