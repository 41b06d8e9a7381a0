"""System kinds: one object per kind, found by the config's modality, and the only place that tells kinds apart."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from wespeaker_avkd.data.dataset_args import AudioDatasetArgs, FusionDatasetArgs, VisualDatasetArgs
from wespeaker_avkd.kinds import AUDIO, FUSION, KINDS, VISUAL, SystemKind, kind_of, register_kind
from wespeaker_avkd.registry import FUSIONS, MODELS
from wespeaker_avkd.utils.naming import MODALITIES
from wespeaker_avkd.utils.schema import ConfigError

REPO = Path(__file__).resolve().parents[2]
# A test of a system's kind by its name: `modality == ...`, `... != "fusion"`, `"audio" == ...`.
NAMES = r"""["'](?:audio|visual|fusion)["']"""
KIND_TEST = re.compile(rf"\bmodality\s*[!=]=|[!=]=\s*{NAMES}|{NAMES}\s*[!=]=")


def test_every_modality_names_one_kind():
    assert set(KINDS) == set(MODALITIES)
    assert [kind_of(m).name for m in MODALITIES] == list(MODALITIES)
    assert (kind_of("audio"), kind_of("visual"), kind_of("fusion")) == (AUDIO, VISUAL, FUSION)


@pytest.mark.parametrize("bad", ["audi", None, 3])
def test_an_unknown_modality_is_a_config_error_listing_the_kinds(bad):
    with pytest.raises(ConfigError, match="one of audio, fusion, visual, got"):
        kind_of(bad)


def test_a_kind_name_registers_once():
    with pytest.raises(ValueError, match="twice"):
        register_kind(AUDIO)


def test_what_each_kind_bundles():
    assert (AUDIO.dataset_section, VISUAL.dataset_section, FUSION.dataset_section) == (
        AudioDatasetArgs, VisualDatasetArgs, FusionDatasetArgs)
    assert (AUDIO.encoder_registry, VISUAL.encoder_registry, FUSION.encoder_registry) == (MODELS, MODELS, FUSIONS)
    assert AUDIO.distils and VISUAL.distils and not FUSION.distils
    assert FUSION.reads_embeddings and not AUDIO.reads_embeddings and not VISUAL.reads_embeddings
    assert AUDIO.exportable and VISUAL.exportable and not FUSION.exportable
    assert (AUDIO.raw_source, VISUAL.raw_source, FUSION.raw_source) == ("wav", "faces", None)
    # the keys an eval pass reads are keys of the kind's own section
    for kind in KINDS.values():
        assert set(kind.eval_dataset_keys) <= set(kind.dataset_section.__dataclass_fields__)


def test_sections_parse_plain_mappings_with_the_schema():
    ds, dl = VISUAL.sections({"image_size": 40}, {"batch_size": 3})
    assert ds.image_size == 40 and ds.num_eval_frames == VisualDatasetArgs().num_eval_frames and dl.batch_size == 3
    with pytest.raises(ConfigError, match="dataset_args.num_frms"):
        VISUAL.sections({"num_frms": [10, 20]})  # an audio key is refused by the visual section


def test_the_teacher_is_not_exportable_and_has_no_shards(tmp_path):
    with pytest.raises(ConfigError, match="cannot be exported"):
        FUSION.export_spec({}, FusionDatasetArgs(), None)
    assert not FUSION.reads_shards(FusionDatasetArgs())
    assert FUSION.input_source(str(tmp_path), FusionDatasetArgs()) == ("embeddings", "")


def test_audio_input_follows_data_type_then_feat_source(tmp_path):
    for name in ("wav.scp", "feats.scp"):
        (tmp_path / name).write_text("u1 x\n")
    pick = lambda **kw: AUDIO.input_source(str(tmp_path), AudioDatasetArgs(**kw))[0]  # noqa: E731
    assert pick() == "feats" and pick(feat_source="wav") == "wav" and pick(data_type="raw") == "wav"
    (tmp_path / "feats.scp").unlink()
    assert pick() == "wav"
    with pytest.raises(FileNotFoundError, match="feats.scp"):
        pick(feat_source="feats")


def test_no_code_outside_the_kinds_tests_a_kind_by_name():
    """The package, tools and recipe ask a kind object; only wespeaker_avkd/kinds/ may name kinds in a test."""
    offenders = []
    for root in ("wespeaker_avkd", "tools", "egs"):
        for path in sorted((REPO / root).rglob("*.py")):
            if (REPO / "wespeaker_avkd" / "kinds") in path.parents:
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if KIND_TEST.search(line.split("#", 1)[0]):
                    offenders.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
    assert not offenders, "kind tested by name (ask wespeaker_avkd.kinds.kind_of(modality) instead):\n" + \
        "\n".join(offenders)


def test_the_grep_catches_what_it_is_for():
    for line in ('if modality == "audio":', 'x = cfg.modality != "fusion"', 'if "visual" == m:', 'if m != "fusion"'):
        assert KIND_TEST.search(line), line
    assert not KIND_TEST.search("kind = kind_of(modality)")


def test_a_subclass_is_a_kind():
    assert all(isinstance(k, SystemKind) for k in KINDS.values())


def test_the_kinds_facts_import_without_torch():
    """The recipe's planner reads the kinds' facts in every job's process: importing them must not import torch
    or the data readers (seconds per process), only using a kind's loaders does."""
    import subprocess
    import sys

    code = ("import sys, wespeaker_avkd.kinds, wespeaker_avkd.recipe.settings; "
            "print(sorted(m for m in ('torch', 'wespeaker_avkd.data.datasets', 'soundfile') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
