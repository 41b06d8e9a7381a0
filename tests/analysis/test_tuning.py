"""KD-weight selection on dev: the choice, ties, the weights file (read back by the config resolver), the
table, missing sweep points, that nothing but dev results is ever opened, and the grid's growth until the dev
EER turns (checked against a brute-force search over the whole bounded log grid)."""
import json
import math
import os

import pytest
import yaml

from wespeaker_avkd.analysis.tuning import (
    AT_BOUND,
    AT_ROUND_LIMIT,
    PENDING,
    TURN,
    TuningError,
    choose_weights,
    combo_weights,
    grow_grid,
    read_dev_metrics,
    require_dev,
    select_kd_weights,
    weight_step,
)
from wespeaker_avkd.bin.select_kd_weights import main as select_main
from wespeaker_avkd.config.train_config import resolve_kd_preset

GRID = ["0.1", "1", "10", "100"]
LISTS = ["O", "E", "H"]


def _write(path, eer):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump({"num_trials": 100, "eer": eer, "min_dcf": {"0.01": 0.5}}, f)


def _sweep(root, dev_eer, eval_eer=None, modalities=("visual", "audio")):
    """Sweep tree; dev_eer(mod, loss, w, list) -> EER. eval results (if given) are written beside the dev ones."""
    for mod in modalities:
        for loss in ("COS", "KL", "MMD"):
            for w in GRID:
                d = os.path.join(root, f"{mod}_kd_{loss.lower()}_w{w}", "scores")
                for t in LISTS:
                    _write(os.path.join(d, "dev", f"{t}.json"), dev_eer(mod, loss, w, t))
                    if eval_eer is not None:
                        _write(os.path.join(d, "eval", f"{t}.json"), eval_eer(mod, loss, w, t))


def _dev(mod, loss, w, t):
    """Dev EERs: visual KL best at 10, COS best at 1, MMD tie between 0.1 and 100 (-> 0.1); audio all 0.2 -> 0.1."""
    if mod == "audio":
        return 0.2
    best = {"KL": "10", "COS": "1"}.get(loss)
    if loss == "MMD":
        return 0.15 if w in ("0.1", "100") else 0.25
    return 0.1 if w == best else 0.2 + 0.01 * LISTS.index(t)


def test_selection_writes_weights_and_table(tmp_path):
    sweep = str(tmp_path / "tune")
    _sweep(sweep, _dev)
    base = tmp_path / "seed1"
    for mod in ("visual", "audio"):
        for t in LISTS:
            _write(str(base / f"{mod}_baseline" / "scores" / "dev" / f"{t}.json"), 0.3)
    out, table = str(tmp_path / "kd_weights.yaml"), str(tmp_path / "dev_results.md")
    assert select_main(["--sweep_dir", sweep, "--grid", *GRID, "--out", out, "--table", table,
                        "--baseline_dir", str(base)]) == 0
    weights = yaml.safe_load(open(out))
    assert weights["visual"]["KL"] == {"alpha": 10.0, "beta": 0.0, "gamma": 0.0}
    assert weights["visual"]["COS"] == {"alpha": 0.0, "beta": 1.0, "gamma": 0.0}
    assert weights["visual"]["MMD"] == {"alpha": 0.0, "beta": 0.0, "gamma": 0.1}  # tie -> the smaller weight
    assert weights["visual"]["COS+KL"] == {"alpha": 10.0, "beta": 1.0, "gamma": 0.0}
    assert weights["visual"]["KL+MMD"] == {"alpha": 10.0, "beta": 0.0, "gamma": 0.1}
    assert all(v == {"alpha": 0.1 if c == "KL" else 0.0, "beta": 0.1 if c == "COS" else 0.0,
                     "gamma": 0.1 if c == "MMD" else 0.0} for c, v in weights["audio"].items() if "+" not in c)
    assert set(weights["visual"]) == {"COS", "KL", "MMD", "COS+KL", "COS+MMD", "KL+MMD"}
    text = open(out).read()
    assert text.startswith("# KD loss weights chosen on the dev part") and "mean EER over the dev lists" in text
    # the students' config resolver reads the file: an override in the kd block still wins
    resolved = resolve_kd_preset({"combo": "COS+KL", "weights_file": out, "beta": 3.0}, "visual")
    assert resolved["alpha"] == 10.0 and resolved["beta"] == 3.0
    md = open(table).read()
    assert "| **visual** | **KL** | **10** | **10.00** | **10.00** | **10.00** | **10.00** |" in md
    assert "| visual | baseline (no KD) | - | 30.00 | 30.00 | 30.00 | 30.00 |" in md
    record = json.load(open(str(tmp_path / "dev_results.json")))
    assert record["results"]["visual"]["KL"]["1"]["E"] == pytest.approx(0.21)
    assert record["chosen"]["visual"] == {"COS": "1", "KL": "10", "MMD": "0.1"}


