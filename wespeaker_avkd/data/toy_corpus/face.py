"""Procedural faces: a parametric face (identity vector in [0, 1]^17) rendered with per-session lighting,
background and corruption and per-segment pose and expression, as small RGB frames."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
from scipy import ndimage

# Ranges that map each identity parameter u_i in [0, 1] to a geometric/colour value (canonical frame [-1, 1]).
FACE_PARAM_RANGES = {
    "face_w": (0.55, 0.75), "face_h": (0.72, 0.92), "eye_dx": (0.22, 0.38), "eye_y": (-0.25, -0.05),
    "eye_size": (0.06, 0.11), "iris": (0.0, 1.0), "brow_thick": (0.025, 0.06), "brow_tilt": (-0.15, 0.15),
    "nose_len": (0.12, 0.28), "nose_w": (0.05, 0.12), "mouth_w": (0.18, 0.36), "mouth_y": (0.3, 0.5),
    "lip": (0.03, 0.07), "skin": (0.0, 1.0), "hair_dark": (0.0, 1.0), "hairline": (-0.65, -0.35),
    "hair_hue": (0.0, 1.0),
}
NUM_SHAPE_PARAMS = len(FACE_PARAM_RANGES)


@dataclasses.dataclass
class FaceSession:
    """Per-session (video) visual conditions: background, lighting, base pose, blur, corruption."""

    background: np.ndarray   # (3,) RGB in [0, 1]
    bg_gradient: np.ndarray  # (2,) x/y gradient of the background
    light_angle: float
    light_strength: float
    brightness: float
    base_rot: float          # degrees
    blur: float              # pixels at the rendered size
    corruption: str          # none | blur | occlude | dark
    occluder: str = ""       # mask | glasses (for occlude)
    occluder_color: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(3))


def num_face_params(cfg: Mapping) -> int:
    """Length of an identity vector: 17 shape/colour parameters + texture_grid^2 skin-texture values."""
    return NUM_SHAPE_PARAMS + int(cfg["texture_grid"]) ** 2


def sample_face_identity(rng: np.random.Generator, cfg: Mapping) -> np.ndarray:
    """Draw an identity vector in [0, 1]^num_face_params, spread around 0.5 by face.identity_spread."""
    return np.clip(0.5 + cfg["identity_spread"] * (rng.random(num_face_params(cfg)) - 0.5), 0.0, 1.0)


def face_twin(rng: np.random.Generator, base: np.ndarray, delta: float) -> np.ndarray:
    """A face twin: the base identity plus a small Gaussian delta (std `delta`), clipped to [0, 1]."""
    return np.clip(base + rng.normal(0.0, delta, base.shape), 0.0, 1.0)


def sample_face_session(rng: np.random.Generator, cfg: Mapping) -> FaceSession:
    """Draw one session's background, lighting, pose, blur and (with corrupt_prob) corruption."""
    corruption, occluder, occ_color = "none", "", np.zeros(3)
    blur = float(rng.uniform(*cfg["blur_sigma"]))
    brightness = float(rng.uniform(*cfg["brightness"]))
    if rng.random() < cfg["corrupt_prob"]:
        corruption = ("blur", "occlude", "dark")[int(rng.integers(3))]
        if corruption == "blur":
            blur = float(rng.uniform(*cfg["corrupt_blur_sigma"]))
        elif corruption == "dark":
            brightness = float(rng.uniform(*cfg["corrupt_dark_gain"]))
        else:
            occluder = "mask" if rng.random() < 0.6 else "glasses"
            occ_color = rng.uniform(0.6, 0.95, 3) if occluder == "mask" else rng.uniform(0.0, 0.15, 3)
    return FaceSession(
        background=0.5 + cfg["background_var"] * rng.uniform(-0.4, 0.4, 3),
        bg_gradient=rng.normal(0.0, 0.15 * cfg["background_var"], 2),
        light_angle=float(rng.uniform(0, 2 * np.pi)),
        light_strength=float(rng.uniform(0.0, cfg["lighting"])),
        brightness=brightness, base_rot=float(rng.normal(0.0, cfg["pose_deg"])), blur=blur,
        corruption=corruption, occluder=occluder, occluder_color=occ_color,
    )


def _params(u: np.ndarray) -> dict:
    """Map an identity vector in [0, 1] onto named geometric/colour values."""
    return {k: lo + float(x) * (hi - lo) for (k, (lo, hi)), x in zip(FACE_PARAM_RANGES.items(), u[:NUM_SHAPE_PARAMS])}


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, a: float, b: float, sharp: float) -> np.ndarray:
    """Soft (anti-aliased) mask of an axis-aligned ellipse on the grid."""
    d = 1.0 - ((x - cx) / a) ** 2 - ((y - cy) / b) ** 2
    return 1.0 / (1.0 + np.exp(-np.clip(d * sharp, -30, 30)))


def _paint(img: np.ndarray, mask: np.ndarray, color) -> None:
    """Alpha-blend a colour into img (H, W, 3) where mask (H, W) in [0, 1]."""
    img += mask[..., None] * (np.asarray(color)[None, None, :] - img)


