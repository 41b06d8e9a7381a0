"""One optimisation step of the trainer: forward, AAM cross-entropy (+ KD objective), backward, update."""
from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from wespeaker_avkd.train.distributed import DistInfo, all_reduce_mean_grads


def _to_device(inputs: Any, device: torch.device) -> Any:
    """Move a tensor or a tuple of tensors to `device`."""
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(x.to(device, non_blocking=True) for x in inputs)
    return inputs.to(device, non_blocking=True)


def training_step(net: nn.Module, kd: nn.Module | None, optimizer: torch.optim.Optimizer,
                  scaler: torch.amp.GradScaler, batch: Mapping[str, Any], info: DistInfo,
                  kd_params: Sequence[nn.Parameter] = (), use_amp: bool = False, step: int = 0) -> dict[str, float]:
    """Forward (embeddings + AAM logits), AAM cross-entropy (+ KD objective), backward, optimizer step.

    `net` is the EmbeddingNet or its DDP wrapper; the KD objective stays outside DDP, so the gradients of its
    adapter (if any) are averaged over ranks here. Returns every loss term, the total and the accuracy.
    """
    device = info.device
    inputs = _to_device(batch["inputs"], device)
    labels = batch["labels"].to(device, non_blocking=True)
    autocast = torch.autocast("cuda", dtype=torch.float16) if use_amp else contextlib.nullcontext()
    with autocast:
        emb, logits = net(inputs, labels)
        aam = F.cross_entropy(logits.float(), labels)
        if kd is not None:
            teacher = batch["teacher_emb"].to(device, non_blocking=True)
            total, terms = kd(aam, emb.float(), teacher.float())
        else:
            total, terms = aam, {"aam": aam}
    if not torch.isfinite(total):
        raise FloatingPointError(f"non-finite loss {total.item()} at step {step} "
                                 f"(terms {[(k, float(v)) for k, v in terms.items()]}); lower the lr")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(total).backward()
    all_reduce_mean_grads(kd_params, info)
    scaler.step(optimizer)
    scaler.update()
    out = {name: float(value.detach()) for name, value in terms.items()}
    out["loss"] = float(total.detach())
    out["acc"] = float((logits.detach().argmax(1) == labels).float().mean())
    return out
