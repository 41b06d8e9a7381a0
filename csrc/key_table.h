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
  // rows[i] = find(keys[i]) for i < n; the slots and entries of the whole batch are prefetched before they are
  // read, so the cache misses of a table larger than the caches overlap instead of adding up.
  void find_batch(const std::string_view* keys, size_t n, int64_t* rows) const;
  // Row of `key`, appending it when absent (used when reading score files, whose keys come from the file).
  int64_t intern(std::string_view key);

  size_t size() const { return offsets_.size(); }
  std::string_view key(size_t row) const {
    const uint64_t off = offsets_[row];
    return std::string_view(pool_.data() + off + kHeader, entry_size(off));
  }
  std::vector<std::string> keys() const;
  // Cache hints for a later key(row): first the row's offset, some iterations later its entry.
  void prefetch_offset(size_t row) const { __builtin_prefetch(&offsets_[row]); }
  void prefetch_entry(size_t row) const { __builtin_prefetch(pool_.data() + offsets_[row]); }

 private:
  // Pool entry: uint32 row, uint32 length, then the key bytes; a slot is (hash tag << 32 | pool offset / 4 + 1)
  // so that a lookup touches one slot and one pool entry (two cache misses at most on a 150k-key table).
  static constexpr size_t kHeader = 8;
  static uint64_t hash(std::string_view s);
  int64_t find_hashed(std::string_view key, uint64_t h) const;
  uint32_t entry_size(uint64_t off) const;
  uint32_t entry_row(uint64_t off) const;
  void rehash(size_t capacity);
  void insert_slot(uint64_t h, uint64_t off);

  std::vector<char> pool_;         // entries, each padded to a multiple of 4 bytes
  std::vector<uint64_t> offsets_;  // pool offset of each row
  std::vector<uint64_t> slots_;    // 0 = empty; capacity is a power of two, load <= 1/2
  uint64_t mask_ = 0;
};

}  // namespace wsavkd
