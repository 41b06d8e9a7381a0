// Line reading for the text parsers: a file streamed in blocks of whole lines, lines split into tokens, keys
// made printable for messages (no Python types).
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>

namespace wsavkd {

constexpr int kMaxTokens = 5;  // no line form has more fields; further tokens are counted, not stored

// Splits [b, e) on spaces, tabs and carriage returns into tok[0..kMaxTokens); returns the token count.
// Inline: every parsed line goes through it.
inline int split_tokens(const char* b, const char* e, std::string_view* tok) {
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

// Key for a message: printable ASCII kept, other bytes as \xNN, cut at 200 characters.
std::string printable(const char* data, size_t size);
inline std::string printable(std::string_view s) { return printable(s.data(), s.size()); }

// One block of whole lines of a file: [begin, end), whether it is the first, the file's size in bytes.
struct Block {
  const char* begin;
  const char* end;
  bool first;
  int64_t file_size;
};

// Streams `path` (opened once) in blocks of whole lines, bounded memory for any file size; calls on_block for
// each. Throws ScorerError naming the path when it cannot be opened or read.
void for_each_block(const std::string& path, const std::function<void(const Block&)>& on_block);

// Where a parser stands in a piece of a file: lines seen, and the first error (line local to the piece, 1-based).
struct LineStatus {
  int64_t lines = 0;
  int64_t err_line = -1;
  std::string err;

  void reset() {
    lines = 0;
    err_line = -1;
    err.clear();
  }
};

// Calls parse(line_begin, line_end) on each line of [b, e); stops at the first line it returns false for
// (st.err_line is that line unless parse already set an earlier one).
template <class F>
void parse_lines(const char* b, const char* e, LineStatus& st, F&& parse) {
  const char* p = b;
  while (p < e) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', size_t(e - p)));
    const char* le = nl ? nl : e;
    ++st.lines;
    if (!parse(p, le)) {
      if (st.err_line < 0) st.err_line = st.lines;
      return;
    }
    p = nl ? nl + 1 : e;
  }
}

}  // namespace wsavkd
