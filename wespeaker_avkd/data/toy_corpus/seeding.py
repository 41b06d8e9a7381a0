"""Counter-based seeding: every random draw of the corpus comes from (master seed, its own integer path)."""
from __future__ import annotations

import numpy as np

# Stream tags keep the draws of different kinds apart even when their indices coincide.
STREAM_VOICE_ID, STREAM_FACE_ID, STREAM_SESSION, STREAM_UTT_AUDIO, STREAM_UTT_FACE, STREAM_LAYOUT, \
    STREAM_TRIALS = range(1, 8)


def rng_for(seed: int, *path: int) -> np.random.Generator:
    """A Generator determined only by (seed, *path): independent of call order, process and worker count."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(p) for p in path]]))
