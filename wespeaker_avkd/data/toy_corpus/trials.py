"""Trial lists of the toy corpus: "O" (random pairs, subset of identities), "E" (all identities, more pairs),
"H" (nontargets only between similar identities: twins and nearest neighbours in either modality)."""
from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence

import numpy as np

from wespeaker_avkd.utils.fileio import atomic_write


def target_pairs(utts: Sequence[str], utt2spk: Mapping[str, str], speakers: set) -> list[tuple[str, str]]:
    """All same-identity pairs from different videos (as VoxCeleb's targets), speakers restricted to `speakers`."""
    by_spk: dict[str, list[str]] = {}
    for u in utts:
        if utt2spk[u] in speakers:
            by_spk.setdefault(utt2spk[u], []).append(u)
    pairs = []
    for spk in sorted(by_spk):
        for a, b in itertools.combinations(sorted(by_spk[spk]), 2):
            if a.split("/")[1] != b.split("/")[1]:
                pairs.append((a, b))
    return pairs


def _sample(rng: np.random.Generator, pool: list, n: int) -> list:
    """n distinct items of pool (all of it when n >= len(pool)), in a random order."""
    idx = rng.permutation(len(pool))[: min(n, len(pool))]
    return [pool[i] for i in idx]


def _random_nontargets(rng: np.random.Generator, by_spk: Mapping[str, list[str]], spk_pairs: list[tuple[str, str]],
                       n: int, exclude: set) -> list[tuple[str, str]]:
    """n distinct nontarget utterance pairs, each drawn from a random speaker pair of spk_pairs."""
    out: list[tuple[str, str]] = []
    seen = set(exclude)
    max_possible = sum(len(by_spk[a]) * len(by_spk[b]) for a, b in spk_pairs)
    n = min(n, max_possible)
    while len(out) < n:
        a, b = spk_pairs[int(rng.integers(len(spk_pairs)))]
        if rng.random() < 0.5:
            a, b = b, a
        pair = (by_spk[a][int(rng.integers(len(by_spk[a])))], by_spk[b][int(rng.integers(len(by_spk[b])))])
        if pair not in seen and pair[::-1] not in seen:
            seen.add(pair)
            out.append(pair)
    return out


def make_trials(rng: np.random.Generator, utt2spk: Mapping[str, str], similar_pairs: Sequence[tuple[str, str]],
                cfg: Mapping) -> dict[str, list[tuple[str, str, str]]]:
    """Build {"O", "E", "H"} -> [(enroll, test, target|nontarget)], each about 50/50, shuffled."""
    utts = sorted(utt2spk)
    speakers = sorted(set(utt2spk.values()))
    by_spk: dict[str, list[str]] = {}
    for u in utts:
        by_spk.setdefault(utt2spk[u], []).append(u)
    n_o = max(2, int(round(cfg["O_speaker_fraction"] * len(speakers))))
    o_speakers = sorted(_sample(rng, speakers, n_o))
    lists = {}
    for name, spk_set, cap in (("O", o_speakers, cfg["O_max_targets"]), ("E", speakers, cfg["E_max_targets"]),
                               ("H", speakers, cfg["H_max_targets"])):
        tgt = _sample(rng, target_pairs(utts, utt2spk, set(spk_set)), int(cap))
        if name == "H":
            spk_pairs = sorted({tuple(sorted(p)) for p in similar_pairs})
        else:
            spk_pairs = [(a, b) for a, b in itertools.combinations(spk_set, 2)]
        non = _random_nontargets(rng, by_spk, spk_pairs, len(tgt), set(tgt))
        rows = [(a, b, "target") for a, b in tgt] + [(a, b, "nontarget") for a, b in non]
        lists[name] = [rows[i] for i in rng.permutation(len(rows))]
    return lists


def nearest_pairs(names: Sequence[str], vectors: np.ndarray, k: int) -> list[tuple[str, str]]:
    """Each item's k nearest others (Euclidean on z-scored vectors (N, D)) as unordered name pairs."""
    z = (vectors - vectors.mean(0)) / (vectors.std(0) + 1e-9)
    d = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    pairs = set()
    for i in range(len(names)):
        for j in np.argsort(d[i], kind="stable")[:k]:
            pairs.add(tuple(sorted((names[i], names[int(j)]))))
    return sorted(pairs)


def write_trials(part_dir: str, lists: Mapping[str, list]) -> None:
    """Write each list in Kaldi form (trials/NAME) and VoxCeleb form (trials_voxceleb/NAME.txt), atomically."""
    for name, rows in lists.items():
        with atomic_write(os.path.join(part_dir, "trials", name)) as f:
            f.writelines(f"{a} {b} {lab}\n" for a, b, lab in rows)
        with atomic_write(os.path.join(part_dir, "trials_voxceleb", name + ".txt")) as f:
            f.writelines(f"{int(lab == 'target')} {a} {b}\n" for a, b, lab in rows)