def test_eval_results_are_never_opened(tmp_path):
    """Eval results that would change the choice sit beside the dev ones: the choice follows dev, and no file
    outside scores/dev is ever opened (the reader is the only way in and records every path)."""
    sweep = str(tmp_path / "tune")
    _sweep(sweep, _dev, eval_eer=lambda mod, loss, w, t: 0.01 if w == "100" else 0.5)
    opened = []

    def recording_reader(path):
        opened.append(path)
        return read_dev_metrics(path)

    chosen = select_kd_weights(sweep, ["visual"], ["COS", "KL", "MMD"], GRID, LISTS, str(tmp_path / "w.yaml"),
                               reader=recording_reader)
    assert chosen["visual"] == {"COS": "1", "KL": "10", "MMD": "0.1"}
    assert len(opened) == 3 * 4 * 3
    assert all(os.sep + os.path.join("scores", "dev") + os.sep in p for p in opened)
    # the dev-only guard itself: eval paths, and paths that climb out of dev, are refused before opening
    eval_json = os.path.join(sweep, "visual_kd_kl_w100", "scores", "eval", "O.json")
    for bad in (eval_json, os.path.join(sweep, "visual_kd_kl_w100", "scores", "dev", "..", "eval", "O.json")):
        with pytest.raises(TuningError, match="dev results only"):
            read_dev_metrics(bad)
    with pytest.raises(TuningError, match="dev results only"):  # a list name that climbs into eval
        select_kd_weights(sweep, ["visual"], ["KL"], GRID, ["../eval/O"], str(tmp_path / "x.yaml"))
    assert require_dev("a/scores/dev/O.json") == os.path.normpath("a/scores/dev/O.json")


def test_missing_sweep_points_are_named(tmp_path, capsys):
    sweep = str(tmp_path / "tune")
    _sweep(sweep, _dev, modalities=("visual",))
    os.remove(os.path.join(sweep, "visual_kd_mmd_w10", "scores", "dev", "E.json"))
    rc = select_main(["--sweep_dir", sweep, "--modalities", "visual", "--grid", *GRID, "--out",
                      str(tmp_path / "w.yaml")])
    err = capsys.readouterr().err
    assert rc == 2 and "1 sweep point(s)" in err and os.path.join("visual_kd_mmd_w10", "scores", "dev", "E.json") in err
    assert not os.path.exists(tmp_path / "w.yaml")
    # a malformed record is named too
    with open(os.path.join(sweep, "visual_kd_mmd_w10", "scores", "dev", "E.json"), "w") as f:
        f.write('{"eer": null}')
    with pytest.raises(TuningError, match="finite 'eer'"):
        select_kd_weights(sweep, ["visual"], ["MMD"], GRID, LISTS, str(tmp_path / "w.yaml"))


def test_choice_and_combos_units():
    results = {"visual": {"KL": {"1": {"O": 0.2, "E": 0.1}, "0.1": {"O": 0.1, "E": 0.2}, "10": {"O": 0.3, "E": 0.3}}}}
    assert choose_weights(results) == {"visual": {"KL": "0.1"}}  # equal means: the smaller weight
    with pytest.raises(TuningError, match="needs the single loss"):
        combo_weights({"visual": {"KL": "1"}}, ["COS+KL"])


@pytest.mark.parametrize("weight,up,expected", [("100", True, "1000"), ("0.1", False, "0.01"), ("1", True, "10"),
                                                ("0.001", False, "0.0001"), ("2.5", True, "25")])
def test_weight_step_is_one_decade_written_plainly(weight, up, expected):
    assert weight_step(weight, up) == expected


