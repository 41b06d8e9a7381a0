"""Print what an audio training config reads as its input: feats, wav or auto.

    python local/feat_source.py CONFIG [CONFIG...]

The configs are deep-merged in order by the package's own loader (as bin.train merges its --config files), and
`dataset_args.feat_source` is read with the schema's default and check (data/dataset_args.py: AudioDatasetArgs): feats =
the precomputed fbank of feats.scp, wav = fbank computed on the fly from wav.scp, auto = feats when the data
dir has a feats.scp, else wav. run.sh (local/settings.sh) uses it to decide whether stage 2 computes fbank and
which table stage 3 needs. A bad config is one stderr line 'feat_source: message' and exit status 2, as in the
package's entry points (utils.errors.run_main; --debug shows the traceback).
"""
import dataclasses
import sys

from wespeaker_avkd.config.loading import key_sources, load_config
from wespeaker_avkd.data.dataset_args import AudioDatasetArgs
from wespeaker_avkd.utils.errors import run_main
from wespeaker_avkd.utils.schema import Where


def feat_source(paths: list[str]) -> str:
    """feats|wav|auto of the merged configs `paths` (the schema default when they do not set it)."""
    cfg = load_config(paths)
    where = Where("", key_sources(cfg)).key("dataset_args")
    dataset_args = cfg.get("dataset_args") or {}
    if not isinstance(dataset_args, dict):
        raise where.error(f"expected a mapping, got {type(dataset_args).__name__}")
    spec = {f.name: f for f in dataclasses.fields(AudioDatasetArgs)}["feat_source"]
    return spec.metadata["parse"](dataset_args.get("feat_source", spec.default), where.key("feat_source"))


def main(argv: list[str]) -> int:
    """Print feat_source of the configs in argv."""
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    print(feat_source(argv))
    return 0


if __name__ == "__main__":
    sys.exit(run_main("feat_source", main, sys.argv[1:]))