@dataclasses.dataclass
class _Canvas:
    """A frame being painted: the image (S, S, 3), pixel grid gx, gy (frame coordinates in [-1, 1]), their
    canonical face coordinates x, y (inverse pose), the face's parameters and edge sharpness."""

    img: np.ndarray
    gx: np.ndarray
    gy: np.ndarray
    x: np.ndarray
    y: np.ndarray
    p: dict
    sharp: float

    def ellipse(self, cx: float, cy: float, a: float, b: float, y: np.ndarray | None = None) -> np.ndarray:
        """Soft mask of an ellipse in canonical coordinates (y: a displaced y grid, e.g. for the mouth)."""
        return _ellipse(self.x, self.y if y is None else y, cx, cy, a, b, self.sharp)


def _canvas(u: np.ndarray, session: FaceSession, pose: Mapping, cfg: Mapping) -> _Canvas:
    """The background-filled canvas of a frame with its pixel grid mapped to canonical face coordinates."""
    size = int(cfg["image_size"])
    lin = (np.arange(size) + 0.5) / size * 2.0 - 1.0
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    # Inverse pose: canonical coordinates of each pixel.
    th = np.deg2rad(pose["rot"])
    zoom = pose["scale"] * cfg["face_scale"]
    x0, y0 = (gx - pose["dx"]) / zoom, (gy - pose["dy"]) / zoom
    x = np.cos(th) * x0 + np.sin(th) * y0
    y = -np.sin(th) * x0 + np.cos(th) * y0
    img = np.empty((size, size, 3))
    img[:] = session.background
    img += (session.bg_gradient[0] * gx + session.bg_gradient[1] * gy)[..., None]
    return _Canvas(img, gx, gy, x, y, _params(u), size / 4.0)


def _colours(p: Mapping) -> dict[str, np.ndarray]:
    """Skin, hair, iris and lip colours (RGB in [0, 1]) of an identity's parameters."""
    skin = np.array([0.95, 0.78, 0.65]) * (1 - p["skin"]) + np.array([0.42, 0.27, 0.18]) * p["skin"]
    hair_base = np.array([0.85, 0.7, 0.4]) * (1 - p["hair_hue"]) + np.array([0.55, 0.25, 0.12]) * p["hair_hue"]
    hair = hair_base * (1 - 0.85 * p["hair_dark"])
    iris = np.array([0.35, 0.2, 0.1]) * (1 - p["iris"]) + np.array([0.25, 0.45, 0.65]) * p["iris"]
    return {"skin": skin, "hair": hair, "iris": iris, "lips": skin * np.array([0.85, 0.55, 0.55])}


def _paint_head(c: _Canvas, u: np.ndarray, fw: float, colours: Mapping, cfg: Mapping) -> None:
    """Hair behind the head, the face with the identity's skin texture, the hairline."""
    p, x, y = c.p, c.x, c.y
    _paint(c.img, c.ellipse(0.0, -0.08, fw * 1.1, p["face_h"] * 1.05), colours["hair"])
    face = c.ellipse(0.0, 0.0, fw, p["face_h"])
    _paint(c.img, face, colours["skin"])
    grid = int(cfg["texture_grid"])
    if grid > 0:
        # Identity skin texture, attached to the face (canonical coordinates) so it moves with the pose.
        tex = (u[NUM_SHAPE_PARAMS:NUM_SHAPE_PARAMS + grid * grid].reshape(grid, grid) - 0.5) * 2.0
        coords = np.stack([(y / p["face_h"] + 1) / 2 * (grid - 1), (x / fw + 1) / 2 * (grid - 1)])
        shade = ndimage.map_coordinates(tex, coords, order=1, mode="nearest")
        c.img *= (1.0 + cfg["texture_amp"] * face * shade)[..., None]
    _paint(c.img, face * (1.0 / (1.0 + np.exp(np.clip((y - p["hairline"]) * c.sharp * 2, -30, 30)))),
           colours["hair"])


def _paint_features(c: _Canvas, fx: float, yaw: float, expr: Mapping, colours: Mapping) -> float:
    """Eyes with brows, nose and mouth; returns the nose tip's canonical y."""
    p, x, y = c.p, c.x, c.y
    blink = 1.0 - 0.85 * expr["blink"]
    for side in (-1.0, 1.0):
        ex = fx + side * p["eye_dx"] * (1 - 0.3 * side * yaw)
        ey = p["eye_y"]
        _paint(c.img, c.ellipse(ex, ey, p["eye_size"] * 1.3, p["eye_size"] * 0.75 * blink), (0.95,) * 3)
        _paint(c.img, c.ellipse(ex, ey, p["eye_size"] * 0.6, p["eye_size"] * 0.6 * blink), colours["iris"])
        by = ey - p["eye_size"] * 1.6 - 0.06 * expr["brow"] + side * p["brow_tilt"] * (x - ex)
        _paint(c.img, _ellipse(x, by, ex, 0.0, p["eye_size"] * 1.6, p["brow_thick"], c.sharp), colours["hair"] * 0.8)
    nose_y = p["eye_y"] + p["nose_len"]
    skin = colours["skin"]
    _paint(c.img, c.ellipse(fx, nose_y - p["nose_len"] / 2, p["nose_w"] * 0.5, p["nose_len"] / 2) * 0.35, skin * 0.7)
    _paint(c.img, c.ellipse(fx, nose_y, p["nose_w"], p["nose_w"] * 0.45) * 0.6, skin * 0.6)
    my = p["mouth_y"] - expr["smile"] * 0.25 * ((x - fx) / p["mouth_w"]) ** 2 * 0.2
    mouth_y = y - my + p["mouth_y"]
    _paint(c.img, c.ellipse(fx, p["mouth_y"], p["mouth_w"] / 2, p["lip"] + 0.05 * expr["open"], y=mouth_y),
           colours["lips"])
    if expr["open"] > 0.05:
        _paint(c.img, c.ellipse(fx, p["mouth_y"], p["mouth_w"] / 2.6, 0.05 * expr["open"], y=mouth_y),
               (0.15, 0.05, 0.05))
    return nose_y


