"""Make the toy corpus only when OUT does not already hold it: the skip decision is keyed by content.

OUT holds the corpus for a config when OUT/.toy_corpus_stamp.json (written last) records
  - the digest of the merged config (every knob that changes a byte; num_workers does not),
  - the generator version (digest of the generator's own source files),
  - the absolute OUT path (the tables hold absolute media paths, so a moved corpus is not reused),
and the tables and media now in OUT are those it recorded: every table the generator wrote (data_dir_fingerprint
of each part's tables and trial lists) and the count and total size of the media files.
Anything else (no stamp, another knob, an edited or deleted table, a deleted wav) regenerates the corpus into a
temp dir inside OUT and swaps it in; the old stamp is removed before the swap, so an interruption leaves either
the old complete corpus or one without a stamp, which the next call regenerates.
"""
from __future__ import annotations

import glob
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from typing import Any

from wespeaker_avkd.data.toy_corpus.config import check_table_root
from wespeaker_avkd.utils.fingerprint import data_dir_fingerprint, digest_of, file_digest, read_stamp, write_stamp

STAMP_NAME = ".toy_corpus_stamp.json"
# What the generator owns inside OUT; nothing else there is touched (run.sh keeps e.g. train_mean/ beside it).
CORPUS_ENTRIES = ("wav", "faces", "train", "eval", "dev", "corpus_info.yaml")
PART_TABLES = ("wav.scp", "faces.scp", "utt2spk", "spk2utt", "utt2meta")
TRIAL_DIRS = ("trials", "trials_voxceleb")
MEDIA_DIRS = ("wav", "faces")
_TMP_PREFIX, _OLD_PREFIX = ".toy_corpus.tmp-", ".toy_corpus.old-"
# Knobs that cannot change a byte of the corpus (see toy_corpus.yaml), left out of the key.
NEUTRAL_KEYS = ("num_workers",)


def generator_version() -> str:
    """Digest of the generator's source files (this package minus this module): edited code -> new corpus."""
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(f for f in glob.glob(os.path.join(here, "*.py")) if os.path.basename(f) != "stamp.py")
    return digest_of({os.path.basename(f): file_digest(f) for f in files})


def corpus_key(out: str, cfg: Mapping[str, Any]) -> dict:
    """What a corpus in `out` must have been made from to be reused (config digest, generator, path)."""
    knobs = {k: v for k, v in cfg.items() if not k.startswith("_") and k not in NEUTRAL_KEYS}
    return {"config": digest_of(knobs), "generator": generator_version(), "out": os.path.abspath(out)}


def _tables(out: str) -> dict:
    """{part: data_dir_fingerprint of its tables and trial lists} for every part dir present in out."""
    res = {}
    for part in ("train", "eval", "dev"):
        d = os.path.join(out, part)
        if not os.path.isdir(d):
            continue
        names = list(PART_TABLES)
        for sub in TRIAL_DIRS:
            if os.path.isdir(os.path.join(d, sub)):
                names += sorted(f"{sub}/{n}" for n in os.listdir(os.path.join(d, sub)))
        res[part] = data_dir_fingerprint(d, names)
    return res


def _media(out: str) -> dict:
    """Count and total bytes of the media files (a deleted or truncated wav/png changes it; cheap: stat only)."""
    n = size = 0
    for sub in MEDIA_DIRS:
        for d, _, names in os.walk(os.path.join(out, sub)):
            for name in names:
                n += 1
                size += os.path.getsize(os.path.join(d, name))
    return {"files": n, "bytes": size}


def stale_reason(out: str, cfg: Mapping[str, Any]) -> str | None:
    """None when `out` holds the corpus of `cfg` intact; else a short reason why it must be (re)made."""
    out = os.path.abspath(out)
    stamp = read_stamp(os.path.join(out, STAMP_NAME))
    if stamp is None:
        return "no complete corpus there (no stamp)"
    key = corpus_key(out, cfg)
    for name, what in (("config", "config or seed"), ("generator", "generator code"), ("out", "folder path")):
        if stamp.get(name) != key[name]:
            return f"made with another {what}"
    recorded = stamp.get("tables") or {}
    for part, tables in recorded.items():
        now = data_dir_fingerprint(os.path.join(out, part), list(tables))
        for name, fp in tables.items():
            if now.get(name) != fp:
                return f"{part}/{name} {'is missing' if now.get(name) is None else 'was changed'}"
    if set(_tables(out)) != set(recorded):
        return "its parts differ from the ones it recorded"
    if stamp.get("media") != _media(out):
        return "media files (wav/png) were deleted, added or changed in size"
    return None


def _clear_leftovers(out: str) -> None:
    """Remove temp dirs that an interrupted earlier call left in out (only our own prefixes)."""
    for prefix in (_TMP_PREFIX, _OLD_PREFIX):
        for path in glob.glob(os.path.join(glob.escape(out), prefix + "*")):
            shutil.rmtree(path, ignore_errors=True)


def ensure_corpus(out: str, cfg: Mapping[str, Any], generate: Callable[..., dict], force: bool = False,
                  log: Callable[[str], None] = print, **gen_kwargs: Any) -> dict | None:
    """Generate the corpus of `cfg` into `out` unless it is already there (see module docstring).

    `generate(tmp_dir, cfg, table_root=out, **gen_kwargs)` makes the corpus in a temp dir whose tables point
    at `out`; returns its summary, or None when the corpus in `out` was current and kept."""
    out = check_table_root(out)
    reason = "--force" if force else stale_reason(out, cfg)
    if reason is None:
        log(f"toy corpus in {out} is current (same config, seed and generator; tables and media intact): skipping")
        return None
    log(f"toy corpus in {out}: generating ({reason})")
    os.makedirs(out, exist_ok=True)
    _clear_leftovers(out)
    key = corpus_key(out, cfg)  # taken before generating: code edited meanwhile must not pass for this corpus's
    tmp = tempfile.mkdtemp(prefix=_TMP_PREFIX, dir=out)  # inside out: the swap is a rename on one filesystem
    try:
        summary = generate(tmp, cfg, table_root=out, **gen_kwargs)
        stamp_path = os.path.join(out, STAMP_NAME)
        if os.path.exists(stamp_path):
            os.remove(stamp_path)  # from here until the new stamp, out is "not complete" for every reader
        old = tempfile.mkdtemp(prefix=_OLD_PREFIX, dir=out)
        for entry in CORPUS_ENTRIES:
            if os.path.lexists(os.path.join(out, entry)):
                os.rename(os.path.join(out, entry), os.path.join(old, entry))
            if os.path.lexists(os.path.join(tmp, entry)):
                os.rename(os.path.join(tmp, entry), os.path.join(out, entry))
        write_stamp(stamp_path, {**key, "tables": _tables(out), "media": _media(out)})
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return summary
