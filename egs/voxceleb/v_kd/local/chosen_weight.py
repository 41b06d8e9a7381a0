"""Print the grid entry a KD weights file chose for one single-loss student, or nothing.

    python local/chosen_weight.py WEIGHTS_YAML MODALITY LOSS GRID...

run.sh (stage 7) uses it to reuse the tuning run of the first seed: the student MODALITY/LOSS of
WEIGHTS_YAML is the tuning run exp/tune/<modality>_kd_<loss>_w<entry> when its entry sets only LOSS's weight
(alpha for KL, beta for COS, gamma for MMD; the other two 0 or absent) to a value in GRID. Prints the GRID
entry as written on the command line (the tuning dir's suffix), or nothing when none matches.
"""
import sys

import yaml

from wespeaker_avkd.utils.naming import EQ7_WEIGHT as KEY
from wespeaker_avkd.utils.yaml_io import load_yaml


def chosen_entry(table: dict, modality: str, loss: str, grid: list) -> str:
    """The grid string equal to the loss weight of table[modality][loss], '' when the entry is not single-loss."""
    entry = ((table or {}).get(modality) or {}).get(loss)
    if not isinstance(entry, dict) or set(entry) - set(KEY.values()):
        return ""
    others = [float(entry.get(k) or 0.0) for k in KEY.values() if k != KEY[loss]]
    if any(others) or KEY[loss] not in entry:
        return ""
    weight = float(entry[KEY[loss]])
    for g in grid:
        if float(g) == weight:
            return g
    return ""


def main(argv: list) -> int:
    """Parse argv, print the matching grid entry."""
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, modality, loss, grid = argv[0], argv[1], argv[2], argv[3:]
    try:
        table = load_yaml(path)  # bounded size and alias expansion, safe_load semantics
    except (OSError, yaml.YAMLError) as err:  # YamlError is a yaml.YAMLError
        print(f"chosen_weight: cannot read {path}: {err}", file=sys.stderr)
        return 1
    print(chosen_entry(table, modality, loss, grid))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
