#include "key_table.h"

#include <algorithm>
#include <cstring>

#include "common.h"

namespace wsavkd {

KeyTable::KeyTable(const std::vector<std::string>& keys) {
  size_t cap = 1024;
  while (cap < 2 * keys.size() + 2) cap <<= 1;
  rehash(cap);
  size_t bytes = 0;
  for (const std::string& k : keys) bytes += kHeader + k.size() + 3;
  pool_.reserve(bytes);
  offsets_.reserve(keys.size());
  for (const std::string& k : keys) {
    if (k.empty()) throw ScorerError("embedding key " + std::to_string(offsets_.size()) + " is empty");
    // Kaldi keys are single tokens: a key with white space or NUL would split a score-file line in two.
    if (k.find_first_of(std::string_view(" \t\n\r\v\f\0", 7)) != std::string::npos)
      throw ScorerError("embedding key " + std::to_string(offsets_.size()) + " contains white space or NUL");
    const size_t before = size();
    intern(k);
    if (size() == before) throw ScorerError("duplicate embedding key '" + k + "'");
  }
}

uint64_t KeyTable::hash(std::string_view s) {
  // Word-at-a-time multiply-xorshift: keys are short ASCII ids, this is several times faster than FNV.
  const uint64_t m = 0x9E3779B97F4A7C15ULL;
  uint64_t h = 0x243F6A8885A308D3ULL ^ (s.size() * m);
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * m;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w ^ (uint64_t(n) << 56)) * m;
  h ^= h >> 32;
  h *= 0xD6E8FEB86659FD93ULL;
  h ^= h >> 32;
  return h;
}

uint32_t KeyTable::entry_size(uint64_t off) const {
  uint32_t n;
  std::memcpy(&n, pool_.data() + off + 4, 4);
  return n;
}

uint32_t KeyTable::entry_row(uint64_t off) const {
  uint32_t r;
  std::memcpy(&r, pool_.data() + off, 4);
  return r;
}

std::vector<std::string> KeyTable::keys() const {
  std::vector<std::string> out;
  out.reserve(size());
  for (size_t r = 0; r < size(); ++r) out.emplace_back(key(r));
  return out;
}

void KeyTable::rehash(size_t capacity) {
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (uint64_t off : offsets_) insert_slot(hash(std::string_view(pool_.data() + off + kHeader, entry_size(off))), off);
}

void KeyTable::insert_slot(uint64_t h, uint64_t off) {
  uint64_t i = h & mask_;
  while (slots_[i] != 0) i = (i + 1) & mask_;
  slots_[i] = (h & 0xFFFFFFFF00000000ULL) | (off / 4 + 1);
}

int64_t KeyTable::find(std::string_view key) const { return find_hashed(key, hash(key)); }

int64_t KeyTable::find_hashed(std::string_view key, uint64_t h) const {
  const uint64_t tag = h & 0xFFFFFFFF00000000ULL;
  uint64_t i = h & mask_;
  while (const uint64_t s = slots_[i]) {
    if ((s & 0xFFFFFFFF00000000ULL) == tag) {
      const uint64_t off = ((s & 0xFFFFFFFFULL) - 1) * 4;
      if (entry_size(off) == key.size() && std::memcmp(pool_.data() + off + kHeader, key.data(), key.size()) == 0)
        return entry_row(off);
    }
    i = (i + 1) & mask_;
  }
  return -1;
}

void KeyTable::find_batch(const std::string_view* keys, size_t n, int64_t* rows) const {
  constexpr size_t kMax = 64;
  uint64_t hs[kMax];
  for (size_t b = 0; b < n; b += kMax) {
    const size_t m = std::min(kMax, n - b);
    for (size_t i = 0; i < m; ++i) {
      hs[i] = hash(keys[b + i]);
      __builtin_prefetch(&slots_[hs[i] & mask_]);
    }
    for (size_t i = 0; i < m; ++i) {
      const uint64_t s = slots_[hs[i] & mask_];
      if (s) __builtin_prefetch(pool_.data() + ((s & 0xFFFFFFFFULL) - 1) * 4);
    }
    for (size_t i = 0; i < m; ++i) rows[b + i] = find_hashed(keys[b + i], hs[i]);
  }
}

int64_t KeyTable::intern(std::string_view key) {
  int64_t row = find(key);
  if (row >= 0) return row;
  const size_t n = size();
  if (n >= 0x7FFFFFF0u) throw ScorerError("more than 2^31 distinct keys");
  const uint64_t off = pool_.size();
  if (off / 4 + 1 >= 0xFFFFFFFFULL) throw ScorerError("the keys exceed 16 GiB");
  if (key.size() > 0xFFFFFFFFULL) throw ScorerError("a key longer than 4 GiB");
  if (2 * (n + 1) > slots_.size()) rehash(slots_.size() * 2);
  const uint32_t r = uint32_t(n), len = uint32_t(key.size());
  const size_t padded = (kHeader + key.size() + 3) / 4 * 4;
  pool_.resize(off + padded, '\0');
  std::memcpy(pool_.data() + off, &r, 4);
  std::memcpy(pool_.data() + off + 4, &len, 4);
  std::memcpy(pool_.data() + off + kHeader, key.data(), key.size());
  offsets_.push_back(off);
  insert_slot(hash(key), off);
  return int64_t(n);
}

}  // namespace wsavkd
