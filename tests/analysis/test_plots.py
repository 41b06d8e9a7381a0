"""The one DET plotter (scoring.det_plot) as the report and compute_metrics --det use it."""
import struct

import numpy as np

from wespeaker_avkd.analysis import plots
from wespeaker_avkd.scoring import det_curve
from wespeaker_avkd.scoring.det_plot import plot_det, plot_det_panels


def _png_size(path) -> tuple[int, int]:
    """(width, height) in pixels from a PNG's IHDR chunk."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def _curve(seed: int, perfect: bool = False):
    """(p_fa, p_miss, eer) of random scores; perfect: separable scores (rates of exactly 0 on the curve)."""
    rng = np.random.default_rng(seed)
    shift = 10.0 if perfect else 1.0
    scores = np.concatenate([rng.normal(shift, 1, 50), rng.normal(-shift, 1, 400)]).astype(np.float32)
    labels = np.concatenate([np.ones(50), np.zeros(400)]).astype(np.int8)
    p_fa, p_miss = det_curve(scores, labels)
    return p_fa, p_miss, 0.0 if perfect else 0.2


def test_one_panel_per_trial_list(tmp_path):
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    plot_det_panels({"O": {"a": _curve(0)}}, one)
    plot_det_panels({"O": {"a": _curve(0)}, "E": {"a": _curve(1), "b": _curve(2)}}, two)
    (w1, h1), (w2, h2) = _png_size(one), _png_size(two)
    assert 1.8 * w1 < w2 < 2.2 * w1 and abs(h1 - h2) <= 0.05 * h1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.png", "two.png"]  # no temporary file left


def test_report_and_compute_metrics_draw_with_the_same_plotter(tmp_path):
    curve = _curve(3)
    plot_det(tmp_path / "cli.png", *curve, label="O.score")
    plot_det_panels({"O.score": {"O.score": curve}}, tmp_path / "direct.png")
    assert (tmp_path / "cli.png").read_bytes() == (tmp_path / "direct.png").read_bytes()
    # The report's figure is the same drawing with its line styles; the styles do change the pixels.
    curves = {"O": {"audio_kd_cos": curve, "audio_baseline": _curve(4), "teacher": _curve(5)}}
    plots.det_plot(curves, str(tmp_path / "report.png"))
    plot_det_panels(curves, tmp_path / "styled.png", style=plots.system_style)
    plot_det_panels(curves, tmp_path / "plain.png")
    assert (tmp_path / "report.png").read_bytes() == (tmp_path / "styled.png").read_bytes()
    assert (tmp_path / "report.png").read_bytes() != (tmp_path / "plain.png").read_bytes()


def test_system_styles():
    assert [plots.system_style(s) for s in ("visual_kd_cos_kl", "audio_baseline", "teacher")] == ["-", "--", ":"]


def test_rates_of_zero_and_one_are_drawn(tmp_path):
    p_fa, p_miss, eer = _curve(6, perfect=True)
    assert p_fa.min() == 0.0 and p_miss.min() == 0.0 and p_fa.max() == 1.0  # points at infinity on probit axes
    plot_det(tmp_path / "det.png", p_fa, p_miss, eer)
    assert _png_size(tmp_path / "det.png")[0] > 100