def _paint_occluder(c: _Canvas, session: FaceSession, fx: float, fw: float, nose_y: float) -> None:
    """A mask over the lower face or dark glasses over the eyes (an 'occlude' session only)."""
    if session.corruption != "occlude":
        return
    p, x, y = c.p, c.x, c.y
    if session.occluder == "mask":
        band = c.ellipse(fx, (nose_y + p["face_h"]) / 2, fw * 1.02, (p["face_h"] - nose_y) / 2 + 0.08)
    else:
        band = np.clip(1.0 - np.abs(y - p["eye_y"]) / (p["eye_size"] * 1.6), 0, 1) * (np.abs(x) < fw)
    _paint(c.img, band, session.occluder_color)


def _capture(rng: np.random.Generator, c: _Canvas, session: FaceSession, cfg: Mapping) -> np.ndarray:
    """The session's lighting, blur and pixel noise on the painted canvas -> uint8 (S, S, 3)."""
    light = session.brightness * (1.0 + session.light_strength *
                                  (np.cos(session.light_angle) * c.gx + np.sin(session.light_angle) * c.gy))
    img = c.img * light[..., None]
    if session.blur > 0.05:
        img = ndimage.gaussian_filter(img, sigma=(session.blur, session.blur, 0.0), mode="nearest")
    noise_std = cfg["noise_std"] * (3.0 if session.corruption == "dark" else 1.0)
    img = img + rng.normal(0.0, noise_std, img.shape)
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


def render_frame(rng: np.random.Generator, u: np.ndarray, session: FaceSession, pose: Mapping,
                 expr: Mapping, cfg: Mapping) -> np.ndarray:
    """Render one face frame -> uint8 (S, S, 3); pose {rot, dx, dy, scale, yaw}, expr {smile, open, brow, blink}."""
    c = _canvas(u, session, pose, cfg)
    colours = _colours(c.p)
    yaw = pose["yaw"]
    fw = c.p["face_w"] * (1 - 0.3 * abs(yaw))
    _paint_head(c, u, fw, colours, cfg)
    fx = yaw * 0.5  # features slide sideways when the head turns
    nose_y = _paint_features(c, fx, yaw, expr, colours)
    _paint_occluder(c, session, fx, fw, nose_y)
    return _capture(rng, c, session, cfg)


def sample_segment_view(rng: np.random.Generator, session: FaceSession, cfg: Mapping) -> tuple[dict, dict]:
    """Pose and expression of one segment (frames of a segment jitter around them)."""
    pose = {"rot": session.base_rot + rng.normal(0.0, cfg["pose_deg"] / 2), "dx": rng.normal(0.0, cfg["pose_shift"]),
            "dy": rng.normal(0.0, cfg["pose_shift"]), "scale": float(np.exp(rng.normal(0.0, cfg["scale"]))),
            "yaw": rng.normal(0.0, cfg["yaw"])}
    e = cfg["expression"]
    expr = {"smile": e * rng.uniform(-0.5, 1.0), "open": e * rng.uniform(0.0, 1.0) * (rng.random() < 0.5),
            "brow": e * rng.normal(0.0, 0.5), "blink": 0.0}
    return pose, expr


def render_segment(rng: np.random.Generator, u: np.ndarray, session: FaceSession, cfg: Mapping) -> list[np.ndarray]:
    """k = frames_per_segment frames of one segment: small pose/expression changes between frames."""
    pose, expr = sample_segment_view(rng, session, cfg)
    frames = []
    for _ in range(int(cfg["frames_per_segment"])):
        fp = dict(pose, rot=pose["rot"] + rng.normal(0.0, 1.0), dx=pose["dx"] + rng.normal(0.0, 0.01),
                  dy=pose["dy"] + rng.normal(0.0, 0.01))
        fe = dict(expr, blink=float(rng.random() < 0.1), open=max(0.0, expr["open"] + rng.normal(0.0, 0.1)))
        frames.append(render_frame(rng, u, session, fp, fe, cfg))
    return frames