@pytest.mark.parametrize("centre", [-3.4, -2.2, -0.6, 0.2, 1.4, 2.6, 3.3, 4.6])
def test_grown_grid_finds_the_decade_a_search_over_the_bounded_grid_finds(centre):
    """A dev EER with one minimum at 10**centre: the grown grid's best weight is the one a brute-force search over
    every decade of 1e-3 .. 1e4 finds, the grid turns there unless that is a bound, and it grows only outward."""
    def eer(w):
        return (math.log10(float(w)) - centre) ** 2
    grown = grow_grid(GRID, eer)
    decades = [10.0 ** k for k in range(-3, 5)]
    expected = min(decades, key=lambda w: ((math.log10(w) - centre) ** 2, w))
    best = min(grown.weights, key=lambda w: (eer(w), float(w)))
    assert float(best) == pytest.approx(expected)
    assert grown.status == (AT_BOUND if expected in (decades[0], decades[-1]) else TURN)
    values = [float(w) for w in grown.weights]
    assert values == pytest.approx([values[0] * 10 ** k for k in range(len(values))])   # contiguous decades
    assert set(GRID) <= set(grown.weights)
    if grown.status == TURN:   # one weight tried on each side of the best, and no more beyond
        i = grown.weights.index(best)
        assert 0 < i < len(values) - 1 and grown.weights[0] in (GRID[0], best_below(best)) \
            and grown.weights[-1] in (GRID[-1], weight_step(best, up=True))


def best_below(best):
    return weight_step(best, up=False)


def test_grown_grid_round_limit_pending_and_a_single_weight():
    falling = grow_grid(["1"], lambda w: 1.0 / float(w), max_rounds=3)   # always best at the top
    assert falling.weights == ("0.1", "1", "10", "100") and falling.status == AT_ROUND_LIMIT
    assert falling.rounds == 3 and falling.added == ("100",)   # round 2 added 0.1 and 10 (a single weight: both)
    pending = grow_grid(["1", "10"], lambda w: None if w == "100" else 1.0 / float(w))
    assert pending.weights == ("1", "10", "100") and pending.status == PENDING and pending.added == ("100",)


def test_selection_extends_the_grid_and_says_where_it_turns(tmp_path):
    """visual COS falls to the top of the grid: with --extend the selection reads 1000 (where it turns), and the
    table lists the weights tried; without it the table says the grid was not extended."""
    sweep = str(tmp_path / "tune")

    def dev(mod, loss, w, t):
        if loss == "COS":
            return {"0.1": 0.3, "1": 0.25, "10": 0.2, "100": 0.15, "1000": 0.1, "10000": 0.12}[w]
        return _dev(mod, loss, w, t)
    _sweep(sweep, dev, modalities=("visual",))
    table = str(tmp_path / "dev_results.md")
    plain = select_kd_weights(sweep, ["visual"], ["COS", "KL", "MMD"], GRID, LISTS, str(tmp_path / "w.yaml"), table)
    assert plain["visual"]["COS"] == "100"
    assert "- COS: tried 0.1 1 10 100 in 1 round(s); best 100 at the top edge (the grid was not extended), no turn" \
        in open(table).read()
    with pytest.raises(TuningError, match=r"visual_kd_cos_w1000/scores/dev/O.json"):
        select_kd_weights(sweep, ["visual"], ["COS"], GRID, LISTS, str(tmp_path / "w.yaml"), extend=True)
    for w in ("1000", "10000"):
        for t in LISTS:
            _write(os.path.join(sweep, f"visual_kd_cos_w{w}", "scores", "dev", f"{t}.json"), dev("visual", "COS", w, t))
    for t in LISTS:   # MMD ties 0.1 with 100 and so sits at the bottom edge: one step below, worse
        _write(os.path.join(sweep, "visual_kd_mmd_w0.01", "scores", "dev", f"{t}.json"), 0.3)
    chosen = select_kd_weights(sweep, ["visual"], ["COS", "KL", "MMD"], GRID, LISTS, str(tmp_path / "w.yaml"), table,
                               extend=True)
    assert chosen["visual"]["COS"] == "1000"
    md = open(table).read()
    assert "- COS: tried 0.1 1 10 100 1000 10000 in 3 round(s); the dev EER turns at 1000 (higher on both sides)" in md
    assert "- KL: tried 0.1 1 10 100 in 1 round(s); the dev EER turns at 10 (higher on both sides)" in md
    assert "| visual | COS | 10000 | 12.00 |" in md
    assert "- MMD: tried 0.01 0.1 1 10 100 in 2 round(s); the dev EER turns at 0.1 (higher on both sides)" in md
    record = json.load(open(str(tmp_path / "dev_results.json")))
    assert record["grids"]["visual"]["COS"]["weights"] == ["0.1", "1", "10", "100", "1000", "10000"]
