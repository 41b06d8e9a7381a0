"""Trial lists -> cosine scores, and score files, through the compiled scorer (keys stay in C++)."""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from wespeaker_avkd import _scorer
from wespeaker_avkd._scorer import KeyIndex, ScoringError
from wespeaker_avkd.utils.fileio import atomic_write


class TrialScores:
    """Scored trials: enroll/test keys (lists, built on first access), scores float32 (M,), labels int8 (M,)
    (1 target, 0 nontarget, -1 unlabeled), num_skipped (trials dropped for a missing key).

    Keys are held as int32 rows into a KeyIndex so that 10M trials need no 20M Python strings;
    `enroll` and `test` materialise the lists on demand.
    """

    def __init__(self, enroll: Sequence[str], test: Sequence[str], scores: np.ndarray, labels: np.ndarray,
                 num_skipped: int = 0) -> None:
        """Build from key lists (e.g. scores computed elsewhere)."""
        if not (len(enroll) == len(test) == len(scores) == len(labels)):
            raise ScoringError(f"enroll, test, scores and labels have different lengths: {len(enroll)}, "
                               f"{len(test)}, {len(scores)}, {len(labels)}")
        uniq = list(dict.fromkeys(list(enroll) + list(test)))
        index = KeyIndex(uniq)
        row = {k: i for i, k in enumerate(uniq)}
        self._set(index, np.fromiter((row[k] for k in enroll), np.int32, len(enroll)),
                  np.fromiter((row[k] for k in test), np.int32, len(test)),
                  np.ascontiguousarray(scores, dtype=np.float32), np.ascontiguousarray(labels, dtype=np.int8),
                  num_skipped)

    @classmethod
    def from_rows(cls, index: KeyIndex, enroll_rows: np.ndarray, test_rows: np.ndarray, scores: np.ndarray,
                  labels: np.ndarray, num_skipped: int = 0) -> TrialScores:
        """Build from int32 rows into `index` (no per-trial Python objects)."""
        ts = cls.__new__(cls)
        ts._set(index, enroll_rows, test_rows, scores, labels, num_skipped)
        return ts

    def _set(self, index, enroll_rows, test_rows, scores, labels, num_skipped) -> None:
        self.index = index
        self.enroll_rows = enroll_rows
        self.test_rows = test_rows
        self.scores = scores
        self.labels = labels
        self.num_skipped = int(num_skipped)
        self._enroll = self._test = None
        self.first_skipped = ""  # 'path:line: key' of the first skipped trial

    @property
    def enroll(self) -> list[str]:
        """Enrollment key of each trial."""
        if self._enroll is None:
            self._enroll = self.index.lookup(self.enroll_rows)
        return self._enroll

    @property
    def test(self) -> list[str]:
        """Test key of each trial."""
        if self._test is None:
            self._test = self.index.lookup(self.test_rows)
        return self._test

    def with_scores(self, scores: np.ndarray) -> TrialScores:
        """The same trials with other scores (e.g. after AS-norm)."""
        ts = TrialScores.from_rows(self.index, self.enroll_rows, self.test_rows,
                                   np.ascontiguousarray(scores, dtype=np.float32), self.labels, self.num_skipped)
        ts.first_skipped = self.first_skipped
        return ts

    def __len__(self) -> int:
        return int(self.scores.shape[0])


def _as_index(keys: Sequence[str] | KeyIndex) -> KeyIndex:
    return keys if isinstance(keys, KeyIndex) else KeyIndex(list(keys))


def read_trial_rows(trials_path: str | os.PathLike, keys: Sequence[str] | KeyIndex,
                    skip_missing: bool = False) -> dict:
    """Parse a trial list in C++ -> dict(enroll, test: int32 rows into keys; labels int8; form; num_skipped;
    first_skipped; index)."""
    index = _as_index(keys)
    path = os.fspath(trials_path)
    if not os.path.isfile(path):
        raise ScoringError(f"{path}: no such trial list")
    out = _scorer.read_trials(path, index, skip_missing)
    out["index"] = index
    return out


def score_trials(trials_path: str | os.PathLike, keys: Sequence[str] | KeyIndex, emb: np.ndarray,
                 mean_vec: np.ndarray | None = None, skip_missing: bool = False) -> TrialScores:
    """Cosine-score every trial of a list: emb float32 (N, D) C-contiguous (refused otherwise, never copied),
    row i keyed by keys[i]; mean_vec (D,) subtracted before length normalisation."""
    path = os.fspath(trials_path)
    index = _as_index(keys)
    if not isinstance(emb, np.ndarray) or emb.ndim != 2:
        raise ScoringError(f"embeddings must be a 2-D numpy array (N, D), got {type(emb).__name__}")
    if emb.dtype != np.float32 or not emb.flags.c_contiguous:  # checked before the list is parsed
        raise TypeError(f"embeddings must be a C-contiguous float32 array, got {emb.dtype}; convert explicitly with "
                        "np.ascontiguousarray(emb, dtype=np.float32) (load_embeddings already returns that)")
    if len(index) != emb.shape[0]:
        raise ScoringError(f"{len(index)} keys for {emb.shape[0]} embedding rows")
    if mean_vec is not None:
        mean_vec = np.ascontiguousarray(np.asarray(mean_vec).reshape(-1), dtype=np.float32)  # (D,): tiny copy
        if mean_vec.shape[0] != emb.shape[1]:
            raise ScoringError(f"the mean vector has dimension {mean_vec.shape[0]}, the embeddings {emb.shape[1]}")
    rows = read_trial_rows(path, index, skip_missing)
    try:
        scores = _scorer.cosine_scores(emb, rows["enroll"], rows["test"], mean_vec, index)
    except ScoringError as e:
        raise ScoringError(f"{path}: {e}") from None
    ts = TrialScores.from_rows(index, rows["enroll"], rows["test"], scores, rows["labels"], rows["num_skipped"])
    ts.first_skipped = rows["first_skipped"]
    return ts


def write_score_file(path: str | os.PathLike, ts: TrialScores) -> None:
    """Write `enroll test score [target|nontarget]` lines atomically, in trial order. A score is written as the
    shortest decimal that reads back to the same float32 (e.g. 0.7341235), so no ties are created."""
    with atomic_write(path, "wb") as f:
        f.flush()
        _scorer.write_score_lines(f.fileno(), ts.index, ts.enroll_rows, ts.test_rows, ts.scores, ts.labels)


def read_score_file(path: str | os.PathLike) -> TrialScores:
    """Parse a score file (`enroll test score [target|nontarget]`, CRLF and tabs accepted) -> TrialScores."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ScoringError(f"{path}: no such score file")
    out = _scorer.read_score_file(path)
    return TrialScores.from_rows(out["index"], out["enroll"], out["test"], out["scores"], out["labels"])
