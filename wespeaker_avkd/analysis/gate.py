"""The GATE teacher's mean gate per modality (a number of the report): the teacher of a seed is loaded and its
gate evaluated on the seed's baselines' embeddings of the reported part, as the teacher was extracted."""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wespeaker_avkd.analysis import correlation
from wespeaker_avkd.analysis.collect import seed_dir
from wespeaker_avkd.utils.errors import InputValueError
from wespeaker_avkd.utils.naming import TEACHER, baseline_name

GateFunction = Callable[[Any, Any], Any]  # (audio (B, D), visual (B, D)) float tensors -> gate z (B, D)


def teacher_gate_function(teacher_dir: str) -> GateFunction:
    """The gate z(audio, visual) of the trained teacher in `teacher_dir` (its config.yaml + avg_model.pt); a
    teacher without a gate raises ValueError. The one place the report loads a model."""
    from wespeaker_avkd.inference.extract import load_trained

    _, net, _ = load_trained(teacher_dir)
    fusion = net.encoder
    if not hasattr(fusion, "gate_values"):
        raise ValueError(f"the teacher's encoder {type(fusion).__name__} has no gate")

    def gate(audio: Any, visual: Any) -> Any:
        """(B, D) gate values of one batch."""
        z = fusion.gate_values(audio, visual)
        if z is None:
            raise ValueError(f"the teacher's fusion {type(fusion).__name__} exposes no gate values")
        return z

    return gate


def teacher_gate(exp: str, seed: int, part: str, batch: int = 4096) -> dict[str, Any]:
    """Mean GATE value of the teacher of one seed over the utterances of `part`: z is the weight of the visual
    projection (models/gate_fusion.py: e = z h_visual + (1 - z) h_audio), so {visual: mean z, audio: 1 - mean
    z, num_utts}. Inputs: the seed's baselines' embeddings of `part`, as the teacher was extracted."""
    import torch

    from wespeaker_avkd.scoring import load_embeddings

    root = seed_dir(exp, seed)
    tables = {m: load_embeddings(os.path.join(root, baseline_name(m), "embeddings", part, "xvector.scp"))
              for m in ("audio", "visual")}
    ia, iv, keys = correlation.common_keys(tables["audio"][0], tables["visual"][0])
    if not keys:
        raise InputValueError(f"{root}: the audio and visual baselines' {part} embeddings share no utterance")
    gate = teacher_gate_function(os.path.join(root, TEACHER))
    total, count = 0.0, 0
    for lo in range(0, len(keys), batch):
        a = torch.from_numpy(tables["audio"][1][ia[lo:lo + batch]])
        v = torch.from_numpy(tables["visual"][1][iv[lo:lo + batch]])
        z = gate(a, v)
        total += float(z.double().mean(dim=1).sum())
        count += z.shape[0]
    mean_z = total / count
    return {"visual": mean_z, "audio": 1.0 - mean_z, "num_utts": count}


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
