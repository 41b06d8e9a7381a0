"""Regenerate kd_golden.json: reference values of the KD losses computed with plain numpy float64.

Independent of the package on purpose: no torch, no import of wespeaker_avkd. Each value follows the
definitions in docs/kd_losses.md written out step by step, so the fixture checks the package against the
written conventions, not against itself.

    python tests/losses/data/make_kd_golden.py            # rewrite the fixture
    python tests/losses/data/make_kd_golden.py --check    # exit 1 if the fixture differs from a fresh run
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

FIXTURE = Path(__file__).with_name("kd_golden.json")

# Small hand-written inputs: 4 student rows X, 4 teacher rows Y (dim 3), 5 teacher AAM class rows W.
X = [[.1, .2, .3], [0, -.5, .4], [.9, .1, -.2], [.3, .3, .3]]
Y = [[.2, .1, .3], [.1, -.4, .5], [.7, .2, -.1], [-.3, .3, .6]]
W = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [.5, .5, 0], [.2, -.7, .3]]
T = 1.0 / 32
KERNEL_MUL, KERNEL_NUM = 2.0, 5


def unit_rows(a: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def biased_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Biased (V-statistic) MMD^2 with the sum of 5 Gaussian kernels, DAN bandwidths, on unit rows."""
    z = np.concatenate([unit_rows(x), unit_rows(y)])
    n, m = len(z), len(x)
    d2 = np.array([[float(np.sum((a - b) ** 2)) for b in z] for a in z])
    base = d2.sum() / (n * n - n)  # mean off-diagonal squared distance of the pooled batch
    k = sum(np.exp(-d2 / (base * KERNEL_MUL ** (i - KERNEL_NUM // 2))) for i in range(KERNEL_NUM))
    return float(k[:m, :m].mean() + k[m:, m:].mean() - 2.0 * k[:m, m:].mean())


def log_posterior(e: np.ndarray, w: np.ndarray) -> np.ndarray:
    """log softmax over classes of cos(e, w_c) / T, rows of e and w normalised."""
    logits = unit_rows(e) @ unit_rows(w).T / T
    top = logits.max(axis=1, keepdims=True)
    return logits - top - np.log(np.exp(logits - top).sum(axis=1, keepdims=True))


def golden() -> dict:
    """The fixture's content: inputs, how each value is computed, and the values."""
    x, y, w = (np.array(a, dtype=np.float64) for a in (X, Y, W))
    log_ps, log_pt = log_posterior(x, w), log_posterior(y, w)
    p_t = np.exp(log_pt)
    cos_dist = 1.0 - np.sum(unit_rows(x) * unit_rows(y), axis=1)
    mmd2 = biased_mmd2(x, y)
    b = len(x)
    values = {
        "mmd2_biased": mmd2,
        "mmd_sqrt": float(np.sqrt(mmd2)),
        "mmd2_identical": biased_mmd2(x, x),
        "kl_batchmean": float(np.sum(p_t * (log_pt - log_ps)) / b),
        "cross_entropy_batchmean": float(-np.sum(p_t * log_ps) / b),
        "cos_mean": float(cos_dist.mean()),
        "cos_sum": float(cos_dist.sum()),
    }
    return {
        "about": "Reference values of the KD losses (docs/kd_losses.md) on small fixed inputs. Regenerate with "
                 "python tests/losses/data/make_kd_golden.py; tests/losses/test_kd_losses.py compares the "
                 "package's losses (float64) with them at atol 1e-12.",
        "inputs": {"student_X": X, "teacher_Y": Y, "teacher_weight_W": W, "temperature": T,
                   "kernel_mul": KERNEL_MUL, "kernel_num": KERNEL_NUM},
        "how": {
            "all": "numpy float64, no torch and no package code; unit(r) = r / ||r||_2 row-wise",
            "mmd2_biased": "Z = [unit(X); unit(Y)] (8 rows); D2[i,j] = ||Z_i - Z_j||^2 by an explicit loop; "
                           "b = sum(D2) / (8*8 - 8); K = sum_{i=0..4} exp(-D2 / (b * 2**(i-2))); "
                           "mean(K[:4,:4]) + mean(K[4:,4:]) - 2 mean(K[:4,4:])",
            "mmd_sqrt": "sqrt(mmd2_biased)",
            "mmd2_identical": "mmd2_biased with Y = X; exactly 0 in real arithmetic",
            "kl_batchmean": "log P = log_softmax(unit(E) @ unit(W).T / T) per row, E = X (student) or Y "
                            "(teacher); sum over rows and classes of P_Y * (log P_Y - log P_X), divided by 4",
            "cross_entropy_batchmean": "-sum P_Y * log P_X over rows and classes, divided by 4",
            "cos_mean": "mean over rows of 1 - <unit(X_i), unit(Y_i)>",
            "cos_sum": "sum over rows of 1 - <unit(X_i), unit(Y_i)>",
        },
        "values": values,
    }


def main() -> int:
    """Write the fixture, or with --check compare it with a fresh computation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    text = json.dumps(golden(), indent=2) + "\n"
    if args.check:
        same = FIXTURE.exists() and FIXTURE.read_text(encoding="utf-8") == text
        print(f"{FIXTURE.name}: {'up to date' if same else 'differs from a fresh computation'}")
        return 0 if same else 1
    FIXTURE.write_text(text, encoding="utf-8")
    print(f"wrote {FIXTURE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
