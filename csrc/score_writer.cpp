#include "score_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <future>
#include <string>
#include <vector>

#include "common.h"

namespace wsavkd {

namespace {

constexpr int64_t kChunk = 1 << 17;  // trials formatted per thread between writes

// Refuses rows outside the key table, non-finite scores (a nan or inf line would read back as a valid score
// file), labels other than 1/0/-1, and a mix of labeled and unlabeled trials (a score file has a label column
// on every line or on none; read_score_file relies on it).
void validate_trials(const KeyTable& table, const int32_t* enroll, const int32_t* test, const float* scores,
                     const int8_t* labels, int64_t n) {
  const int64_t rows = int64_t(table.size());
  for (int64_t i = 0; i < n; ++i) {
    if (enroll[i] < 0 || enroll[i] >= rows || test[i] < 0 || test[i] >= rows)
      throw ScorerError("trial " + std::to_string(i) + " refers to a key row outside the key table");
    if (!std::isfinite(scores[i]))
      throw ScorerError("trial " + std::to_string(i) + " ('" + std::string(table.key(size_t(enroll[i]))) + "' '" +
                        std::string(table.key(size_t(test[i]))) + "') has the non-finite score " +
                        std::to_string(scores[i]) + "; nothing written");
    if (labels[i] < -1 || labels[i] > 1)
      throw ScorerError("trial " + std::to_string(i) + " has label " + std::to_string(int(labels[i])) +
                        " (expected 1, 0 or -1)");
    if ((labels[i] == -1) != (labels[0] == -1))
      throw ScorerError("trial " + std::to_string(i) + " is " + (labels[i] == -1 ? "unlabeled" : "labeled") +
                        " but trial 0 is not: a score file is labeled throughout or not at all");
  }
}

// Appends the lines of trials [b, e) to `out`.
void format_lines(const KeyTable& table, const int32_t* enroll, const int32_t* test, const float* scores,
                  const int8_t* labels, int64_t b, int64_t e, std::string& out) {
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

}  // namespace

void write_score_lines(int fd, const KeyTable& table, const int32_t* enroll, const int32_t* test, const float* scores,
                       const int8_t* labels, int64_t n, int num_threads) {
  validate_trials(table, enroll, test, scores, labels, n);  // before writing anything
  const int nt = thread_count(num_threads);
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
      format_lines(table, enroll, test, scores, labels, b, e, out);
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
