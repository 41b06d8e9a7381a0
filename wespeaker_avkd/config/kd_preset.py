"""KD weight presets: `kd: {combo: KL+MMD, weights_file: conf/kd_weights.yaml}` expanded into the combo's terms.

A fresh training config goes through `resolve_presets` before the schema reads it (config/train_config.py:
parse_config); a saved config.yaml holds the resolved terms already and is parsed as it is (so a weights file
edited since then shows as a changed config on resume, not as silently new weights).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wespeaker_avkd.config.loading import Config, deep_merge, key_sources, load_yaml
from wespeaker_avkd.kinds import kind_of
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import ConfigError, Where, one_of

DEFAULT_MODALITY = "audio"  # a WeSpeaker config has no modality: it is an audio config


def resolve_kd_preset(kd_cfg: Mapping[str, Any] | None, modality: str) -> Config | None:
    """Expand `kd: {combo: KL+MMD, weights_file: conf/kd_weights.yaml}` into the combo's weights for `modality`.

    kd_weights.yaml maps modality -> combo -> kd block (Eq. 7 shorthand or `losses:` form). The kd block is
    merged over the chosen entry: a weight set in the kd block itself (e.g. the override `+kd.beta=10`) wins
    over the preset's.
    """
    if not kd_cfg:
        return None
    kd = dict(kd_cfg)
    combo = kd.pop("combo", None)
    weights_file = kd.pop("weights_file", None)
    if combo is None:
        return kd
    if weights_file is None:
        raise ConfigError(f"kd.combo={combo!r} needs kd.weights_file (a yaml of modality -> combo -> weights)")
    table = load_yaml(weights_file)
    if modality not in table:
        raise ConfigError(f"{weights_file}: no section {modality!r} (found: {', '.join(sorted(table))})")
    combos = table[modality]
    if combo not in combos:
        raise ConfigError(f"{weights_file}: section {modality!r} has no combo {combo!r} "
                          f"(found: {', '.join(sorted(combos))})")
    resolved = deep_merge(combos[combo], kd)
    resolved["combo"] = combo
    return resolved


def resolve_presets(cfg: Mapping[str, Any]) -> tuple[Config, dict[str, str]]:
    """(a copy of cfg with its kd preset expanded, key -> file sources including the preset's keys).

    The modality is checked here (naming the file) because the preset depends on it; the fusion teacher has
    no kd block to expand (the schema refuses one)."""
    sources = key_sources(cfg)
    cfg = dict(cfg)
    modality = one_of(*MODALITIES)(cfg.get("modality", DEFAULT_MODALITY), Where("", sources).key("modality"))
    if cfg.get("kd") and isinstance(cfg["kd"], Mapping) and kind_of(modality).distils:
        kd = resolve_kd_preset(cfg["kd"], modality)
        preset = f"{cfg['kd'].get('weights_file')} ({modality}.{kd.get('combo')})"
        sources.update({f"kd.{k}": preset for k in kd if f"kd.{k}" not in sources and k != "combo"})
        cfg["kd"] = kd
    return cfg, sources
