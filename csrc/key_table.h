// Open-addressing hash table from utterance key to row index (one table serves trials and score files).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace wsavkd {

class KeyTable {
 public:
  KeyTable() { rehash(1024); }
  // Builds the table over `keys`; row i is keys[i]. Throws ScorerError on a duplicate or empty key.
  explicit KeyTable(const std::vector<std::string>& keys);

  // Row of `key`, or -1 when absent.
  int64_t find(std::string_view key) const;
  // Row of `key`, appending it when absent (used when reading score files, whose keys come from the file).
  int64_t intern(std::string_view key);

  size_t size() const { return keys_.size(); }
  const std::string& key(size_t row) const { return keys_[row]; }
  const std::vector<std::string>& keys() const { return keys_; }

 private:
  static uint64_t hash(std::string_view s);
  void rehash(size_t capacity);
  void insert_row(uint32_t row, uint64_t h);

  std::vector<std::string> keys_;
  std::vector<uint64_t> hashes_;  // hash of keys_[row], kept for cheap rehashing and probe filtering
  std::vector<uint32_t> slots_;   // row + 1, 0 = empty; capacity is a power of two, load <= 1/2
  uint64_t mask_ = 0;
};

}  // namespace wsavkd
