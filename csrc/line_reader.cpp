#include "line_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <vector>

#include "common.h"

namespace wsavkd {

namespace {

constexpr size_t kBlockBytes = size_t(32) << 20;  // read granularity: bounded memory for any file size

struct FileCloser {
  void operator()(FILE* f) const { std::fclose(f); }
};

// Size of the open file, or 0 when it cannot be told (a pipe); used only to size buffers.
int64_t open_file_size(FILE* f) {
  struct stat st;
  return ::fstat(::fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? int64_t(st.st_size) : 0;
}

// End of the last complete line in [b, b + n), or nullptr when there is none.
const char* last_line_end(const char* b, size_t n) {
  for (size_t i = n; i > 0; --i)
    if (b[i - 1] == '\n') return b + i;
  return nullptr;
}

}  // namespace

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

void for_each_block(const std::string& path, const std::function<void(const Block&)>& on_block) {
  std::unique_ptr<FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) throw ScorerError(path + ": cannot open (" + std::strerror(errno) + ")");
  const int64_t file_size = open_file_size(f.get());
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
      const char* last = last_line_end(buf.data(), have);
      if (!last) continue;  // no complete line yet: read more
      end = size_t(last - buf.data());
    }
    if (end > 0) {
      on_block(Block{buf.data(), buf.data() + end, first, file_size});
      first = false;
    }
    std::memmove(buf.data(), buf.data() + end, have - end);
    have -= end;
  }
}

}  // namespace wsavkd
