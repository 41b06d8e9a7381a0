"""Print the recipe's name table, from the package's one definition (wespeaker_avkd.utils.naming).

    python local/names.py MODALITY... -- COMBO... [-- WEIGHT...]

One line per name, tab-separated: `student MODALITY COMBO DIRNAME` for every modality and every combo (plus
the single losses, which the tuning runs use), `tune MODALITY LOSS WEIGHT DIRNAME` for every modality, single
loss and tuning-grid weight, then `weight LOSS KEY` for each KD loss's Eq. 7 weight.
local/systems.sh:load_names reads it once per run into the tables behind student_name and kd_weight_key.
"""
import sys

from wespeaker_avkd.utils.naming import EQ7_WEIGHT, student_name, tuning_run_name


def main(argv: list) -> int:
    """Parse 'MODALITY... -- COMBO... [-- WEIGHT...]' and print the table; 2 with a usage line on bad arguments."""
    groups = [[]]
    for arg in argv:
        if arg == "--":
            groups.append([])
        else:
            groups[-1].append(arg)
    if len(groups) not in (2, 3):
        print("usage: names.py MODALITY... -- COMBO... [-- WEIGHT...]", file=sys.stderr)
        return 2
    modalities, combos, weights = groups[0], groups[1], groups[2] if len(groups) == 3 else []
    combos = list(dict.fromkeys(combos + list(EQ7_WEIGHT)))
    for mod in modalities:
        for combo in combos:
            print(f"student\t{mod}\t{combo}\t{student_name(mod, combo)}")
        for loss in EQ7_WEIGHT:
            for w in weights:
                print(f"tune\t{mod}\t{loss}\t{w}\t{tuning_run_name(mod, loss, w)}")
    for loss, key in EQ7_WEIGHT.items():
        print(f"weight\t{loss}\t{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
