// Cosine scoring of index pairs over a float32 embedding matrix (no Python types).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "key_table.h"

namespace wsavkd {

// Scores out[i] = cos(emb[enroll[i]] - mean, emb[test[i]] - mean) for i < m; emb is row-major (n, d),
// mean is nullptr or (d,). names (nullable, n entries) name rows in error messages. Throws ScorerError on an
// index out of range, a row with NaN/Inf, or a trial that uses a zero-norm row. Finite rows of any magnitude give
// finite, right scores (rows far from unit norm are scored in double). Multi-threaded (OpenMP).
void cosine_scores(const float* emb, int64_t n, int64_t d, const float* mean, const int32_t* enroll,
                   const int32_t* test, int64_t m, float* out, const KeyTable* names, int num_threads);

// Inverse L2 norms of the rows of (emb - mean), in double; 0 for a zero-norm row. Throws on NaN/Inf.
std::vector<double> inverse_row_norms(const float* emb, int64_t n, int64_t d, const float* mean, const KeyTable* names,
                                      int num_threads);

}  // namespace wsavkd
