// Score files: parsing `enroll test score [target|nontarget]` lines (no Python types).
#pragma once

#include <string>

#include "key_table.h"
#include "trial_list.h"

namespace wsavkd {

// Reads a score file (`enroll test score [target|nontarget]`, labels on every line or on none), interning its
// keys into `table`. Throws ScorerError naming path:line on a malformed line, a bad or non-finite score, an
// unknown label, an empty file.
TrialList read_score_file(const std::string& path, KeyTable& table);

}  // namespace wsavkd
