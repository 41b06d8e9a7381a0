"""The GATE teacher's mean gate per modality (a number of the report): the teacher of a seed is run
(inference/gate.py) on the seed's baselines' embeddings of the reported part, as the teacher was extracted."""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import correlation
from wespeaker_avkd.analysis.collect import seed_dir
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.naming import TEACHER, baseline_name


def teacher_gate(exp: str, seed: int, part: str, batch: int = 4096) -> dict[str, Any]:
    """Mean GATE value of the teacher of one seed over the utterances of `part`: z is the weight of the visual
    projection (models/gate_fusion.py: e = z h_visual + (1 - z) h_audio), so {visual: mean z, audio: 1 - mean
    z, num_utts}. Inputs: the seed's baselines' embeddings of `part`, as the teacher was extracted; the teacher
    is loaded and run by inference/gate.py (the report loads no model itself)."""
    from wespeaker_avkd.inference.gate import mean_gate
    from wespeaker_avkd.scoring import load_embeddings

    root = seed_dir(exp, seed)
    tables = {m: load_embeddings(os.path.join(root, baseline_name(m), "embeddings", part, "xvector.scp"))
              for m in ("audio", "visual")}
    ia, iv, keys = correlation.common_keys(tables["audio"][0], tables["visual"][0])
    if not keys:
        raise InputValueError(f"{root}: the audio and visual baselines' {part} embeddings share no utterance")
    return mean_gate(os.path.join(root, TEACHER), tables["audio"][1][ia], tables["visual"][1][iv], batch)


def gate_records(exp: str, seeds: Sequence[int], part: str) -> dict[str, Any]:
    """{per_seed: {seed: teacher_gate}, unavailable: {seed: why}, mean: {visual, audio}} over the seeds with a
    teacher dir ({} when none has one); `mean` only when some seed has a gate."""
    record: dict[str, Any] = {"per_seed": {}, "unavailable": {}}
    for seed in seeds:
        if not os.path.isdir(os.path.join(seed_dir(exp, seed), TEACHER)):
            continue
        try:
            record["per_seed"][str(seed)] = teacher_gate(exp, seed, part)
        except (OSError, ValueError, KeyError, RuntimeError, ImportError) as err:
            record["unavailable"][str(seed)] = f"{type(err).__name__}: {err}"
    if not record["per_seed"] and not record["unavailable"]:
        return {}
    if record["per_seed"]:
        z = [g["visual"] for g in record["per_seed"].values()]
        record["mean"] = {"visual": float(np.mean(z)), "audio": float(1.0 - np.mean(z))}
    return record
