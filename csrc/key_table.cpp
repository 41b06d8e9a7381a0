#include "key_table.h"

#include <cstring>

#include "common.h"

namespace wsavkd {

KeyTable::KeyTable(const std::vector<std::string>& keys) {
  size_t cap = 1024;
  while (cap < 2 * keys.size() + 2) cap <<= 1;
  rehash(cap);
  keys_.reserve(keys.size());
  hashes_.reserve(keys.size());
  for (const std::string& k : keys) {
    if (k.empty()) throw ScorerError("embedding key " + std::to_string(keys_.size()) + " is empty");
    if (find(k) >= 0) throw ScorerError("duplicate embedding key '" + k + "'");
    intern(k);
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

void KeyTable::rehash(size_t capacity) {
  slots_.assign(capacity, 0);
  mask_ = capacity - 1;
  for (size_t r = 0; r < keys_.size(); ++r) insert_row(static_cast<uint32_t>(r), hashes_[r]);
}

void KeyTable::insert_row(uint32_t row, uint64_t h) {
  uint64_t i = h & mask_;
  while (slots_[i] != 0) i = (i + 1) & mask_;
  slots_[i] = row + 1;
}

int64_t KeyTable::find(std::string_view key) const {
  const uint64_t h = hash(key);
  uint64_t i = h & mask_;
  while (uint32_t s = slots_[i]) {
    const uint32_t row = s - 1;
    if (hashes_[row] == h && keys_[row] == key) return row;
    i = (i + 1) & mask_;
  }
  return -1;
}

int64_t KeyTable::intern(std::string_view key) {
  int64_t row = find(key);
  if (row >= 0) return row;
  if (keys_.size() >= 0xFFFFFFF0u) throw ScorerError("more than 4e9 distinct keys");
  if (2 * (keys_.size() + 1) > slots_.size()) rehash(slots_.size() * 2);
  const uint64_t h = hash(key);
  keys_.emplace_back(key);
  hashes_.push_back(h);
  insert_row(static_cast<uint32_t>(keys_.size() - 1), h);
  return static_cast<int64_t>(keys_.size() - 1);
}

}  // namespace wsavkd
