"""Learning curves in the report (analysis/learning_curves.py): the flatness rule on curves of known shape, the
summary of a curve file, and the markdown naming a curve that still moves."""
import numpy as np

from wespeaker_avkd.analysis.learning_curves import collect_curves, curves_markdown, flatness, plot_curves
from wespeaker_avkd.utils.curve_file import write_curve


def test_flatness_separates_a_plateau_from_a_trend():
    rng = np.random.default_rng(0)
    plateau = 20 + 0.5 * (-1.0) ** np.arange(12)  # a plateau with epoch-to-epoch jitter of +-0.5
    falling = 30 - 1.0 * np.arange(12) + rng.normal(0, 0.2, 12)  # one point per epoch, noise 0.2
    change, sigma, flat = flatness(plateau)
    assert flat and abs(change) < 1.5
    change, sigma, flat = flatness(falling)
    assert not flat and change == np.mean(falling[-3:]) - np.mean(falling[-6:-3]) and change < -2.5
    assert 0.1 < sigma < 0.5  # the trend barely inflates the noise estimate (successive differences)
    assert flatness(plateau[:5]) is None


def test_flat_share_of_pure_noise_curves_is_high():
    """A curve of pure noise (no trend) is called flat most of the time (2-sigma rule: about 95 %)."""
    rng = np.random.default_rng(1)
    flats = [flatness(rng.normal(0, 1, 6))[2] for _ in range(2000)]
    assert 0.85 < np.mean(flats) < 0.995


def test_curve_files_summarised_and_rendered(tmp_path):
    exp = tmp_path / "exp"
    for name, start in (("audio_baseline", 40.0), ("visual_baseline", 20.0)):
        rows = []
        for epoch in range(1, 9):
            eer = start - 3 * epoch if name == "audio_baseline" else start + 0.1 * (-1) ** epoch
            rows.append({"epoch": epoch, "loss": 1.0, "aam": 2.0 / epoch, "acc": 0.1 * epoch,
                         "dev_eer_O": eer + 1, "dev_eer_E": eer - 1 if epoch % 2 == 0 else None})
        (exp / "seed1" / name).mkdir(parents=True)
        write_curve(str(exp / "seed1" / name / "learning_curve.tsv"), rows)
    curves = collect_curves(str(exp), [1, 2], ["audio_baseline", "visual_baseline", "teacher"])
    assert [(c.system, c.seed) for c in curves] == [("audio_baseline", 1), ("visual_baseline", 1)]
    audio, visual = curves
    assert audio.lists == ["O", "E"] and audio.epochs == [2, 4, 6, 8]  # epochs with every list measured
    assert audio.dev_eer == [40.0 - 3 * e for e in (2, 4, 6, 8)]
    assert audio.train_acc == 0.8 and audio.aam_loss == 0.25 and audio.flat is None  # 4 points: not judged
    text = curves_markdown(curves)
    assert "| audio_baseline | 1 | 8 | 0.800 | 0.250 | 34.00 -> 16.00 | - | too few epochs" in text
    plot_curves(curves, str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
