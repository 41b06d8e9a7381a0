// Score-file output: `enroll test score [label]` lines formatted on several threads, written by another
// (no Python types).
#pragma once

#include <cstdint>

#include "key_table.h"

namespace wsavkd {

// Writes `enroll test score [label]` lines to the open file descriptor `fd` (the label column is left out for
// label -1). Scores are written as the shortest decimal that reads back to the same float32 (std::to_chars).
// Validates every row, score (finite) and label before writing anything; throws ScorerError on bad input or a
// write error.
void write_score_lines(int fd, const KeyTable& table, const int32_t* enroll, const int32_t* test, const float* scores,
                       const int8_t* labels, int64_t n, int num_threads);

}  // namespace wsavkd
