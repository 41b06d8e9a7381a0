"""Target trials shared between trial lists: the same (unordered) utterance pair labelled target in two lists
counts once per list, so results on those lists are not independent evidence (docs/statistics.md)."""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np


def target_pairs(enroll: Sequence[str], test: Sequence[str], labels: np.ndarray) -> set[tuple[str, str]]:
    """The list's target trials as unordered utterance pairs."""
    return {(a, b) if a <= b else (b, a) for a, b, lab in zip(enroll, test, np.asarray(labels)) if lab == 1}


def shared_targets(lists: Mapping[str, tuple[Sequence[str], Sequence[str], np.ndarray]]) -> dict[str, dict]:
    """{"targets": {list: count}, "shared": {"A/B": identical target pairs of lists A and B}} from each list's
    (enroll (M,), test (M,), labels (M,)), in the mapping's order."""
    pairs = {name: target_pairs(*trials) for name, trials in lists.items()}
    shared = {f"{a}/{b}": len(pairs[a] & pairs[b]) for a, b in itertools.combinations(pairs, 2)}
    return {"targets": {name: len(p) for name, p in pairs.items()}, "shared": shared}


def shared_targets_lines(record: dict[str, dict]) -> list[str]:
    """The report's paragraph on shared targets ([] with fewer than two lists)."""
    if not record["shared"]:
        return []
    parts = []
    for key, count in record["shared"].items():
        a, b = key.split("/")
        parts.append(f"{a} and {b} share {count} target trials ({a}: {record['targets'][a]}, "
                     f"{b}: {record['targets'][b]})")
    return ["Targets shared between lists: " + "; ".join(parts) + ". Results on different lists of one part are "
            "therefore not independent evidence: a verdict that holds on several lists is largely the same "
            "target trials counted again, and the Holm family counts each list's comparison separately although "
            "they are correlated (conservative for the family, but no replication).", ""]
